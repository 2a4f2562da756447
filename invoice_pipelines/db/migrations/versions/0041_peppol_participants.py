"""Peppol participants: an organization's and each customer's Peppol participant id (issue 58)

Revision ID: 0041
Revises: 0039

- `organizations.peppol_participant`: the organization's own Peppol participant id, the seller's
  electronic address (BT-34) of the Peppol BIS documents it writes.
- `customers.peppol_participant`: the customer's, the buyer's electronic address (BT-49); a
  customer with one is reachable on Peppol.

Both hold `<eas>:<value>` (e.g. `0088:4035811991021`, `0208:0123456749`), without the
`iso6523-actorid-upis::` prefix, as einvoice/peppol_ids.py writes a parsed id (`str()`), which
checks the EAS code list and the PEPPOL-COMMON checksums; the database keeps only the shape: a
four-character scheme, a colon, a value. NULL: not on Peppol. Nothing to fill.

Only columns on existing tables: their row-level security already covers them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0039"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
COLUMN = "peppol_participant"
# the shape of `<eas>:<value>` in SQL both databases speak
SHAPE = (
    "peppol_participant IS NULL OR "
    "(length(peppol_participant) > 5 AND substr(peppol_participant, 5, 1) = ':')"
)
TABLES = ("organizations", "customers")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.add_column(sa.Column(COLUMN, sa.String(128)))
            batch.create_check_constraint(COLUMN, SHAPE)


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, naming_convention=NAMING) as batch:
            batch.drop_constraint(COLUMN, type_="check")
            batch.drop_column(COLUMN)
