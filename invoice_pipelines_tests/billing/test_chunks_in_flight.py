"""PostgreSQL: chunks of one job in flight at once (`billing/domain/chunks_in_flight.py`), and what happens when
another writer of the organization gets in between."""

import logging
import threading
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.domain import chunk_postgres
from invoice_pipelines.billing.domain.chunk_transaction import chunk_context
from invoice_pipelines.billing.domain.chunks_in_flight import CONSEQUENCES, UNIQUE_VIOLATION
from invoice_pipelines.billing.domain.invoicing import claim_batch_job, process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import batch_jobs
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.item_rows import record_items_statement
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines_tests.billing.shop import hook_chunk_writes, make_shop


def test_chunks_in_flight_number_in_request_order_with_ids_in_number_order(pg_database):
    shop = make_shop(pg_database)
    orders = shop.add_many(95)
    requested = list(reversed(orders))
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=requested
    )
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=10, workers=3)
    assert (job.status, job.successful_count, job.processed_count) == ("completed", 95, 95)
    invoices = shop.invoices()  # by number
    assert [i["sequence_number"] for i in invoices] == list(range(1, 96))
    assert [i["sales_order_id"] for i in invoices] == requested
    ids = [i["id"] for i in invoices]
    assert ids == sorted(ids)
    assert shop.inventory("TOOL") == 1000 - 2 * 95  # stock taken once per order


def test_another_job_numbering_between_two_chunks_in_flight_stays_gapless(
    pg_database, monkeypatch, caplog
):
    """Job B invoices while job A's second chunk is prepared with numbers A expected to get."""
    shop = make_shop(pg_database)
    a_orders = shop.add_many(40)
    b_orders = shop.add_many(5)
    a_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=a_orders
    )
    b_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=b_orders
    )
    real_prepare = chunk_postgres.prepare_chunk

    def prepare(conn, ctx):
        counts = real_prepare(conn, ctx)
        if ctx.job_id == a_id and ctx.after_position == 10:
            # A's first chunk commits on its own; then B takes the next numbers, 11..15, which
            # A's second chunk (numbers not yet written) expects to use
            deadline = time.monotonic() + 60
            while get_batch_job(shop.engine, a_id).processed_count < 10:
                assert time.monotonic() < deadline, "A's first chunk never committed"
                time.sleep(0.01)
            assert (
                process_batch_job(shop.engine, b_id, system=shop.engine, workers=1).status
                == "completed"
            )
        return counts

    monkeypatch.setattr(chunk_postgres, "prepare_chunk", prepare)
    with caplog.at_level(logging.INFO, logger="invoice_pipelines.billing.domain.chunks_in_flight"):
        a = process_batch_job(shop.engine, a_id, system=shop.engine, chunk_size=10, workers=2)
    assert (a.status, a.successful_count) == ("completed", 40)
    assert "goes under the sequence lock" in caplog.text
    # a real conflict: A's second chunk wrote numbers B had committed; the chunks after it follow
    assert a.fallback_causes[UNIQUE_VIOLATION] == 1, a.fallback_causes
    assert set(a.fallback_causes) <= {UNIQUE_VIOLATION} | CONSEQUENCES, a.fallback_causes
    assert a.fallbacks == sum(a.fallback_causes.values()) == 3  # positions 11..40, one at a time
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 46))
    by_job = {}
    for invoice in invoices:
        by_job.setdefault(invoice["batch_job_id"], []).append(invoice["sequence_number"])
    assert by_job[b_id] == [11, 12, 13, 14, 15]
    assert by_job[a_id] == list(range(1, 11)) + list(range(16, 46))
    assert shop.invoice_count_per_order() == {o: 1 for o in a_orders + b_orders}
    # A's orders still get their numbers in request order
    assert [i["sales_order_id"] for i in invoices if i["batch_job_id"] == a_id] == a_orders


