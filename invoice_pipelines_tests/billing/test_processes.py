"""PostgreSQL with real processes: kill -9 in the middle of a chunk, and two jobs running at once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from invoice_pipelines.billing.domain.chunk_transaction import SEQUENCE_NAME
from invoice_pipelines.billing.domain.chunks_in_flight import SEQUENCE_MOVED, UNIQUE_VIOLATION
from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import invoice_number_sequences
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.queue.domain.jobs import get_batch_job
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


def wait_until(condition, what: str, workers=(), timeout: float = 120) -> None:
    """Poll until condition() holds; fail at once if a worker died. The timeout only stops a hang."""
    deadline = time.monotonic() + timeout
    while not condition():
        for worker in workers:
            assert worker.poll() is None, (
                f"a worker ended while waiting for {what}: {worker.stderr.read()}"
            )
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def worker_result(worker: subprocess.Popen) -> dict:
    out, err = worker.communicate(timeout=180)
    assert worker.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_kill_9_in_the_middle_of_a_chunk_then_resume(pg_database, tmp_path):
    shop = make_shop(pg_database)
    orders = shop.add_many(1000)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    signal_file = tmp_path / "in-chunk"
    # the chunk of positions 401..600; with two chunks in flight it is not always the third chunk
    # to reach its writes (the one of positions 601..800 may get there first)
    worker = start_worker(
        pg_database.url, job_id, 200, "--hang-at-position", "400", str(signal_file)
    )
    try:
        wait_until(signal_file.exists, "the worker hangs in the chunk after position 400", [worker])
        # it has written its 200 invoices numbered from 401, uncommitted
        assert signal_file.read_text() == "400"
        # the chunk before it (positions 201..400) commits on its own thread meanwhile
        wait_until(
            lambda: get_batch_job(shop.engine, job_id).processed_count == 400,
            "the chunks before the hanging one committed",
            [worker],
        )
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == -signal.SIGKILL

    job = get_batch_job(shop.engine, job_id)
    assert (job.status, job.processed_count, job.successful_count) == ("processing", 400, 400)
    # the killed chunks' numbers went back with their rollback
    assert sequence_last_value(shop) == 400
    assert [i["sequence_number"] for i in shop.invoices()] == list(range(1, 401))

    # the resume (a re-run of the same job, as the sensor launches for a dead run) finishes it,
    # with chunks in flight all the way: the killed process's transactions are no conflict
    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=200)
    assert (job.status, job.successful_count, job.failed_count) == ("completed", 1000, 0)
    assert job.fallbacks == 0, job.fallback_causes
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 1001))
    assert [i["sales_order_id"] for i in invoices] == orders  # numbers in request order
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
    assert sequence_last_value(shop) == 1000


def test_two_jobs_at_once_share_the_numbers_and_never_invoice_an_order_twice(pg_database, tmp_path):
    """Two processes, 300 orders in common; they take turns at fixed points, then race to the end.

    The turns are set by pauses before chunks (no transaction open there), not by timing: B
    invoices its first 300 orders, then A its first 300, then B goes on, and both run together.
    """
    shop = make_shop(pg_database)
    orders = shop.add_many(900)
    first = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders[:600]
    )
    second = enqueue_sales_orders(
        shop.engine,
        find_organization(shop.engine, shop.org_id),
        order_ids=list(reversed(orders[300:])),
    )
    a_go, a_go_on, b_go_on = tmp_path / "a-go", tmp_path / "a-go-on", tmp_path / "b-go-on"
    a = start_worker(
        pg_database.url,
        first,
        50,
        *("--pause-before-position", "0", str(a_go)),
        *("--pause-before-position", "300", str(a_go_on)),
    )
    b = start_worker(pg_database.url, second, 50, "--pause-before-position", "300", str(b_go_on))
    workers = [a, b]
    try:

        def processed(job_id: int) -> int:
            return get_batch_job(shop.engine, job_id).processed_count

        # B: orders 899..600 (none of them A's) get numbers 1..300; A has not started
        wait_until(lambda: processed(second) == 300, "B's first 300 orders", workers)
        a_go.touch()
        # A: orders 0..299 (none of them B's) get numbers 301..600, while B waits
        wait_until(lambda: processed(first) == 300, "A's first 300 orders", workers)
        # B's next chunk expected to start after 300: another job numbered in between
        b_go_on.touch()
        wait_until(lambda: processed(second) >= 350, "B's next chunk", workers)
        a_go_on.touch()  # from here both run at once over the 300 orders they share
        a_result, b_result = worker_result(a), worker_result(b)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
    assert a_result["status"] == b_result["status"] == "completed"
    job_a, job_b = get_batch_job(shop.engine, first), get_batch_job(shop.engine, second)
    assert job_a.status == job_b.status == "completed"
    # the 300 orders both asked for were invoiced by one and skipped (already invoiced) by the other
    assert job_a.successful_count + job_b.successful_count == 900
    assert job_a.skipped_count + job_b.skipped_count == 300
    invoices = shop.invoices()
    assert [i["sequence_number"] for i in invoices] == list(range(1, 901))
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
    by_job = {first: [], second: []}
    for invoice in invoices:
        by_job[invoice["batch_job_id"]].append(invoice["sequence_number"])
    assert len(by_job[first]) == job_a.successful_count
    assert len(by_job[second]) == job_b.successful_count
    assert set(by_job[first]).isdisjoint(by_job[second])
    assert by_job[second][:300] == list(range(1, 301))
    assert by_job[first][:300] == list(range(301, 601))
    assert by_job[second][300] == 601  # B's chunk after position 300, redone under the lock
    # B's chunk in flight numbered 301..350, which A had committed: a real conflict, so it fell
    # back, for that cause (chunks after it count as consequences)
    assert b_result["fallbacks"] >= 1
    assert set(b_result["fallback_causes"]) & {UNIQUE_VIOLATION, SEQUENCE_MOVED}, b_result
