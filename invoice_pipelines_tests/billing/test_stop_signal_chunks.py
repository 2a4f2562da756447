"""A batch invoicing run's SIGTERM that Dagster's handler loses (raised inside a weakref callback,
"Exception ignored") still stops the job at its next chunk (resources/workers/stop_signal.py,
checked by `process_batch_job`'s chunk loop and by each chunk of `chunks_in_flight.PipelinedJob`).

Each case is a fresh interpreter that does what Dagster's run worker does
(test_stop_signal.py): a SIGTERM handler that raises Dagster's interrupt, `remember()` as the
run's process does, then the signal arriving while a weakref callback runs, right after the job's
first chunk committed (its progress report). The chunks committed before stay; the job stays
`processing` (Dagster's own interrupt leaves it so: the sensor's resume run takes it), and a
second run finishes it: every order invoiced exactly once, the numbers without a gap."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines_tests.billing.shop import make_shop

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    """
    import sys
    from dagster import DagsterExecutionInterruptedError
    from invoice_pipelines.billing.domain.invoicing import process_batch_job
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.resources.workers import stop_signal
    from invoice_pipelines_tests.resources.lost_sigterm import install_dagsters_handler, lose_a_sigterm

    install_dagsters_handler()
    assert stop_signal.remember()
    url, job_id, chunk_size, workers = sys.argv[1], *map(int, sys.argv[2:5])
    engine = make_engine(url)

    reports = []

    def progress(job):  # after a chunk's commit, in the run's main thread
        reports.append(job.processed_count)
        if len(reports) == 1:
            lose_a_sigterm()
            print("lost, going on after", job.processed_count, flush=True)

    try:
        job = process_batch_job(engine, job_id, system=engine, chunk_size=chunk_size,
                                runner="the-stopped-run", on_progress=progress, workers=workers)
        print("finished:", job.status, job.processed_count, flush=True)
    except DagsterExecutionInterruptedError as stop:
        print("interrupted:", stop, flush=True)
    """
)


def _run_stopped(
    url: str, job_id: int, chunk_size: int, workers: int
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, url, str(job_id), str(chunk_size), str(workers)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _queued(db, count: int):
    shop = make_shop(db)
    orders = shop.add_many(count)
    job_id = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders
    )
    return shop, orders, job_id


def _stopped_then_resumed(db, shop, orders, job_id, *, chunk_size: int, workers: int) -> int:
    """Run the job in a process whose SIGTERM is lost after its first chunk; check it stopped
    with Dagster's interrupt, keeping its committed chunks, and that a second run finishes it
    exactly once. The orders the stopped run had invoiced."""
    done = _run_stopped(db.url, job_id, chunk_size, workers)
    assert "Exception ignored" in done.stderr, done.stderr  # Dagster's own interrupt was lost
    assert "lost, going on after" in done.stdout, done.stdout + done.stderr
    assert "interrupted: the run's process was sent SIGTERM" in done.stdout, (
        done.stdout + done.stderr[-3000:]
    )
    assert "finished:" not in done.stdout
    stopped = get_batch_job(shop.engine, job_id)
    # as Dagster's own interrupt leaves it: processing, its run's; not failed, nothing half done
    assert stopped.status == "processing"
    assert 0 < stopped.processed_count < len(orders)
    assert stopped.processed_count % chunk_size == 0  # whole chunks only
    before = shop.invoices()
    assert len(before) == stopped.successful_count == stopped.processed_count
    assert [i["sequence_number"] for i in before] == list(range(1, len(before) + 1))

    job = process_batch_job(shop.engine, job_id, system=shop.engine, chunk_size=chunk_size)
    assert (job.status, job.successful_count, job.processed_count) == (
        "completed",
        len(orders),
        len(orders),
    )
    after = shop.invoices()
    assert [i["sequence_number"] for i in after] == list(range(1, len(orders) + 1))
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
    # what the stopped run committed stays as it was
    assert [(i["id"], i["sequence_number"]) for i in after[: len(before)]] == [
        (i["id"], i["sequence_number"]) for i in before
    ]
    return stopped.processed_count


def test_a_lost_sigterm_stops_batch_invoicing_at_its_next_chunk(db):
    # one chunk at a time (SQLite always; PostgreSQL with one worker): the chunk loop checks
    shop, orders, job_id = _queued(db, 10)
    stopped_after = _stopped_then_resumed(db, shop, orders, job_id, chunk_size=3, workers=1)
    assert stopped_after == 3  # the first chunk only: the loop checked before the second


def test_a_lost_sigterm_stops_the_chunks_in_flight(pg_database):
    # PostgreSQL, two chunks in flight (chunks_in_flight.py): no chunk starts after the signal
    shop, orders, job_id = _queued(pg_database, 30)
    _stopped_then_resumed(pg_database, shop, orders, job_id, chunk_size=3, workers=2)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_that_remembers_and_was_sent_nothing_invoices_to_the_end(pg_database, workers):
    shop, orders, job_id = _queued(pg_database, 7)
    quiet = SCRIPT.replace("if len(reports) == 1:", "if False:")
    done = subprocess.run(
        [sys.executable, "-c", quiet, pg_database.url, str(job_id), "3", str(workers)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "finished: completed 7" in done.stdout, done.stdout + done.stderr[-3000:]
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}
