"""PostgreSQL: chunks of one job in flight at once (`billing/pipeline.py`), and what happens when
another writer of the organization gets in between."""

import logging
import time

import pytest

from invoice_pipelines.billing import chunk_postgres
from invoice_pipelines.billing.invoicing import process_batch_job
from invoice_pipelines.billing.queue import enqueue_sales_orders, get_batch_job
from invoice_pipelines_tests.billing.shop import make_shop


def test_chunks_in_flight_number_in_request_order_with_ids_in_number_order(pg_database):
    shop = make_shop(pg_database)
    orders = shop.add_many(95)
    requested = list(reversed(orders))
    job_id = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=requested)
    job = process_batch_job(shop.engine, job_id, chunk_size=10, workers=3)
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
    a_id = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=a_orders)
    b_id = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=b_orders)
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
            assert process_batch_job(shop.engine, b_id, workers=1).status == "completed"
        return counts

    monkeypatch.setattr(chunk_postgres, "prepare_chunk", prepare)
    with caplog.at_level(logging.INFO, logger="invoice_pipelines.billing.pipeline"):
        a = process_batch_job(shop.engine, a_id, chunk_size=10, workers=2)
    assert (a.status, a.successful_count) == ("completed", 40)
    assert "goes under the sequence lock" in caplog.text
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


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_must_be_positive(pg_database, workers):
    with pytest.raises(ValueError, match="workers"):
        process_batch_job(pg_database.engine, 1, workers=workers)
