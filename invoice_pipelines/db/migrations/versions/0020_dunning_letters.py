"""dunning letters: each notice's letter, written once (issue 37)

Revision ID: 0020
Revises: 0019

- `dunning_notices.letter_status` (writing | written | failed, NULL: no letter yet),
  `letter_key` (where the PDF/A is in the document store), `letter_size_bytes`, `letter_pages`,
  `letter_error`, `letter_started_at`: a run claims a notice's letter (`writing`) by a conditional
  update before it writes it, so two runs never both write it (overdue/letter.py).

Only columns on an existing tenant table: its row-level security already covers them.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import UtcDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
STATUS_CHECK = "letter_status IN ('writing', 'written', 'failed')"


def upgrade() -> None:
    with op.batch_alter_table("dunning_notices", naming_convention=NAMING) as batch:
        batch.add_column(sa.Column("letter_status", sa.String(16)))
        batch.add_column(sa.Column("letter_key", sa.String(1024)))
        batch.add_column(sa.Column("letter_size_bytes", sa.Integer))
        batch.add_column(sa.Column("letter_pages", sa.Integer))
        batch.add_column(sa.Column("letter_error", sa.Text))
        batch.add_column(sa.Column("letter_started_at", UtcDateTime))
        batch.create_check_constraint("letter_status", STATUS_CHECK)


def downgrade() -> None:
    with op.batch_alter_table("dunning_notices", naming_convention=NAMING) as batch:
        batch.drop_constraint("letter_status", type_="check")
        for column in (
            "letter_started_at",
            "letter_error",
            "letter_pages",
            "letter_size_bytes",
            "letter_key",
            "letter_status",
        ):
            batch.drop_column(column)
