"""invoices a migration brought in are history: exported and reported, never acted on (issue 55)

Revision ID: 0036
Revises: 0035

`history` on `sales_invoices` and `incoming_invoices`: true for an invoice that an organization's
onboarding imported from its past (`invoice-pipelines history import`) or that a person marked as
history. Such an invoice is booked in the DATEV and CSV exports of its month and counted in the
reports, but no sensor, schedule or batch renders its document, sends it, pushes it to QuickBooks
Online or duns it; only a person who names it does. Existing rows are today's work: false.
"""

import sqlalchemy as sa
from alembic import op

revision = "0036"
down_revision = "0035"
branch_labels = None
depends_on = None

TABLES = ("sales_invoices", "incoming_invoices")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(
            table,
            sa.Column("history", sa.Boolean, nullable=False, server_default=sa.text("false")),
        )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("history")
