"""Ending an organization's unfinished jobs at once (`cancel_unfinished_jobs`), as offboarding does
in the transaction that thins the organization's data: what had not finished ends `cancelled` with
the reason a person reads in `batch-status`, what had finished keeps its outcome, and another
organization's jobs go on."""

from __future__ import annotations

from sqlalchemy import update

from invoice_pipelines.db.tables import batch_jobs
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.queue.domain.jobs import cancel_unfinished_jobs, get_batch_job
from invoice_pipelines_tests.queue.queued import queue_over_invoices

WHY = "cancelled: the organization was offboarded"


def _set_status(db, job_id: int, status: str) -> None:
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(update(batch_jobs).where(batch_jobs.c.id == job_id).values(status=status))


def test_the_unfinished_jobs_of_one_organization_end_cancelled_with_the_reason(db):
    leaving = db.new_organization(name="Abschied GmbH")
    staying = db.new_organization(name="Bleibt AG")
    pending = queue_over_invoices(db.engine, leaving["slug"], "documents", [1])
    processing = queue_over_invoices(db.engine, leaving["slug"], "documents", [2])
    finished = queue_over_invoices(db.engine, leaving["slug"], "documents", [3])
    other = queue_over_invoices(db.engine, staying["slug"], "documents", [4])
    _set_status(db, processing, "processing")
    _set_status(db, finished, "completed")

    with system_transaction(db.engine, write=True) as conn:
        ended = cancel_unfinished_jobs(conn, leaving["id"], why=WHY)

    assert ended == 2
    for job_id in (pending, processing):
        job = get_batch_job(db.engine, job_id)
        assert (job.status, job.failure_reason) == ("cancelled", WHY)
        assert job.completed_at is not None
    # a run still at work on the processing one stops at its next chunk boundary
    assert get_batch_job(db.engine, processing).cancel_requested
    assert get_batch_job(db.engine, finished).status == "completed"
    assert get_batch_job(db.engine, other).status == "pending"


def test_an_organization_without_unfinished_jobs_ends_none(db):
    org = db.new_organization(name="Ruhig KG")
    done = queue_over_invoices(db.engine, org["slug"], "documents", [1])
    _set_status(db, done, "failed")
    with system_transaction(db.engine, write=True) as conn:
        assert cancel_unfinished_jobs(conn, org["id"], why=WHY) == 0
    assert get_batch_job(db.engine, done).status == "failed"
