"""QuickBooks Online: connections, tokens, id mappings, cursors, conflicts, push queue (issue 13)

Revision ID: 0009
Revises: 0008

Reserved in the chain so work on this area can land independently; filled by that work.
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
