"""PostgreSQL with real processes: kill -9 in the middle of a chunk, and two jobs running at once."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from invoice_pipelines.billing.invoicing import SEQUENCE_NAME, process_batch_job
from invoice_pipelines.billing.queue import enqueue_sales_orders, get_batch_job
from invoice_pipelines.db.tables import invoice_number_sequences
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines_tests.billing.shop import make_shop

ROOT = Path(__file__).resolve().parents[2]


def start_worker(url: str, job_id: int, chunk_size: int, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoice_pipelines_tests.billing.worker",
            url,
            str(job_id),
            str(chunk_size),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def sequence_last_value(shop) -> int:
    with tenant_transaction(shop.engine, shop.org_id) as conn:
        return conn.execute(
            select(invoice_number_sequences.c.last_value).where(
                invoice_number_sequences.c.organization_id == shop.org_id,
                invoice_number_sequences.c.name == SEQUENCE_NAME,
            )
        ).scalar_one()


def test_kill_9_in_the_middle_of_a_chunk_then_resume(pg_database, tmp_path):
    shop = make_shop(pg_database)
    orders = shop.add_many(1000)
    job_id = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=orders)
    signal_file = tmp_path / "in-chunk-3"
    worker = start_worker(pg_database.url, job_id, 200, "--hang-in-chunk", "3", str(signal_file))
    try:
        deadline = time.monotonic() + 90
        while not signal_file.exists():
            assert worker.poll() is None, worker.stderr.read()
            assert time.monotonic() < deadline, "the worker never reached its third chunk"
            time.sleep(0.05)
        # two chunks committed; the third has written its 200 invoices with numbers 401..600, uncommitted
        assert signal_file.read_text() == "400"
        assert get_batch_job(shop.engine, job_id).processed_count == 400
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL

    job = get_batch_job(shop.engine, job_id)
    assert (job.status, job.processed_count, job.successful_count) == ("processing", 400, 400)
    assert (
        sequence_last_value(shop) == 400
    )  # the killed chunk's numbers went back with its rollback
    assert [i["sequence_number"] for i in shop.invoices()] == list(range(1, 401))

    # the resume (a re-run of the same job, as the sensor launches for a dead run) finishes it
    job = process_batch_job(shop.engine, job_id, chunk_size=200)
    assert (job.status, job.successful_count, job.failed_count) == ("completed", 1000, 0)
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 1001))
    assert [i["sales_order_id"] for i in invoices] == orders  # numbers in request order
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
    assert sequence_last_value(shop) == 1000


def test_two_jobs_at_once_share_the_numbers_and_never_invoice_an_order_twice(pg_database, tmp_path):
    shop = make_shop(pg_database)
    orders = shop.add_many(900)
    first = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=orders[:600])
    second = enqueue_sales_orders(shop.engine, shop.org_id, order_ids=list(reversed(orders[300:])))
    go = tmp_path / "go"
    workers = [
        start_worker(pg_database.url, job_id, 50, "--start-when", str(go))
        for job_id in (first, second)
    ]
    time.sleep(1.0)  # both import and connect, then start together
    go.touch()
    for worker in workers:
        out, err = worker.communicate(timeout=180)
        assert worker.returncode == 0, err
    a, b = get_batch_job(shop.engine, first), get_batch_job(shop.engine, second)
    assert a.status == b.status == "completed"
    # the 300 orders both asked for were invoiced by one and skipped (already invoiced) by the other
    assert a.successful_count + b.successful_count == 900
    assert a.skipped_count + b.skipped_count == 300
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 901))
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
    by_job = {a.id: [], b.id: []}
    for invoice in invoices:
        by_job[invoice["batch_job_id"]].append(invoice["sequence_number"])
    assert len(by_job[a.id]) == a.successful_count and len(by_job[b.id]) == b.successful_count
    assert set(by_job[a.id]).isdisjoint(by_job[b.id])
    # they really ran at the same time: their chunks took turns on the sequence
    owners = [invoice["batch_job_id"] for invoice in invoices]
    assert sum(1 for x, y in zip(owners, owners[1:], strict=False) if x != y) >= 2
