"""Dunning by German law: the customer's kind and the dunning costs behind the flat fee (issue 23)

Revision ID: 0013
Revises: 0012

- `customers.kind`: business | consumer (§§ 13, 14 BGB), NULL for every existing customer: the
  dunning then reads the kind from the VAT id (one: business, none: consumer), so existing rows
  keep working and are dunned as before the column existed until someone sets it.
- `dunning_notices.dunning_costs_total`: the levels' own dunning costs so far, against which the
  § 288(5) BGB flat fee of EUR 40 is offset; NULL on existing notices (their fees_total is it).

Both tables are tenant tables under row-level security already; nothing changes there.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.types import Money

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("kind", sa.String(16)))
        batch.create_check_constraint("kind", "kind IN ('business', 'consumer')")
    op.add_column("dunning_notices", sa.Column("dunning_costs_total", Money()))


def downgrade() -> None:
    with op.batch_alter_table("dunning_notices") as batch:
        batch.drop_column("dunning_costs_total")
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint("kind", type_="check")
        batch.drop_column("kind")