@pytest.mark.parametrize("workers", [0, -1, 9])
def test_workers_must_be_positive(pg_database, workers):
    with pytest.raises(ValueError, match="workers"):
        process_batch_job(pg_database.engine, 1, system=pg_database.system_engine, workers=workers)


def test_chunk_lookups_use_primary_keys_even_with_statistics_from_before_the_orders(pg_database):
    """A new tenant's first batch: statistics say the organization has no orders.

    With the organization in the order lookup, PostgreSQL walked the organization index once per
    item (a 5,000-order chunk took 17-48 s instead of 20 ms); marking orders and recording items
    as joins scanned whole tables per chunk. The plans must go by key.
    """
    make_shop(pg_database).add_many(3000)  # an older tenant: the table is not small
    shop = make_shop(pg_database)
    with pg_database.owner_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.exec_driver_sql("ANALYZE")  # before the new tenant's orders exist
    orders = shop.add_many(300)
    org = find_organization(shop.engine, shop.org_id)
    job_id = enqueue_sales_orders(shop.engine, org, order_ids=orders)
    job = get_batch_job(shop.engine, job_id)
    assert claim_batch_job(shop.engine, org, job, "test")
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        row = conn.execute(select(batch_jobs).where(batch_jobs.c.id == job_id)).mappings().one()
        ctx = chunk_context(conn, org, job, row, 300, 0, utcnow(), 0)
        counts = chunk_postgres.prepare_chunk(conn, ctx)
        assert counts.succeeded == 300
        params = chunk_postgres._params(ctx)

        def plan(statement: str) -> str:
            rows = conn.execute(text("EXPLAIN " + statement), params).scalars()
            return "\n".join(rows)

        take = plan(chunk_postgres.TAKE_ORDERS)
        assert "pk_sales_orders" in take and "ix_sales_orders_org_status_date" not in take, take
        mark = plan(chunk_postgres.MARK_ORDERS)
        assert "pk_sales_orders" in mark and "Seq Scan on sales_orders" not in mark, mark
        record = plan(record_items_statement(chunk_postgres.ITEM_OUTCOMES))
        assert "Seq Scan on batch_job_items" not in record, record
        # the invoice id sequence is looked up once (an InitPlan), not once per id drawn
        allocate = "\n".join(
            conn.execute(
                text("EXPLAIN VERBOSE " + chunk_postgres.ALLOCATE_IDS), {"n": counts.succeeded}
            ).scalars()
        )
        assert not [
            line
            for line in allocate.splitlines()
            if "nextval(" in line and "pg_get_serial_sequence" in line
        ], allocate
        conn.rollback()


def test_a_chunk_holds_its_items_until_it_commits(pg_database, monkeypatch):
    """Invoice lines refer to items without a foreign key; the chunk locks the items it uses."""
    shop = make_shop(pg_database)
    orders = shop.add_many(4)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    seen = []

    def try_to_change_a_used_item(ctx):
        with shop.engine.connect() as other:
            other.exec_driver_sql("SET lock_timeout = '300ms'")
            other.execute(
                text("SELECT set_config('invoice_pipelines.organization_id', :org, false)"),
                {"org": str(shop.org_id)},
            )
            try:
                # a key change (or a delete) of an item the chunk's lines refer to must wait
                other.execute(
                    text("UPDATE items SET id = id + 1000000 WHERE id = :id"),
                    {"id": shop.item_ids["TOOL"]},
                )
            except DBAPIError as exc:
                seen.append(getattr(exc.orig, "pgcode", None))
            other.rollback()

    module, name, wrapper = hook_chunk_writes("postgresql", try_to_change_a_used_item)
    monkeypatch.setattr(module, name, wrapper)
    assert (
        process_batch_job(shop.engine, job_id, system=shop.engine, workers=1).successful_count == 4
    )
    assert seen == ["55P03"]  # lock_not_available: the chunk held the item


