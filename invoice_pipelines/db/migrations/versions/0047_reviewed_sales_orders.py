"""The reviewed orders waiting for an invoice in a table of their own; sales_orders' status unindexed (issue 59)

Revision ID: 0047
Revises: 0046

`reviewed_sales_orders`: one row per sales order whose status is `reviewed`, with its organization
and order date. It is the working set that an all-reviewed batch job claims
(`billing/invoicing.py`, `_expand_all_reviewed`, in order date order, `--up-to` bounding it) and
that the daily check counts (`billing/checks.py`, reviewed orders left waiting): both read it
through `ix_reviewed_sales_orders_org_date` (organization, order date), however many invoiced orders the organization has.

The database keeps it, not our code: orders are written by users' own loaders too (plain SQL into
`sales_orders`). On PostgreSQL, two statement-level triggers with transition tables on
`sales_orders` (one call per statement, not per row: a chunk marks 5,000 orders in one `UPDATE`):
an insert adds the reviewed ones; an update removes the orders that left `reviewed` (a chunk's
marking, a cancellation) and adds or moves those reviewed now (status, order date or organization
changed). A delete needs no trigger: the foreign key (organization_id, sales_order_id) ->
sales_orders cascades (and follows a changed key, ON UPDATE CASCADE). On SQLite, row triggers do
the same (and one on delete, for a loader that connects without `PRAGMA foreign_keys`).

`ix_sales_orders_org_status_date` goes: it was the one index of `sales_orders` that mentions
`status`, so a chunk's reviewed -> invoiced was never a heap-only update (five index entries
written per order). Without it, and with fillfactor 45 on PostgreSQL (each page keeps room for a
second version of every order on it: a chunk's old versions cannot be pruned before it commits),
the marking touches no index of `sales_orders`; its cost moves to deleting the orders' rows here.
The fillfactor applies to pages written from now on: pages already full (orders loaded before this
revision) get room when the table is rewritten (`VACUUM FULL sales_orders`, an exclusive lock, at
a time of the operator's choosing; this migration does not take it).

A tenant table under row-level security; filled from the orders reviewed now.
"""

import sqlalchemy as sa
from alembic import op

from invoice_pipelines.db.engine import app_role
from invoice_pipelines.db.rls import protect_tables, unprotect_tables
from invoice_pipelines.db.types import Id

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None

TABLE = "reviewed_sales_orders"
INDEX = f"ix_{TABLE}_org_date"
STATUS_INDEX = "ix_sales_orders_org_status_date"
FILLFACTOR = 45

# PostgreSQL: the functions run as the statement's user (SECURITY INVOKER), so the side table's
# rows pass the same tenant policy as the orders they follow.
PG_FUNCTIONS = f"""
CREATE FUNCTION {TABLE}_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {TABLE} (sales_order_id, organization_id, order_date)
    SELECT id, organization_id, order_date FROM new_orders WHERE status = 'reviewed';
    RETURN NULL;
END
$$;
CREATE FUNCTION {TABLE}_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- orders that left 'reviewed' (invoiced by a chunk, cancelled, back to draft); by primary key
    -- (`= ANY(ARRAY(...))`), and only when the statement touched a reviewed order at all
    IF EXISTS (SELECT 1 FROM old_orders WHERE status = 'reviewed') THEN
        DELETE FROM {TABLE}
        WHERE sales_order_id = ANY(ARRAY(SELECT id FROM new_orders WHERE status <> 'reviewed'));
    END IF;
    -- orders reviewed now, or reviewed still with another date or organization (a changed id or
    -- organization has moved the row already: ON UPDATE CASCADE; the conflict updates it)
    IF EXISTS (SELECT 1 FROM new_orders WHERE status = 'reviewed') THEN
        INSERT INTO {TABLE} (sales_order_id, organization_id, order_date)
        SELECT n.id, n.organization_id, n.order_date FROM new_orders n
        WHERE n.status = 'reviewed' AND NOT EXISTS (
            SELECT 1 FROM old_orders o
            WHERE o.id = n.id AND o.status = 'reviewed'
              AND o.organization_id = n.organization_id AND o.order_date = n.order_date
        )
        ON CONFLICT (sales_order_id) DO UPDATE
        SET organization_id = EXCLUDED.organization_id, order_date = EXCLUDED.order_date;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER {TABLE}_insert AFTER INSERT ON sales_orders
    REFERENCING NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_inserted();
CREATE TRIGGER {TABLE}_update AFTER UPDATE ON sales_orders
    REFERENCING OLD TABLE AS old_orders NEW TABLE AS new_orders
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_updated();
"""

