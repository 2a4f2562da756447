"""QuickBooks webhook receipts: a signed body acts once per organization (issue 22)

Revision ID: 0012
Revises: 0011

- `qbo_webhook_receipts`: the SHA-256 of every signed webhook body that asked for a pull of an
  organization, and when it came. The receiver records it in the same transaction as the pull
  request, so a replayed or redelivered body (same digest) within `WEBHOOK_REPLAY_WINDOW_S` is
  answered 200 and asks for nothing again, across receiver processes and restarts. Rows older than
  the window are deleted by the receiver as it goes.

A tenant table under row-level security.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id, UtcDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

TABLE = "qbo_webhook_receipts"


def upgrade() -> None:
    op.create_table(
        TABLE,
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
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column(
            "received_at", UtcDateTime, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.PrimaryKeyConstraint("organization_id", "body_sha256", name=f"pk_{TABLE}"),
    )
    op.create_index(f"ix_{TABLE}_org_received", TABLE, ["organization_id", "received_at"])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        protect_tables(bind, app_role(), [TABLE])


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        unprotect_tables(bind, app_role(), [TABLE])
    op.drop_index(f"ix_{TABLE}_org_received", table_name=TABLE)
    op.drop_table(TABLE)
