"""tenancy in the keys: every reference between tenant tables carries the organization (issue 54)

Revision ID: 0034
Revises: 0033

Seventeen foreign keys between tenant tables named the parent's `id` alone, so the database let a
row of one organization point at another organization's row (a document of organization 3 at an
upload of organization 1): row-level security checks the row's own organization, not its
parent's. Each becomes `(organization_id, <column>)` -> `parent (organization_id, id)`, as 0004,
0022, 0024 and 0029 made it for the tables they touched; `customers`, `items`, `sales_orders` and
`uploads` get the unique `(organization_id, id)` such a key needs (`batch_jobs`, `sales_invoices`
and `incoming_invoices` have it). Each key keeps its ON DELETE; a NULL reference is not checked
(MATCH SIMPLE), as before. The keys to `organizations` itself stay.

Existing rows first: a row whose parent belongs to another organization stops the upgrade, which
names each table and column with a sample of the row ids; nothing is changed or removed for the
person who reads it (which organization was right is theirs to say).

SQLite: each table is rebuilt (batch mode); `items` and `sales_orders` keep AUTOINCREMENT, and the
expression index on `export_items` (0018), which SQLite cannot reflect, is made again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

NAMING = {  # db/tables.py's convention as this revision was written
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
# the parents that get the unique (organization_id, id) their children's keys refer to
NEW_UNIQUE = ("customers", "items", "sales_orders", "uploads")
# (table, column, parent, ON DELETE), a parent's unique key before the keys that refer to it
KEYS = (
    ("uploads", "duplicate_of_upload_id", "uploads", None),
    ("sales_orders", "customer_id", "customers", None),
    ("batch_jobs", "retry_of_job_id", "batch_jobs", None),
    ("sales_order_lines", "sales_order_id", "sales_orders", "CASCADE"),
    ("sales_order_lines", "item_id", "items", None),
    ("batch_job_items", "customer_id", "customers", None),
    ("sales_invoices", "sales_order_id", "sales_orders", None),
    ("sales_invoices", "customer_id", "customers", None),
    ("sales_invoices", "batch_job_id", "batch_jobs", None),
    ("incoming_invoices", "upload_id", "uploads", None),
    ("processing_errors", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("incoming_reviews", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("supplier_notices", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("incoming_invoice_taxes", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("incoming_invoice_lines", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("export_items", "incoming_invoice_id", "incoming_invoices", "CASCADE"),
    ("export_items", "sales_invoice_id", "sales_invoices", "CASCADE"),
)
# tables whose SQLite id is AUTOINCREMENT (0004): a rebuild must keep it
AUTOINCREMENT = ("items", "sales_orders")
# 0018's index on expressions: SQLite drops it with the table it rebuilds and cannot reflect it
ONE_PER_INVOICE = "uq_export_items_one_per_invoice"
SAMPLE = 10


def _tables() -> list[str]:
    """Every table this revision changes, each once: the parents with no key of their own to
    change first, then each table with keys in KEYS' order."""
    children = list(dict.fromkeys(table for table, *_ in KEYS))
    return [table for table in NEW_UNIQUE if table not in children] + children


def _crossing(bind) -> list[str]:
    """Each key's rows whose parent belongs to another organization, as `table.column ->
    parent: n rows (ids ...)`: a query or two per key, each over the whole table."""
    found = []
    for table, column, parent, _ in KEYS:
        crossing = (
            f"FROM {table} c JOIN {parent} p ON p.id = c.{column} "
            "WHERE p.organization_id <> c.organization_id"
        )
        ids = (
            bind.execute(sa.text(f"SELECT c.id {crossing} ORDER BY c.id LIMIT {SAMPLE + 1}"))
            .scalars()
            .all()
        )
        if not ids:
            continue
        count = bind.execute(sa.text(f"SELECT count(*) {crossing}")).scalar_one()
        shown = ", ".join(str(i) for i in ids[:SAMPLE])
        more = f" and {count - SAMPLE} more" if count > SAMPLE else ""
        rows = "1 row (id" if count == 1 else f"{count} rows (ids"
        found.append(f"{table}.{column} -> {parent}: {rows} {shown}{more})")
    return found


def _batch(table: str):
    return op.batch_alter_table(
        table,
        naming_convention=NAMING,
        table_kwargs={"sqlite_autoincrement": True} if table in AUTOINCREMENT else {},
    )


def _rebuilding_export_items(sqlite: bool, table: str, before: bool) -> None:
    if not (sqlite and table == "export_items"):
        return
    if before:
        op.drop_index(ONE_PER_INVOICE, table_name="export_items")
    else:
        op.create_index(
            ONE_PER_INVOICE,
            "export_items",
            [
                "export_id",
                sa.text("coalesce(incoming_invoice_id, 0)"),
                sa.text("coalesce(sales_invoice_id, 0)"),
            ],
            unique=True,
        )


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if not sqlite:
        # the owner is subject to row-level security too (FORCE): see every tenant's rows
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    crossing = _crossing(bind)
    if crossing:
        raise RuntimeError(
            "migration 0034: these rows refer to a row of another organization, which the new "
            "keys (organization_id, ...) refuse; nothing was changed: "
            + "; ".join(crossing)
            + ". Correct or remove them, then upgrade again."
        )
    for table in _tables():
        _rebuilding_export_items(sqlite, table, before=True)
        with _batch(table) as batch:
            if table in NEW_UNIQUE:
                batch.create_unique_constraint(
                    f"uq_{table}_organization_id_id", ["organization_id", "id"]
                )
            for child, column, parent, ondelete in KEYS:
                if child != table:
                    continue
                batch.drop_constraint(f"fk_{table}_{column}_{parent}", type_="foreignkey")
                batch.create_foreign_key(
                    f"fk_{table}_organization_id_{parent}",
                    parent,
                    ["organization_id", column],
                    ["organization_id", "id"],
                    ondelete=ondelete,
                )
        _rebuilding_export_items(sqlite, table, before=False)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in reversed(_tables()):
        _rebuilding_export_items(sqlite, table, before=True)
        with _batch(table) as batch:
            for child, column, parent, ondelete in KEYS:
                if child != table:
                    continue
                batch.drop_constraint(f"fk_{table}_organization_id_{parent}", type_="foreignkey")
                batch.create_foreign_key(
                    f"fk_{table}_{column}_{parent}", parent, [column], ["id"], ondelete=ondelete
                )
            if table in NEW_UNIQUE:
                batch.drop_constraint(f"uq_{table}_organization_id_id", type_="unique")
        _rebuilding_export_items(sqlite, table, before=False)
