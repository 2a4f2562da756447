"""a supplier's Skonto taken closes its bill in QuickBooks: the outbox of that close (issue 56)

Revision ID: 0039
Revises: 0038

`qbo_bill_discounts`: per incoming invoice whose payments earned the supplier's early-payment
discount (incoming_invoice_settlements.discount), the two writes that close its bill in QBO,
each a row of its own committed `sending` before its request: `credit` (a VendorCredit of the
discount) and `apply` (a BillPayment of 0 that takes the credit against the bill). Nothing to
fill: the pull queues the discounts it finds settled, those settled before this revision too.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, Money, UtcDateTime

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

NOW = sa.text("CURRENT_TIMESTAMP")
TABLE = "qbo_bill_discounts"


def upgrade() -> None:
    bind = op.get_bind()
    op.create_table(
        TABLE,
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("incoming_invoice_id", Id, nullable=False),
        sa.Column("action", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("request_id", sa.String(50), nullable=False),
        sa.Column("amount", Money(), nullable=False),
        sa.Column("qbo_id", sa.String(32)),
        sa.Column("error_code", sa.String(16)),
        sa.Column("error_message", sa.Text),
        sa.Column("created_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.Column("updated_at", UtcDateTime, nullable=False, server_default=NOW),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint(
            "incoming_invoice_id", "action", name=f"uq_{TABLE}_incoming_invoice_id_action"
        ),
        sa.ForeignKeyConstraint(
            ["organization_id", "incoming_invoice_id"],
            ["incoming_invoices.organization_id", "incoming_invoices.id"],
            ondelete="CASCADE",
            name=f"fk_{TABLE}_organization_id_incoming_invoices",
        ),
        sa.CheckConstraint("action IN ('credit', 'apply')", name=f"ck_{TABLE}_action"),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'pushed', 'failed', 'conflict')",
            name=f"ck_{TABLE}_status",
        ),
        sa.CheckConstraint("amount > 0", name=f"ck_{TABLE}_amount"),
    )
    op.create_index(f"ix_{TABLE}_org_status", TABLE, ["organization_id", "status"])
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_status", TABLE)
    op.drop_table(TABLE)
