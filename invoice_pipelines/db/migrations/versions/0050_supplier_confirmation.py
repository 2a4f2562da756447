"""A supplier a person confirmed, and one only registered by its first invoice

Revision ID: 0050
Revises: 0049

Under the `first_invoice` policy a new supplier's first accepted document registers it. That
registration is a claim of the document's, not a person's word: until a person confirms the
supplier, no QuickBooks vendor is created and no bill is pushed for it (issue 72).

- `suppliers.confirmed_at`, `suppliers.confirmed_by`: when and by whom a person confirmed the
  supplier; NULL while it is unconfirmed.
- Existing rows: a supplier a person registered (origin `person`) counts as confirmed by the one
  who registered it, at its creation; one the policy registered stays unconfirmed, so after the
  upgrade its next bill waits for a person (`suppliers confirm`), as a new one's would.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import UtcDateTime

revision = "0050"
down_revision = "0049"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("suppliers", sa.Column("confirmed_at", UtcDateTime(), nullable=True))
    op.add_column("suppliers", sa.Column("confirmed_by", sa.String(255), nullable=True))
    op.execute(
        "UPDATE suppliers SET confirmed_at = created_at, confirmed_by = updated_by "
        "WHERE origin = 'person'"
    )


def downgrade() -> None:
    with op.batch_alter_table("suppliers") as batch:
        batch.drop_column("confirmed_by")
        batch.drop_column("confirmed_at")