SQLITE_TRIGGERS = (
    f"""
    CREATE TRIGGER {TABLE}_insert AFTER INSERT ON sales_orders
    WHEN NEW.status = 'reviewed'
    BEGIN
        INSERT INTO {TABLE} (sales_order_id, organization_id, order_date)
        VALUES (NEW.id, NEW.organization_id, NEW.order_date);
    END
    """,
    f"""
    CREATE TRIGGER {TABLE}_update AFTER UPDATE OF status, order_date, organization_id, id
    ON sales_orders
    WHEN OLD.status = 'reviewed' OR NEW.status = 'reviewed'
    BEGIN
        DELETE FROM {TABLE} WHERE sales_order_id IN (OLD.id, NEW.id);
        INSERT INTO {TABLE} (sales_order_id, organization_id, order_date)
        SELECT NEW.id, NEW.organization_id, NEW.order_date WHERE NEW.status = 'reviewed';
    END
    """,
    f"""
    CREATE TRIGGER {TABLE}_delete AFTER DELETE ON sales_orders
    WHEN OLD.status = 'reviewed'
    BEGIN
        DELETE FROM {TABLE} WHERE sales_order_id = OLD.id;
    END
    """,
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        TABLE,
        sa.Column("sales_order_id", Id, nullable=False, autoincrement=False),
        sa.Column("organization_id", Id, nullable=False),
        sa.Column("order_date", sa.Date, nullable=False),
        sa.PrimaryKeyConstraint("sales_order_id", name=f"pk_{TABLE}"),
        sa.ForeignKeyConstraint(
            ["organization_id", "sales_order_id"],
            ["sales_orders.organization_id", "sales_orders.id"],
            ondelete="CASCADE",
            onupdate="CASCADE",
            name=f"fk_{TABLE}_organization_id_sales_orders",
        ),
    )
    # not (..., sales_order_id): the triggers' `sales_order_id = ANY(...)` must have no index but the
    # primary key to choose; with statistics from when the table was empty the planner took that
    # index's third column for the lookup, a scan of the whole index per chunk, 35 s for 5,000 orders
    op.create_index(INDEX, TABLE, ["organization_id", "order_date"])
    if postgres:
        # the owner is subject to row-level security too (FORCE): see every tenant's orders
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
    op.execute(
        f"INSERT INTO {TABLE} (sales_order_id, organization_id, order_date) "
        "SELECT id, organization_id, order_date FROM sales_orders WHERE status = 'reviewed'"
    )
    if postgres:
        op.execute(PG_FUNCTIONS)
        op.execute(f"ALTER TABLE sales_orders SET (fillfactor = {FILLFACTOR})")
        protect_tables(bind, app_role(), [TABLE])
    else:
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
    op.drop_index(STATUS_INDEX, table_name="sales_orders")


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_index(STATUS_INDEX, "sales_orders", ["organization_id", "status", "order_date"])
    if postgres:
        op.execute("SELECT set_config('invoice_pipelines.system', 'on', true)")
        op.execute(f"DROP TRIGGER {TABLE}_update ON sales_orders")
        op.execute(f"DROP TRIGGER {TABLE}_insert ON sales_orders")
        op.execute(f"DROP FUNCTION {TABLE}_updated()")
        op.execute(f"DROP FUNCTION {TABLE}_inserted()")
        op.execute("ALTER TABLE sales_orders RESET (fillfactor)")
        unprotect_tables(bind, app_role(), [TABLE])
    else:
        for name in ("delete", "update", "insert"):
            op.execute(f"DROP TRIGGER {TABLE}_{name}")
    op.drop_index(INDEX, table_name=TABLE)
    op.drop_table(TABLE)
