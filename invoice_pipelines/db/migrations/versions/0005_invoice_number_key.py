"""incoming invoices: the normalized invoice number the duplicate check (IP-DUP-01) selects by

Revision ID: 0005
Revises: 0004

The duplicate check compares invoice numbers without whitespace and case ("RE 2024-17" is
"re2024-17"). That key is computed in one place, `core.rules.invoice_number_key`, stored beside
the number by the intake and indexed per organization, so the check is one indexed SQL lookup on
both engines (SQLite's lower() folds ASCII only, PostgreSQL's depends on the collation: neither
can compute the same key in SQL). Existing rows are backfilled with the same function, a frozen
copy of it as this revision was written (whitespace removed, case-folded): a migration is history
and does not follow later changes of the live rule (0019 and 0028 recomputed the keys with theirs).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
INDEX = "ix_incoming_invoices_org_number_key"
BATCH = 5000


def invoice_number_key(number: str | None) -> str | None:
    """The duplicate key of an invoice number as of this revision (see the module docstring)."""
    if number is None:
        return None
    return "".join(number.split()).casefold() or None


def upgrade() -> None:
    op.add_column("incoming_invoices", sa.Column("invoice_number_key", sa.String(255)))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    invoices = sa.table(
        "incoming_invoices",
        sa.column("id", sa.BigInteger),
        sa.column("invoice_number", sa.String),
        sa.column("invoice_number_key", sa.String),
    )
    last_id = 0
    while True:
        rows = bind.execute(
            sa.select(invoices.c.id, invoices.c.invoice_number)
            .where(invoices.c.id > last_id, invoices.c.invoice_number.is_not(None))
            .order_by(invoices.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        bind.execute(
            sa.update(invoices)
            .where(invoices.c.id == sa.bindparam("row_id"))
            .values(invoice_number_key=sa.bindparam("key")),
            [
                {"row_id": row.id, "key": (invoice_number_key(row.invoice_number) or "")[:255]}
                for row in rows
            ],
        )
        last_id = rows[-1].id
    # a number of whitespace only has no key
    op.execute(
        "UPDATE incoming_invoices SET invoice_number_key = NULL WHERE invoice_number_key = ''"
    )
    op.create_index(INDEX, "incoming_invoices", ["organization_id", "invoice_number_key"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name="incoming_invoices")
    with op.batch_alter_table("incoming_invoices", naming_convention=NAMING) as batch:
        batch.drop_column("invoice_number_key")
