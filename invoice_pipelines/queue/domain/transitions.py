"""The life of a batch job row: claim, progress, finish, fail. Every write to `batch_jobs` that a
runner makes goes through here, under the job's row lock.

pending --claim--> processing --progress...--> completed | completed_with_errors
                        |        \\--cancel requested, at a chunk boundary--> cancelled
                        \\--an error, or stuck--> failed --claim (items still pending)--> processing

Finishing is done once: the runner that takes the job's row lock while the job is still
`processing` does the job's closing work (a combined print PDF, say) inside that transaction and
ends the job; every other runner that reaches the end finds it no longer processing and leaves.
On PostgreSQL the lock is the row's (FOR NO KEY UPDATE: invoices created by a chunk in flight hold
KEY SHARE on it); on SQLite the transaction holds the database write lock (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import batch_job_items, batch_jobs
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.job_kind import Closing
from invoice_pipelines.queue.domain.requests import BatchRequestError, record_audit

MAX_ERRORS_ON_JOB = 100  # batch_jobs.errors keeps the first ones; batch_job_items has them all
FINISHED_ACTION = "batch_job.finished"

# start(conn, locked row, now): the values that start a pending job (at least total_count), or
# None to leave it pending for now; a BatchRequestError fails the job with its message
Start = Callable[[Connection, Mapping[str, Any], datetime], dict | None]


def locked_job(conn: Connection, job_id: int):  # a Row
    query = select(batch_jobs).where(batch_jobs.c.id == job_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: invoices hold KEY SHARE
    return conn.execute(query).mappings().one()


def job_row(conn: Connection, job_id: int):  # a Row
    """The job's row as this transaction sees it, without a lock."""
    return conn.execute(select(batch_jobs).where(batch_jobs.c.id == job_id)).mappings().one()


def job_request(conn: Connection, job_id: int) -> dict:
    """The job's stored request (what it was asked to do)."""
    return (
        conn.execute(select(batch_jobs.c.request).where(batch_jobs.c.id == job_id)).scalar() or {}
    )


def claim(engine: Engine, job: BatchJob, runner: str | None, start: Start) -> bool:
    """Take the job for this runner: start a pending job, go on with a processing one, reopen a
    failed one that still has pending items. False when there is nothing to do for it."""
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        status = row["status"]
        values: dict = {"heartbeat_at": now, "updated_at": now}
        if runner:
            values["dagster_run_id"] = runner
        if status == "pending":
            try:
                started = start(conn, row, now)
            except BatchRequestError as exc:
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.id == job.id)
                    .values(status="failed", failure_reason=str(exc), completed_at=now, **values)
                )
                return False
            if started is None:
                return False
            values.update(status="processing", started_at=now, **started)
        elif status == "failed":
            reopened = reopened_if_pending(conn, job.id)
            if reopened is None:
                return False
            values.update(reopened)
        elif status != "processing":
            return False
        conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
    return True


def stopped(conn: Connection, job: BatchJob, row, now: datetime) -> bool:  # row: the locked Row
    """Whether the job must not go on; a cancel request ends it here, with its audit row."""
    if row["status"] != "processing":
        return True  # failed as stuck, or finished by another runner
    if row["cancel_requested"]:
        end_job(conn, job.id, row, now, "cancelled")
        record_audit(
            conn,
            job.organization_id,
            row["created_by"] or "unknown",
            "batch_job.cancelled",
            job.id,
            {"processed": row["processed_count"], "total": row["total_count"]},
        )
        return True
    return False


def heartbeat(conn: Connection, job_id: int, now: datetime) -> None:
    conn.execute(
        update(batch_jobs).where(batch_jobs.c.id == job_id).values(heartbeat_at=now, updated_at=now)
    )


