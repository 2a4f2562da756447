"""sales invoices: the money payments applied to them, for the books (Skonto in DATEV, issue 40)

Revision ID: 0024
Revises: 0023

`sales_invoice_payments`: one row per QuickBooks payment and sales invoice it applied money to
(the payment's QBO id, its day, the money applied less what it took from our credit notes'
CreditMemos), written by the QuickBooks payment pull in the transaction that sets the invoice's
amounts; a payment voided or deleted in QBO loses its row on the next pull. The sales export
books them in the month of their day. A tenant table under row-level security.

Before this revision the pull kept no payment of its own (only each invoice's totals and last
payment day), so there is nothing to fill from the database: the upgrade clears the payment
pull's cursor (`qbo_cursors`, entity `payment`), so that the next pull reads every QBO invoice
once and writes the payments of all of them (the pull is idempotent: invoices whose amounts did
not change are left as they are).
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TABLE = "sales_invoice_payments"
MONEY = sa.Numeric(18, 2, asdecimal=True)
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("sales_invoice_id", Id, nullable=False),
        sa.Column("qbo_payment_id", sa.String(32), nullable=False),
        sa.Column("paid_on", sa.Date, nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("sales_invoice_id", "qbo_payment_id", name=f"uq_{TABLE}_payment"),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_invoice_id"],
            ["sales_invoices.organization_id", "sales_invoices.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_sales_invoices",
        ),
        sa.CheckConstraint("amount > 0", name=f"ck_{TABLE}_amount"),
    )
    op.create_index(f"ix_{TABLE}_org_paid_on", TABLE, ["organization_id", "paid_on"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])
        # the owner is subject to row-level security too (FORCE): see every tenant's cursors
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    # the next payment pull reads every invoice once, and so writes every payment
    cursors = sa.table("qbo_cursors", sa.column("entity", sa.String), sa.column("cursor"))
    op.execute(cursors.update().where(cursors.c.entity == "payment").values(cursor=None))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_paid_on", table_name=TABLE)
    op.drop_table(TABLE)
