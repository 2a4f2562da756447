"""an invoice is one item of an export at most, enforced by the database

Revision ID: 0018
Revises: 0017

0006 declared `UNIQUE (export_id, incoming_invoice_id, sales_invoice_id)` on `export_items` so
that an export could not hold an invoice twice. It never refused anything: every item has
exactly one of the two invoice columns set, the other is NULL, and NULL equals nothing in a
unique constraint (PostgreSQL and SQLite alike), so two items of one export for one invoice were
both stored. The constraint goes; a unique index on (export_id, coalesce(incoming_invoice_id, 0),
coalesce(sales_invoice_id, 0)) replaces it (ids start at 1). It leads with `export_id` like the
constraint did, so it finds an export's items (its cascade, `_items_before`) as its index did,
and writes one index entry per item as before.

SQLite cannot reflect an index on expressions: a later batch migration that rebuilds
`export_items` on SQLite must create this index again itself.

An export holding an invoice twice already cannot be fixed here (which item is the booking?):
the upgrade stops and names the exports.
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
OLD = "uq_export_items_export_id_incoming_invoice_id_sales_invoice_id"
NEW = "uq_export_items_one_per_invoice"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    twice = (
        bind.execute(
            sa.text(
                "SELECT DISTINCT export_id FROM export_items GROUP BY export_id, "
                "coalesce(incoming_invoice_id, 0), coalesce(sales_invoice_id, 0) "
                "HAVING count(*) > 1 ORDER BY export_id"
            )
        )
        .scalars()
        .all()
    )
    if twice:
        raise RuntimeError(
            "migration 0018: these exports hold an invoice more than once, which the new unique "
            f"index refuses: {', '.join(str(i) for i in twice[:20])}"
            f"{' and more' if len(twice) > 20 else ''}; remove the extra items, then upgrade again"
        )
    with op.batch_alter_table("export_items", naming_convention=NAMING) as batch:
        batch.drop_constraint(OLD, type_="unique")
    op.create_index(
        NEW,
        "export_items",
        [
            "export_id",
            sa.text("coalesce(incoming_invoice_id, 0)"),
            sa.text("coalesce(sales_invoice_id, 0)"),
        ],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index(NEW, table_name="export_items")
    with op.batch_alter_table("export_items", naming_convention=NAMING) as batch:
        batch.create_unique_constraint(
            OLD, ["export_id", "incoming_invoice_id", "sales_invoice_id"]
        )
