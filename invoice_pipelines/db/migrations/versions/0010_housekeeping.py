"""housekeeping: retention of archived uploads and export files (issue 14)

Revision ID: 0010
Revises: 0009

Reserved in the chain so work on this area can land independently; filled by that work.
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
