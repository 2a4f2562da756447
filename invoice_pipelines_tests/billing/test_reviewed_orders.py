"""The reviewed orders waiting for an invoice (`reviewed_sales_orders`, migration 0047), on SQLite and
PostgreSQL: the database keeps them for any writer of `sales_orders`, an all-reviewed job takes
exactly them, and on PostgreSQL a chunk's marking of its orders is a heap-only update."""

from datetime import date

from sqlalchemy import inspect, select, text

from invoice_pipelines.billing.domain import chunk_postgres
from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import reviewed_sales_orders
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines_tests.billing.shop import make_shop


def waiting(shop) -> dict[int, date]:
    """{order id: order date} of the organization's rows in reviewed_sales_orders."""
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        rows = conn.execute(
            select(reviewed_sales_orders.c.sales_order_id, reviewed_sales_orders.c.order_date)
            .where(reviewed_sales_orders.c.organization_id == shop.org_id)
            .order_by(reviewed_sales_orders.c.sales_order_id)
        ).all()
    return {order_id: _day(day) for order_id, day in rows}


def _day(value) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def loader(shop, sql: str, **params) -> None:
    """What a user's own loader does: plain SQL on sales_orders, in the organization's scope."""
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(text(sql), {"org": shop.org_id, **params})


def order_ids(shop, *numbers: str) -> list[int]:
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        found = dict(
            conn.execute(
                text(
                    "SELECT order_number, id FROM sales_orders WHERE organization_id = :org "
                    "AND order_number LIKE 'L-%'"
                ),
                {"org": shop.org_id},
            ).all()
        )
    return [found[n] for n in numbers]


def test_the_waiting_orders_follow_plain_sql_inserts_updates_and_deletes(db):
    shop = make_shop(db)
    customer = shop.customer_ids[0]
    # a multi-row insert of every status
    loader(
        shop,
        "INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, status) "
        "VALUES (:org, 'L-1', :c, '2026-11-01', 'reviewed'), (:org, 'L-2', :c, '2026-11-02', 'draft'), "
        "(:org, 'L-3', :c, '2026-11-03', 'reviewed'), (:org, 'L-4', :c, '2026-11-04', 'pending'), "
        "(:org, 'L-5', :c, '2026-11-05', 'reviewed'), (:org, 'L-6', :c, '2026-11-06', 'cancelled')",
        c=customer,
    )
    l1, l2, l3, l4, l5, l6 = order_ids(shop, "L-1", "L-2", "L-3", "L-4", "L-5", "L-6")
    assert waiting(shop) == {
        l1: date(2026, 11, 1),
        l3: date(2026, 11, 3),
        l5: date(2026, 11, 5),
    }

    # reviewed in bulk, one cancelled, one moved to another day, one reviewed order's notes (no
    # change to what is waiting), each in one statement
    loader(shop, "UPDATE sales_orders SET status = 'reviewed' WHERE id IN (:a, :b)", a=l2, b=l4)
    loader(shop, "UPDATE sales_orders SET status = 'cancelled' WHERE id = :a", a=l3)
    loader(shop, "UPDATE sales_orders SET order_date = '2026-10-30' WHERE id = :a", a=l5)
    loader(shop, "UPDATE sales_orders SET notes = 'call first' WHERE organization_id = :org")
    assert waiting(shop) == {
        l1: date(2026, 11, 1),
        l2: date(2026, 11, 2),
        l4: date(2026, 11, 4),
        l5: date(2026, 10, 30),
    }

    # several transitions in one statement: reviewed ones leave, a cancelled one is reviewed again
    loader(
        shop,
        "UPDATE sales_orders SET status = CASE WHEN status = 'reviewed' THEN 'draft' "
        "ELSE 'reviewed' END WHERE id IN (:a, :b, :c)",
        a=l1,
        b=l3,
        c=l6,
    )
    assert waiting(shop) == {
        l2: date(2026, 11, 2),
        l3: date(2026, 11, 3),
        l4: date(2026, 11, 4),
        l5: date(2026, 10, 30),
        l6: date(2026, 11, 6),
    }

    loader(shop, "DELETE FROM sales_orders WHERE id IN (:a, :b)", a=l2, b=l1)
    assert set(waiting(shop)) == {l3, l4, l5, l6}


def test_an_order_moved_to_another_organization_waits_there(db):
    shop, other = make_shop(db), make_shop(db)
    loader(
        shop,
        "INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, status) "
        "VALUES (:org, 'L-1', :c, '2026-11-01', 'reviewed')",
        c=shop.customer_ids[0],
    )
    [moved] = order_ids(shop, "L-1")
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            text(
                "UPDATE sales_orders SET organization_id = :org, customer_id = :c, "
                "order_date = '2026-11-09' WHERE id = :id"
            ),
            {"org": other.org_id, "c": other.customer_ids[0], "id": moved},
        )
    assert waiting(shop) == {}
    assert waiting(other) == {moved: date(2026, 11, 9)}


