"""Stuck batch jobs: fail (or end as cancelled) the jobs whose runner died or hangs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select, update

from invoice_pipelines.db.tables import batch_job_items, batch_jobs
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.job_kind import GENERIC_STUCK_LEFT, JobKind
from invoice_pipelines.queue.domain.jobs import get_batch_job, with_row_lock
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import record_audit

DEFAULT_STUCK_AFTER = timedelta(minutes=30)


def left_of_a_stuck_job(kind: JobKind | None) -> str:
    """The sentence of a stuck job's reason that says what stays and what is left, as its kind
    declares it (`Reading.stuck_left`; the items it did not reach become failed items, so a retry
    covers exactly them); None: a kind this process has not heard of."""
    left = kind.reading.stuck_left if kind else GENERIC_STUCK_LEFT
    return f"{left} (retry the failed items)."


def fail_stuck_jobs(
    system: Engine,
    kinds: Kinds,
    *,
    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
    now: datetime | None = None,
) -> list[BatchJob]:
    """Fail jobs that made no progress for `stuck_after`, with a reason a user can act on.

    Stuck: processing with no chunk committed (heartbeat) for that long, or pending while taken by
    a runner outside Dagster that never started. Their unfinished items become failed items
    (`job_stuck`), so `retry` covers exactly them; the reason says, in the kind's words, what stays
    and what is left.
    """
    now = now or utcnow()
    limit = now - stuck_after
    minutes = int(stuck_after.total_seconds() // 60)
    last_sign_of_life = func.coalesce(
        batch_jobs.c.heartbeat_at, batch_jobs.c.started_at, batch_jobs.c.created_at
    )
    stuck_filter = or_(
        and_(batch_jobs.c.status == "processing", last_sign_of_life < limit),
        and_(
            batch_jobs.c.status == "pending",
            batch_jobs.c.dagster_run_id.is_not(None),
            batch_jobs.c.created_at < limit,
        ),
    )
    failed: list[int] = []
    with system_transaction(system, write=True) as conn:
        candidates = conn.execute(
            with_row_lock(
                select(
                    batch_jobs.c.id,
                    batch_jobs.c.organization_id,
                    batch_jobs.c.kind,
                    batch_jobs.c.started_at,
                    last_sign_of_life.label("seen"),
                    batch_jobs.c.cancel_requested,
                ),
                conn,
            )
            .where(stuck_filter)
            .order_by(batch_jobs.c.id)
        ).all()
        for job_id, org_id, kind, started_at, seen, cancel_requested in candidates:
            if cancel_requested:
                # the user asked to stop it and its run died before the next chunk boundary: it
                # ends cancelled, and the orders it did not reach stay unprocessed, not "failed"
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.id == job_id)
                    .values(
                        status="cancelled",
                        failure_reason="cancelled; the run ended before the next chunk boundary",
                        completed_at=now,
                        updated_at=now,
                    )
                )
                record_audit(
                    conn, org_id, "stuck-job-cleanup", "batch_job.cancelled_stuck", job_id, {}
                )
                failed.append(job_id)
                continue
            seen_text = seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
            reason = (
                f"no progress for more than {minutes} minutes (last progress {seen_text}): the run "
                f"processing this job died or hangs. {left_of_a_stuck_job(kinds.described(kind))}"
            )
            conn.execute(
                update(batch_job_items)
                .where(
                    batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status == "pending"
                )
                .values(
                    status="failed",
                    error_code="job_stuck",
                    error_message="not processed: the job was stopped as stuck",
                    updated_at=now,
                )
            )
            failed_items = (
                select(func.count())
                .where(
                    batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status == "failed"
                )
                .scalar_subquery()
            )
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(
                    status="failed",
                    failure_reason=reason,
                    failed_count=failed_items,
                    processed_count=batch_jobs.c.total_count,
                    completed_at=now,
                    duration_seconds=(now - started_at).total_seconds() if started_at else None,
                    updated_at=now,
                )
            )
            record_audit(
                conn,
                org_id,
                "stuck-job-cleanup",
                "batch_job.failed_stuck",
                job_id,
                {"reason": reason},
            )
            failed.append(job_id)
    return [get_batch_job(system, job_id) for job_id in failed]
