"""issued invoices: per-customer early-payment discount terms and the discounts taken (Skonto, issue 40)

Revision ID: 0022
Revises: 0021

- `customers.skonto`: the customer's own discount steps ([{"days", "percent"}, ...]; [] none;
  NULL: the organization's `settings["skonto"]`). A column on an existing tenant table: its
  row-level security already covers it.
- `sales_invoice_discounts`: the discount a customer took on a sales invoice, one row per VAT
  rate (gross, net, VAT: the correction of the VAT base), with the step earned and the day it was
  paid. A tenant table under row-level security.

Nothing to fill: before this revision no payment settled an invoice with a discount.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Json, UtcDateTime

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
TABLE = "sales_invoice_discounts"
MONEY = sa.Numeric(18, 2, asdecimal=True)
RATE = sa.Numeric(5, 2, asdecimal=True)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("skonto", Json))
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("vat_category", sa.String(2), nullable=False),
        sa.Column("vat_rate", RATE, nullable=False),
        sa.Column("gross", MONEY, nullable=False),
        sa.Column("net", MONEY, nullable=False),
        sa.Column("vat", MONEY, nullable=False),
        sa.Column("percent", RATE, nullable=False),
        sa.Column("last_day", sa.Date, nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column(
            "created_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint(
            "sales_invoice_id",
            "vat_category",
            "vat_rate",
            name=f"uq_{TABLE}_rate",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_sales_invoices",
        ),
    )
    op.create_index(f"ix_{TABLE}_org_paid_on", TABLE, ["organization_id", "paid_on"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_paid_on", table_name=TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("customers", naming_convention=NAMING) as batch:
        batch.drop_column("skonto")
