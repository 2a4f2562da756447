"""dunning notices: the segments their default interest was charged on (issue 46)

Revision ID: 0030
Revises: 0029

`dunning_notices.interest_segments`: what this notice charged interest on, one entry per balance
(a partial payment ends one): `[{"after": "2026-03-10", "until": "2026-03-20", "amount":
"7300.00"}, ...]` (days after `after` up to and including `until`, on `amount`). The letter lists
them. NULL on notices before this revision (they charged `amount_open` from `interest_from` to
`interest_until`) and on notices that charge no interest.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "dunning_notices",
        sa.Column("interest_segments", sa.JSON().with_variant(JSONB(), "postgresql")),
    )


def downgrade() -> None:
    op.drop_column("dunning_notices", "interest_segments")
