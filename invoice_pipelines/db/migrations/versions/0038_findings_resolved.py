"""findings a person's review resolved: who and when (issue 56)

Revision ID: 0038
Revises: 0036

`processing_errors.resolved_at` and `resolved_by`: a finding that no longer holds is kept (the
audit trail of why a document waited), marked resolved instead of deleted. A confirmation in
review that books the document resolves its review findings (intake/review.py): the reopening's
IP-REV-11, a refused confirmation's IP-REV-13, the reading's doubts the person looked at. The
listings show the findings that still hold; `incoming show` names the resolved ones with who
resolved them. NULL on every finding before this revision: each still holds as it did.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import UtcDateTime

revision = "0038"
down_revision = "0036"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("processing_errors", sa.Column("resolved_at", UtcDateTime))
    op.add_column("processing_errors", sa.Column("resolved_by", sa.String(255)))


def downgrade() -> None:
    with op.batch_alter_table("processing_errors") as batch:
        batch.drop_column("resolved_by")
        batch.drop_column("resolved_at")
