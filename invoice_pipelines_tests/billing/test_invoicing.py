"""Batch invoicing on SQLite and PostgreSQL: totals, numbers, eligibility, idempotence, cancel, retry."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from invoice_pipelines.billing.domain.invoicing import claim_batch_job, process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    enqueue_sales_orders,
)
from invoice_pipelines.core.numbering import is_gapless
from invoice_pipelines.db.tables import batch_jobs, customers, items, sales_orders
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.jobs import (
    cancel_batch_job,
    get_batch_job,
    job_item_outcomes,
    retry_failed,
)
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.queue.domain.stats import batch_stats
from invoice_pipelines.queue.domain.stuck import fail_stuck_jobs
from invoice_pipelines_tests.billing.shop import hook_chunk_writes, make_shop

D = Decimal
DAY = date(2026, 11, 30)


def invoice_orders(shop, order_ids, *, chunk_size=100, **kwargs):
    job_id = enqueue_sales_orders(
        shop.engine,
        find_organization(shop.engine, shop.org["slug"]),
        order_ids=order_ids,
        invoice_date=DAY,
        **kwargs,
    )
    return process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=chunk_size)


def outcomes(shop, job, statuses=("failed", "skipped", "succeeded")):
    return {
        o["sales_order_id"] or o["payload"]["sales_order_id"]: (
            o["status"],
            o["error_code"],
            o["error_message"],
        )
        for o in job_item_outcomes(shop.engine, job, statuses=statuses, limit=1000)
    }


def test_invoices_orders_with_exact_totals_numbers_and_stock(db):
    shop = make_shop(db)
    mixed = shop.add_order(
        [
            ("TOOL", 2),
            ("BOOK", 1),
            ("HOUR", "1.5"),
            ("discount", "10.00", "S", "19.00"),
            ("EXPORT", 1),
            ("ZERO", 1),
        ]
    )
    odd = shop.add_order([("ODD", 3), ("ODD", 1, "0.125")])
    job = invoice_orders(shop, [mixed, odd], due_days=14, created_by="anna")

    assert (job.status, job.total_count, job.successful_count, job.failed_count) == (
        "completed",
        2,
        2,
        0,
    )
    first, second = shop.invoices()
    assert (first["invoice_number"], second["invoice_number"]) == (
        "RE-2026-000001",
        "RE-2026-000002",
    )
    assert (first["sales_order_id"], first["issue_date"], first["due_date"]) == (
        mixed,
        DAY,
        DAY + timedelta(days=14),
    )
    assert (first["net_total"], first["tax_total"], first["gross_total"], first["amount_due"]) == (
        D("312.50"),
        D("32.73"),
        D("345.23"),
        D("345.23"),
    )
    assert shop.breakdown(first["id"]) == [
        ("AE", D("0.00"), D("100.00"), D("0.00")),
        ("S", D("7.00"), D("39.95"), D("2.80")),
        ("S", D("19.00"), D("157.55"), D("29.93")),
        ("Z", D("0.00"), D("15.00"), D("0.00")),
    ]
    assert [line["net_amount"] for line in shop.invoice_lines(first["id"])] == [
        D("49.80"),
        D("39.95"),
        D("117.75"),
        D("-10.00"),
        D("100.00"),
        D("15.00"),
    ]
    # 3 x 0.3333 = 0.9999 -> 1.00 and 0.125 -> 0.13, half up; VAT on 1.13 at 19 % = 0.2147 -> 0.21
    assert (second["net_total"], second["tax_total"], second["gross_total"]) == (
        D("1.13"),
        D("0.21"),
        D("1.34"),
    )
    assert first["created_by"] == "anna" and first["batch_job_id"] == job.id
    assert shop.order_status(mixed) == shop.order_status(odd) == "invoiced"
    # stock items leave the inventory, services do not
    assert shop.inventory("TOOL") == D("998")
    assert shop.inventory("BOOK") == D("499")
    assert shop.inventory("ODD") == D("96")
    assert shop.inventory("HOUR") == D("0")


def test_every_ineligible_order_is_an_item_with_a_reason(db):
    shop = make_shop(db)
    good = shop.add_order([("TOOL", 1)])
    pending = shop.add_order([("TOOL", 1)], status="pending")
    draft = shop.add_order([("TOOL", 1)], status="draft")
    cancelled = shop.add_order([("TOOL", 1)], status="cancelled")
    empty = shop.add_order([])
    inactive_customer = shop.add_order([("TOOL", 1)], customer=1)
    inactive_item = shop.add_order([("BOOK", 1), ("TOOL", 1)])
    bad_vat = shop.add_order([("discount", "1.00", "AE", "19.00")])
    shop.set_active(customers, shop.customer_ids[1], False)
    shop.set_active(items, shop.item_ids["BOOK"], False)

    job = invoice_orders(
        shop,
        [
            good,
            pending,
            draft,
            cancelled,
            empty,
            inactive_customer,
            inactive_item,
            bad_vat,
            987654321,
        ],
    )

    assert job.status == "completed_with_errors"
    assert (job.total_count, job.processed_count, job.successful_count, job.failed_count) == (
        9,
        9,
        2,
        7,
    )
    got = outcomes(shop, job)
    assert got[good][0] == got[pending][0] == "succeeded"
    assert got[draft] == (
        "failed",
        "wrong_status",
        "order status is draft; only reviewed or pending orders are invoiced",
    )
    assert got[cancelled][1] == "wrong_status"
    assert got[empty] == ("failed", "no_lines", "the order has no lines")
    assert got[inactive_customer] == ("failed", "inactive_customer", "customer K-2 is inactive")
    assert got[inactive_item] == ("failed", "inactive_item", "item BOOK is inactive")
    assert got[bad_vat][1] == "invalid_vat" and "AE 19.00" in got[bad_vat][2]
    assert got[987654321] == (
        "failed",
        "unknown_order",
        "no sales order 987654321 in this organization",
    )
    # the job row keeps the errors too, in request order
    assert [e["code"] for e in job.errors] == [
        "wrong_status",
        "wrong_status",
        "no_lines",
        "inactive_customer",
        "inactive_item",
        "invalid_vat",
        "unknown_order",
    ]
    # failed orders are untouched and numbering stays gapless
    assert shop.order_status(draft) == "draft"
    assert [i["sequence_number"] for i in shop.invoices()] == [1, 2]


def test_invoicing_again_skips_without_new_numbers(db):
    shop = make_shop(db)
    orders = shop.add_orders(5)
    invoice_orders(shop, orders[:3], chunk_size=2)
    again = invoice_orders(shop, orders, chunk_size=2)
    assert (again.status, again.successful_count, again.skipped_count, again.failed_count) == (
        "completed",
        2,
        3,
        0,
    )
    skipped = [o for o, (status, _, _) in outcomes(shop, again).items() if status == "skipped"]
    assert sorted(skipped) == sorted(orders[:3])
    assert [i["sequence_number"] for i in shop.invoices()] == [1, 2, 3, 4, 5]
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}


def test_numbers_follow_request_order_across_chunks_and_jobs(db):
    shop = make_shop(db, invoice_number_format="INV-{counter:04d}")
    orders = shop.add_orders(7)
    requested = list(reversed(orders))
    invoice_orders(shop, requested, chunk_size=3)
    more = shop.add_orders(2)
    invoice_orders(shop, more, chunk_size=3)
    invoices = shop.invoices()
    assert [i["sales_order_id"] for i in invoices] == requested + more
    assert [i["invoice_number"] for i in invoices] == [f"INV-{n:04d}" for n in range(1, 10)]


def test_all_reviewed_up_to_a_date(db):
    shop = make_shop(db)
    early = shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 1))
    late = shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 20))
    shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 2), status="pending")
    shop.add_order([("TOOL", 1)], order_date=date(2026, 11, 2), status="draft")
    job_id = enqueue_sales_orders(
        shop.engine,
        find_organization(shop.engine, shop.org["id"]),
        all_reviewed=True,
        up_to="2026-11-10",
    )
    job = process_batch_job(shop.engine, job_id, system=shop.engine)
    assert (job.total_count, job.successful_count) == (1, 1)
    assert [i["sales_order_id"] for i in shop.invoices()] == [early]
    job = process_batch_job(
        shop.engine,
        enqueue_sales_orders(
            shop.engine, find_organization(shop.engine, shop.org["id"]), all_reviewed=True
        ),
        system=shop.engine,
    )
    assert [i["sales_order_id"] for i in shop.invoices()] == [early, late]


def test_default_invoice_date_is_today_where_the_organization_is(db):
    shop = make_shop(db, timezone="Pacific/Kiritimati")
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org["id"]), order_ids=shop.add_orders(1)
    )
    from datetime import datetime
    from zoneinfo import ZoneInfo

    assert (
        get_batch_job(shop.engine, job_id).invoice_date
        == datetime.now(ZoneInfo("Pacific/Kiritimati")).date()
    )


def test_bad_requests_are_refused_with_a_clear_message(db):
    shop = make_shop(db)
    with pytest.raises(BatchRequestError, match="either order ids or all_reviewed"):
        enqueue_sales_orders(
            shop.engine,
            find_organization(shop.engine, shop.org["id"]),
            order_ids=[1],
            all_reviewed=True,
        )
    with pytest.raises(BatchRequestError, match="positive integers"):
        enqueue_sales_orders(
            shop.engine, find_organization(shop.engine, shop.org["id"]), order_ids=["12x"]
        )
    with pytest.raises(BatchRequestError, match="date like"):
        enqueue_sales_orders(
            shop.engine,
            find_organization(shop.engine, shop.org["id"]),
            order_ids=[1],
            invoice_date="30.11.2026",
        )


def test_a_row_inserted_by_another_application_is_processed(db):
    shop = make_shop(db)
    orders = shop.add_orders(3)
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        job_id = conn.execute(
            batch_jobs.insert()
            .values(
                organization_id=shop.org_id,
                request={"order_ids": [orders[2], orders[0], orders[2]]},
            )
            .returning(batch_jobs.c.id)
        ).scalar_one()
        bad_id = conn.execute(
            batch_jobs.insert()
            .values(organization_id=shop.org_id, request={"orders": "all"})
            .returning(batch_jobs.c.id)
        ).scalar_one()
    job = process_batch_job(shop.engine, job_id, system=shop.engine)
    assert (job.status, job.total_count, job.successful_count) == (
        "completed",
        2,
        2,
    )  # duplicate dropped
    assert [i["sales_order_id"] for i in shop.invoices()] == [orders[2], orders[0]]
    bad = process_batch_job(shop.engine, bad_id, system=shop.engine)
    assert bad.status == "failed" and "names no orders" in bad.failure_reason


def test_organizations_cannot_invoice_each_others_orders(db):
    mine, theirs = make_shop(db), make_shop(db)
    their_order = theirs.add_orders(1)[0]
    job = invoice_orders(mine, [their_order])
    assert outcomes(mine, job)[their_order][1] == "unknown_order"
    assert theirs.order_status(their_order) == "reviewed"
    assert mine.invoices() == [] and theirs.invoices() == []


def test_same_orders_give_the_same_invoices_on_sqlite_and_postgresql(sqlite_database, pg_database):
    """SQLite computes in Python Decimal, PostgreSQL in SQL NUMERIC: the results must be identical."""
    results = []
    for database in (sqlite_database, pg_database):
        shop = make_shop(database)
        orders = [
            shop.add_order([("TOOL", "3"), ("ODD", "7"), ("discount", "0.005", "S", "19.00")]),
            shop.add_order(
                [("BOOK", "0.3333", "12.3456"), ("HOUR", "2.25"), ("EXPORT", "1", "99.995")]
            ),
            shop.add_order([("ODD", "1", "0.005"), ("ODD", "1", "0.015"), ("ZERO", "3", "0.3333")]),
            shop.add_order([("TOOL", "1000.5", "1234.5678"), ("BOOK", "0.0001", "0.0001")]),
        ]
        invoice_orders(shop, orders)
        results.append(
            [
                (
                    i["invoice_number"],
                    i["net_total"],
                    i["tax_total"],
                    i["gross_total"],
                    [
                        (ln["line_no"], ln["net_amount"], ln["quantity"], ln["unit_price"])
                        for ln in shop.invoice_lines(i["id"])
                    ],
                    shop.breakdown(i["id"]),
                )
                for i in shop.invoices()
            ]
        )
    assert results[0] == results[1]
    assert len(results[0]) == 4


def test_cancel_stops_at_the_next_chunk_boundary_and_keeps_what_was_committed(db):
    shop = make_shop(db)
    orders = shop.add_orders(6)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    seen = []

    def cancel_after_first_chunk(job):
        seen.append(job.processed_count)
        if len(seen) == 1:
            assert cancel_batch_job(
                shop.engine, job_id, system=shop.engine, cancelled_by="boss"
            ).cancel_requested

    job = process_batch_job(
        shop.engine, job_id, system=shop.engine, chunk_size=2, on_progress=cancel_after_first_chunk
    )
    assert (job.status, job.processed_count, job.successful_count) == ("cancelled", 2, 2)
    assert [shop.order_status(o) for o in orders] == ["invoiced"] * 2 + ["reviewed"] * 4
    # running it again does nothing; the orders it left stay eligible for a new job
    assert process_batch_job(shop.engine, job_id, system=shop.engine).status == "cancelled"
    assert invoice_orders(shop, orders).successful_count == 4
    assert is_gapless(i["sequence_number"] for i in shop.invoices())


def test_cancelling_a_pending_job_is_immediate(db):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=shop.add_orders(1)
    )
    assert cancel_batch_job(shop.engine, job_id, system=shop.engine).status == "cancelled"
    assert process_batch_job(shop.engine, job_id, system=shop.engine).successful_count == 0
    assert shop.invoices() == []


def test_retry_creates_a_job_over_exactly_the_failed_orders(db, batch_kinds):
    shop = make_shop(db)
    ok = [shop.add_order([("TOOL", 1)]), shop.add_order([("HOUR", 1)])]
    blocked = [shop.add_order([("BOOK", 1)]), shop.add_order([("BOOK", 2)])]
    draft = shop.add_order([("TOOL", 1)], status="draft")
    shop.set_active(items, shop.item_ids["BOOK"], False)
    first = invoice_orders(shop, [ok[0], blocked[0], ok[1], blocked[1]])
    assert first.failed_count == 2
    with pytest.raises(BatchRequestError, match="finished"):
        retry_failed(
            shop.engine,
            enqueue_sales_orders(
                shop.engine, find_organization(shop.engine, shop.org_id), order_ids=[draft]
            ),
            batch_kinds,
            system=shop.engine,
        )

    shop.set_active(items, shop.item_ids["BOOK"], True)  # the user fixes the cause
    retry_id = retry_failed(
        shop.engine, first.id, batch_kinds, system=shop.engine, created_by="anna"
    )
    retry = process_batch_job(shop.engine, retry_id, system=shop.engine)
    assert (retry.retry_of_job_id, retry.total_count, retry.successful_count) == (first.id, 2, 2)
    assert sorted(outcomes(shop, retry)) == sorted(blocked)
    assert (
        retry_failed(shop.engine, retry.id, batch_kinds, system=shop.engine) is None
    )  # nothing failed any more
    # a job is retried once: a second request would hand the same orders to a second job
    with pytest.raises(BatchRequestError, match=f"already retried as job {retry_id}"):
        retry_failed(shop.engine, first.id, batch_kinds, system=shop.engine)


def test_customer_driven_invoices_through_the_same_queue(db):
    shop = make_shop(db)
    sleeping = shop.customer_ids[1]
    shop.set_active(customers, sleeping, False)
    job_id = enqueue_customer_lines(
        shop.engine,
        find_organization(shop.engine, shop.org["slug"]),
        [
            {
                "customer_id": shop.customer_ids[0],
                "lines": [{"item_id": shop.item_ids["TOOL"], "quantity": "2"}],
            },
            {
                "customer_id": shop.customer_ids[0],
                "lines": [
                    {"item_id": shop.item_ids["BOOK"], "quantity": 3, "unit_price": "35.00"},
                    {
                        "description": "Setup",
                        "unit_price": "120.00",
                        "vat_rate": "19.00",
                        "vat_category": "S",
                    },
                    {
                        "line_type": "discount",
                        "description": "Bonus",
                        "unit_price": "-5.00",
                        "vat_rate": "7.00",
                        "vat_category": "S",
                    },
                ],
            },
            {"customer_id": sleeping, "lines": [{"item_id": shop.item_ids["TOOL"]}]},
            {"customer_id": 987654321, "lines": [{"item_id": shop.item_ids["TOOL"]}]},
            {"customer_id": shop.customer_ids[0], "lines": [{"item_id": 987654321}]},
        ],
        invoice_date=DAY,
        created_by="shop",
    )
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=2)
    assert (job.status, job.successful_count, job.failed_count) == ("completed_with_errors", 2, 3)
    assert [e["code"] for e in job.errors] == [
        "inactive_customer",
        "unknown_customer",
        "unknown_item",
    ]
    first, second = shop.invoices()
    assert first["sales_order_id"] is None and first["customer_id"] == shop.customer_ids[0]
    assert (first["net_total"], first["tax_total"]) == (D("49.80"), D("9.46"))
    # 105.00 + (-5.00) at 7 % = 100.00 -> 7.00; 120.00 at 19 % -> 22.80
    assert (second["net_total"], second["tax_total"], second["gross_total"]) == (
        D("220.00"),
        D("29.80"),
        D("249.80"),
    )
    assert shop.inventory("TOOL") == D("998") and shop.inventory("BOOK") == D("497")
    with pytest.raises(BatchRequestError, match="needs"):
        enqueue_customer_lines(
            shop.engine,
            find_organization(shop.engine, shop.org_id),
            [{"customer_id": 1, "lines": [{"quantity": "1"}]}],
        )
    with pytest.raises(BatchRequestError, match="float"):
        enqueue_customer_lines(
            shop.engine,
            find_organization(shop.engine, shop.org_id),
            [{"customer_id": 1, "lines": [{"item_id": 1, "quantity": 1.5}]}],
        )


def test_a_failing_chunk_rolls_back_whole_and_a_rerun_finishes_exactly_once(db, monkeypatch):
    shop = make_shop(db)
    orders = shop.add_orders(7)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )

    def fails_in_second_chunk(ctx):
        if ctx.after_position == 3:  # everything written ...
            raise RuntimeError("database went away")  # ... and rolled back

    with monkeypatch.context() as patch:
        patch.setattr(*hook_chunk_writes(db.kind, fails_in_second_chunk))
        with pytest.raises(RuntimeError):
            process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=3)
    job = get_batch_job(shop.engine, job_id)
    assert (job.status, job.processed_count) == ("failed", 3)
    assert job.failure_reason == (
        "processing stopped: RuntimeError: database went away. Committed chunks stay; run the "
        "job again to continue with the remaining orders."
    )
    assert [i["sequence_number"] for i in shop.invoices()] == [1, 2, 3]
    job = process_batch_job(
        shop.engine, job_id, system=shop.engine, chunk_size=3
    )  # the re-run continues
    assert (job.status, job.successful_count) == ("completed", 7)
    assert [i["sequence_number"] for i in shop.invoices()] == list(range(1, 8))
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}


def claim_and_stall(shop, job_id):
    """A run that claimed the job and died: processing, no progress for 31 minutes."""
    claim_batch_job(
        shop.engine,
        find_organization(shop.engine, shop.org_id),
        get_batch_job(shop.engine, job_id),
        "run-that-died",
    )
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job_id)
            .values(
                heartbeat_at=utcnow() - timedelta(minutes=31),
                started_at=utcnow() - timedelta(minutes=40),
            )
        )


def test_stuck_jobs_fail_with_a_reason_and_their_orders_stay_eligible(db, batch_kinds):
    shop = make_shop(db)
    orders = shop.add_orders(4)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    seen = []
    process_batch_job(
        shop.engine,
        job_id,
        system=shop.engine,
        chunk_size=2,
        on_progress=lambda job: seen.append(job),
    )
    stuck_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=shop.add_orders(3)
    )
    # a run that claimed the job and died: processing, no progress for 31 minutes
    claim_and_stall(shop, stuck_id)
    # (the cleanup spans organizations: other tests' stuck jobs may be failed alongside)
    assert stuck_id not in [
        j.id for j in fail_stuck_jobs(shop.engine, batch_kinds, stuck_after=timedelta(minutes=45))
    ]
    failed = {j.id: j for j in fail_stuck_jobs(shop.engine, batch_kinds)}
    job = failed[stuck_id]
    assert job.status == "failed" and "no progress for more than 30 minutes" in job.failure_reason
    assert "the orders not reached were not invoiced" in job.failure_reason
    assert (job.processed_count, job.failed_count) == (3, 3)
    assert {o[1] for o in outcomes(shop, job).values()} == {"job_stuck"}
    assert get_batch_job(shop.engine, job_id).status == "completed"  # finished jobs are left alone
    # its orders were not invoiced: the retry invoices them, numbers continue without a gap
    retry = process_batch_job(
        shop.engine,
        retry_failed(shop.engine, stuck_id, batch_kinds, system=shop.engine),
        system=shop.engine,
    )
    assert retry.successful_count == 3
    assert [i["sequence_number"] for i in shop.invoices()] == list(range(1, 8))


def test_stats_count_todays_jobs(db, batch_kinds):
    shop = make_shop(db)
    invoice_orders(shop, shop.add_orders(3))
    invoice_orders(shop, [shop.add_order([("TOOL", 1)], status="draft")])
    stats = batch_stats(shop.engine, find_organization(shop.engine, shop.org["slug"]), batch_kinds)
    assert (stats.jobs, stats.invoices_created, stats.failed_items) == (2, 3, 1)
    assert stats.jobs_by_status == {"completed": 1, "completed_with_errors": 1}
    assert stats.average_duration_seconds is not None
    assert stats.jobs_by_kind == {"sales_orders": 2}
    assert stats.items_done_by_kind == {"sales_orders": 3}


def test_orders_are_marked_with_the_invoice_time(db):
    shop = make_shop(db)
    order = shop.add_orders(1)[0]
    before = utcnow()
    invoice_orders(shop, [order])
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        invoiced_at = conn.execute(
            sales_orders.select()
            .with_only_columns(sales_orders.c.invoiced_at)
            .where(sales_orders.c.id == order)
        ).scalar_one()
    assert invoiced_at >= before - timedelta(seconds=1)


def test_a_cancelled_job_whose_run_died_ends_cancelled_not_failed(db, batch_kinds):
    shop = make_shop(db)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=shop.add_orders(3)
    )
    claim_and_stall(shop, job_id)
    cancel_batch_job(
        shop.engine, job_id, system=shop.engine, cancelled_by="anna"
    )  # waits for a chunk boundary
    ended = {j.id: j for j in fail_stuck_jobs(shop.engine, batch_kinds)}[job_id]
    assert ended.status == "cancelled"
    # the orders it never reached are not turned into failures a retry would pick up
    assert retry_failed(shop.engine, job_id, batch_kinds, system=shop.engine) is None


def test_an_order_deleted_after_the_request_fails_alone_as_unknown(db):
    shop = make_shop(db)
    orders = shop.add_orders(4)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    org = find_organization(shop.engine, shop.org_id)
    claim_batch_job(shop.engine, org, get_batch_job(shop.engine, job_id), "test")  # items written
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(sales_orders.delete().where(sales_orders.c.id == orders[3]))
    # a new order never takes the deleted one's id (SQLite reuses the highest id unless told not to)
    newcomer = shop.add_orders(1)[0]
    assert newcomer != orders[3]
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=2)
    assert (job.status, job.successful_count, job.failed_count) == ("completed_with_errors", 3, 1)
    assert [(e["sales_order_id"], e["code"]) for e in job.errors] == [(orders[3], "unknown_order")]
    assert f"no sales order {orders[3]}" in job.errors[0]["message"]
    assert [i["sales_order_id"] for i in shop.invoices()] == orders[:3]
    assert shop.order_status(newcomer) == "reviewed"


def test_the_job_row_keeps_the_first_hundred_failures_in_request_order(db):
    shop = make_shop(db)
    orders = shop.add_many(150)
    with tenant_transaction(shop.engine, shop.org_id, write=True) as conn:
        conn.execute(
            update(sales_orders).where(sales_orders.c.id.in_(orders)).values(status="draft")
        )
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=40, workers=2)
    assert (job.failed_count, job.successful_count) == (150, 0)
    assert [e["sales_order_id"] for e in job.errors] == orders[:100]
    assert {e["code"] for e in job.errors} == {"wrong_status"}