def test_a_job_of_all_reviewed_orders_takes_exactly_the_waiting_ones_up_to_its_date(db):
    shop = make_shop(db)
    first = shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 3))
    earlier = shop.add_order([("BOOK", 1)], order_date=date(2026, 11, 1), status="draft")
    dropped = shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 2))
    late = shop.add_order([("HOUR", 1)], order_date=date(2026, 11, 20))
    invoiced = shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 1))
    shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 2), status="pending")
    process_batch_job(
        shop.engine,
        enqueue_sales_orders(
            shop.engine,
            find_organization(shop.engine, shop.org_id),
            order_ids=[invoiced],
            created_by="t",
        ),
        system=shop.engine,
    )
    # a user's loader reviews one order and cancels another, in plain SQL
    loader(shop, "UPDATE sales_orders SET status = 'reviewed' WHERE id = :a", a=earlier)
    loader(shop, "UPDATE sales_orders SET status = 'cancelled' WHERE id = :a", a=dropped)
    assert set(waiting(shop)) == {first, earlier, late}

    job = process_batch_job(
        shop.engine,
        enqueue_sales_orders(
            shop.engine,
            find_organization(shop.engine, shop.org_id),
            all_reviewed=True,
            up_to="2026-11-10",
        ),
        system=shop.engine,
    )
    assert (job.total_count, job.successful_count, job.failed_count) == (2, 2, 0)
    # in order date order, the invoiced, cancelled, pending and later orders left alone
    assert [i["sales_order_id"] for i in shop.invoices()] == [invoiced, earlier, first]
    assert set(waiting(shop)) == {late}
    assert shop.order_status(dropped) == "cancelled"

    job = process_batch_job(
        shop.engine,
        enqueue_sales_orders(
            shop.engine, find_organization(shop.engine, shop.org_id), all_reviewed=True
        ),
        system=shop.engine,
    )
    assert (job.total_count, job.successful_count) == (1, 1)
    assert [i["sales_order_id"] for i in shop.invoices()][-1] == late
    assert waiting(shop) == {}


def test_a_chunk_marks_its_orders_as_heap_only_updates(pg_database, monkeypatch):
    """PostgreSQL: no index of sales_orders mentions a column the marking changes, and each page
    has room for the new versions, so every order of the chunk is updated heap-only (no index
    entry written). With the status indexed (before 0047) none was."""
    shop = make_shop(pg_database)
    orders = shop.add_many(60)
    counted: list[tuple[int, int]] = []
    real = chunk_postgres.write_chunk
    # this backend's counts of updated and heap-only updated orders (its own transaction's
    # included; those of earlier ones until they are reported, so the chunk's are a difference)
    counts = text(
        "SELECT pg_stat_get_xact_tuples_updated('sales_orders'::regclass), "
        "pg_stat_get_xact_tuples_hot_updated('sales_orders'::regclass)"
    )

    def write_and_count(conn, ctx, *rest):
        updated, hot = conn.execute(counts).one()
        outcome = real(conn, ctx, *rest)
        after = conn.execute(counts).one()
        counted.append((after[0] - updated, after[1] - hot))
        return outcome

    monkeypatch.setattr(chunk_postgres, "write_chunk", write_and_count)
    job = process_batch_job(
        shop.engine,
        enqueue_sales_orders(
            shop.engine, find_organization(shop.engine, shop.org_id), all_reviewed=True
        ),
        system=shop.engine,
        chunk_size=25,
    )
    assert job.successful_count == len(orders)
    # (updated, heap-only) per chunk; the chunks are written by workers side by side, so in any
    # order (the last, short chunk first now and then)
    assert sorted(counted) == [(10, 10), (25, 25), (25, 25)]
    assert waiting(shop) == {}


def test_only_the_primary_key_indexes_the_order(db):
    """The triggers delete a chunk's orders by `sales_order_id = ANY(...)`. Had another index the
    order id in a later column, statistics taken while the table was empty let the planner scan
    that whole index for each chunk (35 s for 5,000 orders in a bench run)."""
    with db.owner_engine.connect() as conn:
        indexes = inspect(conn).get_indexes("reviewed_sales_orders")
        key = inspect(conn).get_pk_constraint("reviewed_sales_orders")
    assert key["constrained_columns"] == ["sales_order_id"]
    assert [i["column_names"] for i in indexes] == [["organization_id", "order_date"]]