def test_a_second_runner_of_the_same_job_does_not_count_items_twice(pg_database, monkeypatch):
    """Runner A reads a chunk; runner B records the same chunk first; A must not count it again."""
    shop = make_shop(pg_database)
    orders = shop.add_many(4)
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(
            text("UPDATE sales_orders SET status = 'draft' WHERE id = ANY(:ids)"), {"ids": orders}
        )
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    real_prepare = chunk_postgres.prepare_chunk
    started = threading.Lock()
    b_committed_one, a_done = threading.Event(), threading.Event()

    def b_progress(job):  # B stops after its first chunk until A has finished
        b_committed_one.set()
        assert a_done.wait(60)

    runner_b = threading.Thread(
        target=process_batch_job,
        args=(shop.engine, job_id),
        kwargs={"system": shop.engine, "chunk_size": 2, "workers": 1, "on_progress": b_progress},
        name="runner-b",
    )

    def prepare(conn, ctx):
        counts = real_prepare(conn, ctx)
        # runner A's first chunk, after reading its items and before writing anything
        if threading.current_thread().name.startswith("batch-job-") and started.acquire(False):
            runner_b.start()
            assert b_committed_one.wait(60)
        return counts

    monkeypatch.setattr(chunk_postgres, "prepare_chunk", prepare)
    try:
        process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=2, workers=2)
    finally:
        a_done.set()
        runner_b.join(60)
    job = get_batch_job(shop.engine, job_id)
    assert (job.status, job.processed_count, job.failed_count) == ("completed_with_errors", 4, 4)
    assert len(job.errors) == 4


def test_an_interrupted_run_leaves_no_chunk_open_and_the_job_resumes(pg_database):
    shop = make_shop(pg_database)
    orders = shop.add_many(60)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )

    def interrupt(job):
        raise KeyboardInterrupt  # Ctrl-C during `batch-invoice --wait`

    with pytest.raises(KeyboardInterrupt):
        process_batch_job(
            shop.engine, job_id, system=shop.engine, chunk_size=10, workers=2, on_progress=interrupt
        )
    assert not [t for t in threading.enumerate() if t.name.startswith(f"batch-job-{job_id}-")]
    job = get_batch_job(shop.engine, job_id)
    assert job.status == "processing" and job.processed_count < 60
    # nothing holds a lock: the resume finishes, gapless, each order once
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=10, workers=2)
    assert (job.status, job.successful_count) == ("completed", 60)
    assert [i["sequence_number"] for i in shop.invoices()] == list(range(1, 61))
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}


def _waiting_advisory_locks(db) -> int:  # a TestDatabase
    with db.owner_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ).scalar_one()


def _wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 60  # only stops a hang; the condition is met without waiting
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def test_a_single_job_never_falls_back_while_the_chunk_before_is_still_committing(
    pg_database, monkeypatch, caplog
):
    """Each chunk finishes its commit (sequence and job row locked) only once the chunk after it
    waits for it: the chunk after must then get the sequence, not fall back (as it would with a
    NOWAIT while the chunk before still holds the lock, or a timeout on that wait)."""
    shop = make_shop(pg_database)
    orders = shop.add_many(50)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    real_take_stock = chunk_postgres.take_stock
    held = []

    def slow_commit(conn, ctx):
        real_take_stock(conn, ctx)
        if ctx.after_position + ctx.limit < len(orders):
            # the next chunk has written its invoices and now waits for this one to end
            _wait_until(
                lambda: _waiting_advisory_locks(pg_database) == 1,
                f"the chunk after position {ctx.after_position + ctx.limit} waits for this one",
            )
            held.append(ctx.after_position)

    monkeypatch.setattr(chunk_postgres, "take_stock", slow_commit)
    with caplog.at_level(logging.INFO, logger="invoice_pipelines.billing.domain.chunks_in_flight"):
        job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=10, workers=2)
    assert held == [0, 10, 20, 30]
    assert (job.status, job.successful_count) == ("completed", 50)
    assert (job.fallbacks, job.fallback_causes) == (0, {})
    assert "sequence lock" not in caplog.text
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 51))
    assert [i["sales_order_id"] for i in invoices] == orders
    assert shop.inventory("TOOL") == 1000 - 2 * 50


