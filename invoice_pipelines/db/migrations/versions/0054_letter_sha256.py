"""A dunning letter's SHA-256, recorded when it is written

Revision ID: 0054
Revises: 0053

Every document we write has its SHA-256 recorded when it is stored, so `audit-verify` can prove it
unchanged (issue 77): the sales invoices' documents had it (`sales_invoice_documents.sha256`), the
dunning letters did not. `dunning_notices.letter_sha256`: the letter's, written with its key.

Nothing to fill: a letter written before has no hash recorded, and `audit-verify` says so rather
than hashing it now (a hash taken today proves nothing about the letter as it was written).
"""

import sqlalchemy as sa
from alembic import op

revision = "0054"
down_revision = "0053"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("dunning_notices", sa.Column("letter_sha256", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("dunning_notices") as batch:
        batch.drop_column("letter_sha256")
