"""housekeeping: retention of archived uploads and export files (issue 14)

Revision ID: 0010
Revises: 0009

- `uploads.purged_at`, `uploads.purge_result`: when housekeeping removed the archived original
  after its retention period, and what it found (`removed`, or `missing` when the file was already
  gone). The row and its content hash stay for the audit trail.
- `exports.purged_at`, `exports.purge_result`: the same for an export version's files.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("uploads", "exports")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("purged_at", UtcDateTime))
        op.add_column(table, sa.Column("purge_result", sa.String(16)))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("purge_result")
            batch.drop_column("purged_at")
