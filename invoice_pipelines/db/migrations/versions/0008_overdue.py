"""dunning: overdue notices, levels, blocks, execution log (issue 12)

Revision ID: 0008
Revises: 0007

Reserved in the chain so work on this area can land independently; filled by that work.
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