def _draft_job(shop, count: int) -> tuple[int, list[int]]:
    """A job whose orders all fail (draft): its chunks invoice nothing."""
    orders = shop.add_many(count)
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(
            text("UPDATE sales_orders SET status = 'draft' WHERE id = ANY(:ids)"), {"ids": orders}
        )
    return enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    ), orders


def test_a_chunk_without_invoices_goes_on_while_another_job_holds_the_sequence(
    pg_database, monkeypatch, caplog
):
    """Job B holds the sequence (one chunk at a time) while job A's chunks invoice nothing: no
    conflict, A must neither fall back nor wait for B (it used to fail its NOWAIT and fall back)."""
    shop = make_shop(pg_database)
    a_id, a_orders = _draft_job(shop, 6)
    b_orders = shop.add_many(3)
    b_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=b_orders
    )
    a_result = []
    a_fell_back = threading.Event()

    class FallbackSeen(logging.Handler):
        def emit(self, record):
            if (
                f"batch job {a_id}:" in record.getMessage()
                and "sequence lock" in record.getMessage()
            ):
                a_fell_back.set()

    def run_a():
        a_result.append(
            process_batch_job(shop.engine, a_id, system=shop.engine, chunk_size=2, workers=2)
        )

    def with_the_sequence_locked(ctx):
        if ctx.job_id == b_id:
            a = threading.Thread(target=run_a)
            a.start()
            _wait_until(lambda: not a.is_alive() or a_fell_back.is_set(), "A ends or falls back")

    handler = FallbackSeen()
    logger = logging.getLogger("invoice_pipelines.billing.domain.chunks_in_flight")
    logger.addHandler(handler)
    monkeypatch.setattr(*hook_chunk_writes("postgresql", with_the_sequence_locked))
    try:
        with caplog.at_level(
            logging.INFO, logger="invoice_pipelines.billing.domain.chunks_in_flight"
        ):
            b = process_batch_job(shop.engine, b_id, system=shop.engine, chunk_size=10, workers=1)
            _wait_until(lambda: bool(a_result), "A ends")
    finally:
        logger.removeHandler(handler)
    a = a_result[0]
    assert "sequence lock" not in caplog.text
    assert (a.status, a.failed_count, a.fallbacks) == ("completed_with_errors", 6, 0)
    assert (b.status, b.successful_count) == ("completed", 3)
    assert [i["sequence_number"] for i in shop.invoices()] == [1, 2, 3]
    assert shop.invoice_count_per_order() == {o: 1 for o in b_orders}


def test_a_chunk_without_invoices_does_not_fall_back_when_another_job_moved_the_sequence(
    pg_database, monkeypatch, caplog
):
    """Job B commits numbers while job A's chunks (no invoices) are in flight: nothing A wrote
    depends on where the sequence stands, so A commits them (it used to fall back)."""
    shop = make_shop(pg_database)
    a_id, _ = _draft_job(shop, 4)
    b_orders = shop.add_many(3)
    b_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=b_orders
    )

    def b_in_between(ctx):
        if ctx.job_id == a_id and ctx.after_position == 0:
            # A's first chunk expected the sequence at 0; B takes 1..3 before A's chunk commits
            assert (
                process_batch_job(shop.engine, b_id, system=shop.engine, workers=1).status
                == "completed"
            )

    monkeypatch.setattr(*hook_chunk_writes("postgresql", b_in_between))
    with caplog.at_level(logging.INFO, logger="invoice_pipelines.billing.domain.chunks_in_flight"):
        a = process_batch_job(shop.engine, a_id, system=shop.engine, chunk_size=2, workers=2)
    assert "sequence lock" not in caplog.text
    assert (a.status, a.failed_count, a.fallbacks) == ("completed_with_errors", 4, 0)
    assert [i["sequence_number"] for i in shop.invoices()] == [1, 2, 3]
    assert shop.invoice_count_per_order() == {o: 1 for o in b_orders}