def add_progress(
    conn: Connection,
    job: BatchJob,
    row,  # the job's Row, locked
    now: datetime,
    *,
    processed: int,
    succeeded: int,
    failed: int,
    skipped: int,
    errors: list[dict],
    error_room: int | None = None,
) -> dict:
    """Add a chunk's outcome to the job's counters (and its first errors); the new counters."""
    values: dict = {
        "processed_count": row["processed_count"] + processed,
        "successful_count": row["successful_count"] + succeeded,
        "failed_count": row["failed_count"] + failed,
        "skipped_count": row["skipped_count"] + skipped,
        "heartbeat_at": now,
        "updated_at": now,
    }
    # room left on the locked row (a chunk in flight may have read the row before earlier chunks
    # committed: `error_room` is what it saw)
    room = max(MAX_ERRORS_ON_JOB - len(row["errors"] or []), 0)
    if error_room is not None:
        room = min(room, error_room)
    if room and errors:
        values["errors"] = list(row["errors"] or []) + errors[:room]
    elapsed = seconds_since(row["started_at"], now)
    if values["processed_count"] and elapsed:
        values["estimated_duration_seconds"] = round(
            elapsed / values["processed_count"] * row["total_count"], 3
        )
    conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
    return values


def complete(
    conn: Connection,
    job: BatchJob,
    row,  # the job's Row, locked, with the counters as they are now
    now: datetime,
    counters: Mapping[str, Any] | None = None,
    closing_audit: list[tuple[str, dict]] = (),
    skipped: bool = False,
) -> str:
    """End a processing job as completed (with errors when an item failed): the status, the
    closing audit rows and `batch_job.finished` (with the skipped items when `skipped`: a job
    over sales invoices). The caller holds the row lock."""
    counts = {**row, **(counters or {})}
    status = "completed_with_errors" if counts["failed_count"] else "completed"
    end_job(conn, job.id, row, now, status, heartbeat_at=now)
    who = row["created_by"] or "unknown"
    for action, details in closing_audit:
        record_audit(conn, job.organization_id, who, action, job.id, details)
    details = {
        "status": status,
        "successful": counts["successful_count"],
        "failed": counts["failed_count"],
    }
    if skipped:
        details["skipped"] = counts["skipped_count"]
    record_audit(conn, job.organization_id, who, FINISHED_ACTION, job.id, details)
    return status


def finish(
    engine: Engine,
    job: BatchJob,
    request: Mapping[str, Any],
    closing: Closing | None,
    *,
    skipped: bool = False,
) -> bool:
    """Finish the job once: True for the runner that did; False when another runner finished
    it (or it was failed, cancelled, or has items pending again) before this one got the lock.

    The closing work runs inside the locked transaction, so a second runner waits for it and
    then finds the job ended: a print file is built and recorded once, never by two runners.
    """
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if row["status"] != "processing" or pending_items(conn, job.id):
            return False
        audit = closing(conn, job, request) if closing is not None else []
        complete(conn, job, row, now, closing_audit=audit, skipped=skipped)
    return True


def pending_items(conn: Connection, job_id: int) -> int:
    return conn.execute(
        select(func.count()).where(
            batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status == "pending"
        )
    ).scalar_one()


def mark_job_failed(engine: Engine, job: BatchJob, reason: str, closing: str) -> None:
    """End a processing job as failed: "processing stopped: <reason>. <closing>".

    A job that is no longer processing (finished, cancelled, failed elsewhere) is left as it is.
    `closing` tells the user what stays and how to go on (it differs by kind of job).
    """
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if row["status"] != "processing":
            return
        end_job(
            conn,
            job.id,
            row,
            now,
            "failed",
            failure_reason=f"processing stopped: {reason}. {closing}",
        )


def end_job(conn: Connection, job_id: int, row, now: datetime, status: str, **values) -> None:
    """Give the job (`row`: its locked Row) its final `status`, with its duration since it started."""
    conn.execute(
        update(batch_jobs)
        .where(batch_jobs.c.id == job_id)
        .values(
            status=status,
            completed_at=now,
            duration_seconds=seconds_since(row["started_at"], now),
            updated_at=now,
            **values,
        )
    )


def reopened_if_pending(conn: Connection, job_id: int) -> dict | None:
    """A failed job with pending items goes on: the values that make it processing again; None
    when none of its items is pending (nothing to go on with)."""
    if not pending_items(conn, job_id):
        return None
    return {
        "status": "processing",
        "failure_reason": None,
        "completed_at": None,
        "duration_seconds": None,
    }


def seconds_since(start: datetime | None, now: datetime) -> float | None:
    return round((now - start).total_seconds(), 3) if start else None
