"""incoming invoices: how many intake runs took a document up without recording its outcome

Revision ID: 0025
Revises: 0024

`intake_attempts`: an intake run counts it up for each waiting document (UPLOADED, CREATED) it
takes, in a transaction of its own before it reads any; a run that records the document's outcome
moves it out of the waiting states, so the count only grows for a document whose runs keep dying
before that (a worker killed, the run process gone). At the limit the next run marks it FAILED
(IP-PROC-02) instead of taking it up again; a retry by a person sets it back to 0. Existing rows
start at 0.
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "incoming_invoices",
        sa.Column("intake_attempts", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("incoming_invoices", "intake_attempts")
