"""The supplier register: who a supplier is, as a person confirmed it (issue 54)

Revision ID: 0033
Revises: 0032

Two tenant tables under row-level security:

- `suppliers`: the organization's suppliers with their full VAT id, names, IBANs, notice address,
  QuickBooks vendor and DATEV creditor account.
- `supplier_changes`: each change of a supplier, with who made it, why, and the values before and
  after.

And `organizations.tax_number`: the organization's own tax number (Steuernummer), so that a
document naming it as the seller's is known for the organization's own.

Nothing is filled: the register learns only from a person or the organization's first-invoice
policy (`invoice-pipelines suppliers learn-history` is a person's way to register the suppliers
of documents accepted before this revision).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, UtcDateTime

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLES = ("suppliers", "supplier_changes")


def upgrade() -> None:
    bind = op.get_bind()
    op.add_column("organizations", sa.Column("tax_number", sa.String(32)))
    op.create_table(
        "suppliers",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name="fk_suppliers_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("name_key", sa.String(500), nullable=False),
        sa.Column("other_names", Json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("vat_id", sa.String(64)),
        sa.Column("tax_number", sa.String(64)),
        sa.Column("bank_accounts", Json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("notice_email", sa.String(255)),
        sa.Column("qbo_vendor_id", sa.String(32)),
        sa.Column("datev_creditor_account", sa.Integer),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("version", sa.Integer, nullable=False, server_default=sa.text("1")),
        sa.Column("updated_by", sa.String(255), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_suppliers"),
        sa.UniqueConstraint("organization_id", "id", name="uq_suppliers_organization_id_id"),
        sa.UniqueConstraint(
            "organization_id", "vat_id", name="uq_suppliers_organization_id_vat_id"
        ),
        sa.UniqueConstraint(
            "organization_id", "qbo_vendor_id", name="uq_suppliers_organization_id_qbo_vendor_id"
        ),
        sa.CheckConstraint("origin IN ('person', 'first_invoice')", name="ck_suppliers_origin"),
    )
    op.create_index("ix_suppliers_org_name_key", "suppliers", ["organization_id", "name_key"])
    op.create_table(
        "supplier_changes",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("supplier_id", Id, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("changed_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("before", Json),
        sa.Column("after", Json, nullable=False),
        sa.Column("incoming_invoice_id", Id),
        sa.Column("changed_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_supplier_changes"),
        sa.ForeignKeyConstraint(
            ["organization_id", "supplier_id"],
            ["suppliers.organization_id", "suppliers.id"],
            ondelete="CASCADE",
            name="fk_supplier_changes_supplier",
        ),
    )
    op.create_index(
        "ix_supplier_changes_org_supplier", "supplier_changes", ["organization_id", "supplier_id"]
    )
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), list(TABLES))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), list(TABLES))
    op.drop_index("ix_supplier_changes_org_supplier", "supplier_changes")
    op.drop_table("supplier_changes")
    op.drop_index("ix_suppliers_org_name_key", "suppliers")
    op.drop_table("suppliers")
    with op.batch_alter_table("organizations") as batch:
        batch.drop_column("tax_number")
