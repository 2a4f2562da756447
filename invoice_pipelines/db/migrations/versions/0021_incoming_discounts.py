"""incoming invoices: their early-payment discount steps (Skonto, issue 40)

Revision ID: 0021
Revises: 0020

- `incoming_discounts`: one row per discount step an incoming invoice offers (days,
  percent, base amount, start day, where it was read), with its last day, the discount and the
  amount that settles the invoice within the period. A tenant table under row-level security.

Documents read before this revision have no rows: their discount terms were not read then (a
document processed again gets them).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

TABLE = "incoming_discounts"
MONEY = sa.Numeric(18, 2, asdecimal=True)


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column(
            "organization_id",
            Id,
            sa.ForeignKey(
                "organizations.id",
                ondelete="CASCADE",
                name=f"fk_{TABLE}_organization_id_organizations",
            ),
            nullable=False,
        ),
        sa.Column(
            "incoming_invoice_id",
            Id,
            sa.ForeignKey(
                "incoming_invoices.id",
                ondelete="CASCADE",
                name=f"fk_{TABLE}_incoming_invoice_id_incoming_invoices",
            ),
            nullable=False,
        ),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("percent", sa.Numeric(5, 2, asdecimal=True), nullable=False),
        sa.Column("base_amount", MONEY),
        sa.Column("start_date", sa.Date),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("last_day", sa.Date),
        sa.Column("discount", MONEY),
        sa.Column("pay", MONEY),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
    )
    op.create_index(f"ix_{TABLE}_incoming_invoice_id", TABLE, ["incoming_invoice_id"])
    op.create_index(f"ix_{TABLE}_org_last_day", TABLE, ["organization_id", "last_day"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_last_day", table_name=TABLE)
    op.drop_index(f"ix_{TABLE}_incoming_invoice_id", table_name=TABLE)
    op.drop_table(TABLE)
