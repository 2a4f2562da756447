"""documents: customers' document language, e-invoice format and buyer reference; invoice documents

Revision ID: 0007
Revises: 0006

- `customers.language` (de/en), `customers.einvoice_format` (facturx | xrechnung-cii |
  xrechnung-ubl) and `customers.buyer_reference` (BT-10, the Leitweg-ID of public buyers).
- `sales_invoice_documents`: each invoice's Factur-X PDF and XRechnung XML (where to find it,
  size, hash) or the findings that stopped it.
- `deliveries`: each invoice sent by e-mail, SMS or WhatsApp (intent recorded before sending).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
NOW = sa.text("CURRENT_TIMESTAMP")
FORMAT_CHECK = "einvoice_format IN ('facturx', 'xrechnung-cii', 'xrechnung-ubl')"


def upgrade() -> None:
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("language", sa.String(5), nullable=False, server_default="de"))
        batch.add_column(
            sa.Column("einvoice_format", sa.String(16), nullable=False, server_default="facturx")
        )
        batch.add_column(sa.Column("buyer_reference", sa.String(64)))
        batch.create_check_constraint("einvoice_format", FORMAT_CHECK)
    op.create_table(
        "sales_invoice_documents",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("storage_key", sa.String(1024)),
        sa.Column("size_bytes", sa.Integer),
        sa.Column("sha256", sa.String(64)),
        sa.Column("errors", Json, nullable=False, server_default=sa.text("'[]'")),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_sales_invoice_documents"),
        sa.UniqueConstraint(
            "sales_invoice_id", "kind", name="uq_sales_invoice_documents_sales_invoice_id_kind"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name="fk_sales_invoice_documents_organization_id_sales_invoices",
        ),
        sa.CheckConstraint(
            "kind IN ('facturx', 'xrechnung')", name="ck_sales_invoice_documents_kind"
        ),
        sa.CheckConstraint(
            "status IN ('generated', 'failed')", name="ck_sales_invoice_documents_status"
        ),
    )
    op.create_index(
        "ix_sales_invoice_documents_org_status",
        "sales_invoice_documents",
        ["organization_id", "status"],
    )
    op.create_table(
        "deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False, server_default="0"),
        sa.Column("recipient", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message_id", sa.String(255)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("error", sa.Text),
        sa.Column("batch_job_id", Id),
        sa.Column("dagster_run_id", sa.String(64)),
        sa.Column("created_by", sa.String(255)),
        sa.Column("sent_at", UtcDateTime),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name="pk_deliveries"),
        sa.UniqueConstraint(
            "sales_invoice_id",
            "channel",
            "sequence",
            name="uq_deliveries_sales_invoice_id_channel_sequence",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name="fk_deliveries_organization_id_sales_invoices",
        ),
        sa.CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="ck_deliveries_channel"),
        sa.CheckConstraint(
            "status IN ('sending', 'sent', 'failed', 'unknown')", name="ck_deliveries_status"
        ),
    )
    op.create_index("ix_deliveries_org_status", "deliveries", ["organization_id", "status"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), ["sales_invoice_documents", "deliveries"])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), ["sales_invoice_documents", "deliveries"])
    op.drop_table("deliveries")
    op.drop_table("sales_invoice_documents")
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.drop_constraint("einvoice_format", type_="check")
        batch.drop_column("buyer_reference")
        batch.drop_column("einvoice_format")
        batch.drop_column("language")
