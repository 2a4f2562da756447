"""An organization's lifecycle: suspended with a reason, offboarded

Revision ID: 0052
Revises: 0051

An organization is added, changed, suspended, resumed and offboarded by command (issue 75,
tenants/lifecycle.py). A suspended organization keeps its partitions and its data; sensors,
schedules and backfills request nothing for it until it is resumed:

- `suspended_at`, `suspended_by`, `suspension_reason`: when, by whom and why it was suspended
  (NULL: it is not), shown on the organization and in the sensors' skip messages;
- `offboarded_at`, `offboarded_by`: when its data were handed over (`organizations offboard
  --export`); its deletion waits for the end of every retention period.

Nothing to fill: no organization was suspended or offboarded before.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import UtcDateTime

revision = "0052"
down_revision = "0051"
branch_labels = None
depends_on = None

COLUMNS = ("suspended_at", "suspended_by", "suspension_reason", "offboarded_at", "offboarded_by")


def upgrade() -> None:
    op.add_column("organizations", sa.Column("suspended_at", UtcDateTime))
    op.add_column("organizations", sa.Column("suspended_by", sa.String(255)))
    op.add_column("organizations", sa.Column("suspension_reason", sa.Text))
    op.add_column("organizations", sa.Column("offboarded_at", UtcDateTime))
    op.add_column("organizations", sa.Column("offboarded_by", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("organizations") as batch:
        for column in COLUMNS:
            batch.drop_column(column)
