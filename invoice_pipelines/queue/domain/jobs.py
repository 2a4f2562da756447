"""Batch job state: read a job, its items and the jobs the sensor looks at; cancel and retry."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, or_, select, true, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    BATCH_JOB_STATUSES,
    batch_job_items,
    batch_jobs,
    organizations,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.batch_job import TERMINAL_STATUSES, BatchJob
from invoice_pipelines.queue.domain.job_kind import JobKind
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    insert_job,
    lookup_organization,
    record_audit,
)


class UnknownBatchJob(LookupError):
    """No batch job with that id."""


def _job_from_row(row: Mapping[str, Any]) -> BatchJob:
    return BatchJob(
        id=row["id"],
        organization_id=row["organization_id"],
        organization_slug=row["slug"],
        kind=row["kind"],
        status=row["status"],
        invoice_date=row["invoice_date"],
        due_days=row["due_days"],
        total_count=row["total_count"],
        processed_count=row["processed_count"],
        successful_count=row["successful_count"],
        failed_count=row["failed_count"],
        skipped_count=row["skipped_count"],
        cancel_requested=bool(row["cancel_requested"]),
        retry_of_job_id=row["retry_of_job_id"],
        runner=row["dagster_run_id"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        heartbeat_at=row["heartbeat_at"],
        completed_at=row["completed_at"],
        duration_seconds=row["duration_seconds"],
        estimated_duration_seconds=row["estimated_duration_seconds"],
        failure_reason=row["failure_reason"],
        errors=list(row["errors"] or []),
    )


def _job_query():
    return select(batch_jobs, organizations.c.slug).join(
        organizations, organizations.c.id == batch_jobs.c.organization_id
    )


def get_batch_job(system: Engine, job_id: int) -> BatchJob:
    """One job by id, whatever its organization (the id is what `batch-invoice` printed), read on
    the system engine; once its organization is known, `batch_job_of` reads it again."""
    with system_transaction(system) as conn:
        row = conn.execute(_job_query().where(batch_jobs.c.id == job_id)).mappings().first()
    if row is None:
        raise UnknownBatchJob(f"no batch job {job_id}")
    return _job_from_row(row)


def job_to_run(system: Engine, job_id: int) -> tuple[BatchJob, Organization]:
    """A job a runner starts from its id (`process_batch_job`), with its organization, found
    here once per run: the runner's work takes the value and never reads the organization again.
    An organization that is gone is the request's error (`lookup_organization`)."""
    job = get_batch_job(system, job_id)
    return job, lookup_organization(system, job.organization_id)


def batch_job_of(engine: Engine, organization_id: int, job_id: int) -> BatchJob:
    """One job of an organization the caller knows (a runner's job as it goes on), read in that
    organization's tenant transaction on the runtime engine."""
    query = _job_query().where(
        batch_jobs.c.id == job_id, batch_jobs.c.organization_id == organization_id
    )
    with tenant_transaction(engine, organization_id) as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        raise UnknownBatchJob(f"no batch job {job_id}")
    return _job_from_row(row)


def list_batch_jobs(
    engine: Engine,
    organization: Organization | None = None,
    *,
    system: Engine,
    status: str | None = None,
    limit: int = 20,
) -> list[BatchJob]:
    """The most recent jobs first: of one organization (on `engine`) or of all (on the system
    engine `system`), optionally in one status (`batch-list`)."""
    if status is not None and status not in BATCH_JOB_STATUSES:
        raise BatchRequestError(
            f"unknown status {status!r}; one of {', '.join(BATCH_JOB_STATUSES)}"
        )
    query = _job_query().order_by(batch_jobs.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(batch_jobs.c.status == status)
    if organization is None:
        with system_transaction(system) as conn:  # every tenant's jobs, on purpose
            return [_job_from_row(r) for r in conn.execute(query).mappings()]
    org_id = organization.id
    with tenant_transaction(engine, org_id) as conn:
        rows = conn.execute(query.where(batch_jobs.c.organization_id == org_id)).mappings()
        return [_job_from_row(r) for r in rows]


def follow_up_of(engine: Engine, job: BatchJob, kinds: Kinds) -> BatchJob | None:
    """The documents or communications job queued with an invoicing job (`generate_pdf`,
    `send_immediately`), if it asked for one."""
    kind = kinds.described(job.kind)
    if kind is None or kind.over_invoices:
        return None
    over_invoices = kinds.over_invoices()
    with tenant_transaction(engine, job.organization_id) as conn:
        candidates = conn.execute(
            select(batch_jobs.c.id, batch_jobs.c.request)
            .where(
                batch_jobs.c.organization_id == job.organization_id,
                batch_jobs.c.kind.in_(over_invoices),
                batch_jobs.c.id > job.id,
                batch_jobs.c.retry_of_job_id.is_(None),
            )
            .order_by(batch_jobs.c.id)
            .limit(5)
        ).all()
    for follow_up_id, request in candidates:
        if (request or {}).get("after_job") == job.id:
            return batch_job_of(engine, job.organization_id, follow_up_id)
    return None


def job_item_outcomes(
    engine: Engine, job: BatchJob, *, statuses: Sequence[str] = ("failed",), limit: int = 50
) -> list[dict]:
    """Per-order outcomes of a job (default: the failures), in request order."""
    with tenant_transaction(engine, job.organization_id) as conn:
        rows = conn.execute(
            select(
                batch_job_items.c.position,
                batch_job_items.c.sales_order_id,
                batch_job_items.c.customer_id,
                batch_job_items.c.status,
                batch_job_items.c.sales_invoice_id,
                batch_job_items.c.error_code,
                batch_job_items.c.error_message,
                batch_job_items.c.payload,
            )
            .where(batch_job_items.c.batch_job_id == job.id, batch_job_items.c.status.in_(statuses))
            .order_by(batch_job_items.c.position)
            .limit(limit)
        ).mappings()
        return [dict(r) for r in rows]


def cancel_batch_job(
    engine: Engine, job_id: int, *, system: Engine, cancelled_by: str | None = None
) -> BatchJob:
    """Cancel a job: a pending job at once, a processing job at its next chunk boundary.

    What a processing job already committed stays (those invoices exist and keep their numbers);
    the orders it did not reach stay uninvoiced and eligible.
    """
    job = get_batch_job(system, job_id)
    who = cancelled_by or "unknown"
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        status = conn.execute(
            with_row_lock(select(batch_jobs.c.status).where(batch_jobs.c.id == job_id), conn)
        ).scalar_one()
        if status == "pending":
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(status="cancelled", cancel_requested=True, completed_at=now, updated_at=now)
            )
        elif status == "processing":
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(cancel_requested=True, updated_at=now)
            )
        else:
            return batch_job_of(engine, job.organization_id, job_id)
        record_audit(
            conn, job.organization_id, who, "batch_job.cancel_requested", job_id, {"status": status}
        )
    return batch_job_of(engine, job.organization_id, job_id)


def cancel_unfinished_jobs(conn: Connection, organization_id: int, *, why: str) -> int:
    """End every job of the organization that has not finished (pending or processing) as
    `cancelled`, `why` its reason, in the caller's transaction: offboarding stops the
    organization's work in the transaction that thins its data (tenants/domain/offboarding.py). A
    run still processing such a job stops at its next chunk boundary, as after `cancel_batch_job`;
    what it committed stays. How many jobs it ended."""
    now = utcnow()
    return conn.execute(
        update(batch_jobs)
        .where(
            batch_jobs.c.organization_id == organization_id,
            batch_jobs.c.status.not_in(TERMINAL_STATUSES),
        )
        .values(
            status="cancelled",
            cancel_requested=True,
            failure_reason=why,
            completed_at=now,
            updated_at=now,
        )
    ).rowcount


def with_row_lock(query, conn: Connection):  # a Select in, the same Select out
    # SQLite has no row locks; its writers hold the database lock from BEGIN IMMEDIATE instead.
    # FOR NO KEY UPDATE: a chunk in flight holds KEY SHARE on its job (the invoices' foreign key),
    # which FOR UPDATE would wait for, while that chunk may wait for the caller (a progress callback)
    return query.with_for_update(key_share=True) if conn.dialect.name == "postgresql" else query


def retry_failed(
    engine: Engine,
    job_id: int,
    kinds: Kinds,
    *,
    system: Engine,
    created_by: str | None = None,
    runner: str | None = None,
) -> int | None:
    """A new pending job over exactly the failed orders (customers, invoices, credit notes) of
    `job_id`; None if none failed.

    For a job that failed as a whole, the orders it did not reach count as failed too.
    """
    job = get_batch_job(system, job_id)
    if not job.done:
        raise BatchRequestError(
            f"batch job {job_id} is {job.status}; retry it when it has finished"
        )
    # a failed job also hands on the orders it never reached; a cancelled one does not
    statuses = ("failed", "pending") if job.status == "failed" else ("failed",)
    org = lookup_organization(system, job.organization_id)
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        # one retry per job: the row lock orders concurrent requests, the check refuses the second
        conn.execute(with_row_lock(select(batch_jobs.c.id).where(batch_jobs.c.id == job_id), conn))
        earlier = conn.execute(
            select(batch_jobs.c.id).where(batch_jobs.c.retry_of_job_id == job_id).limit(1)
        ).scalar()
        if earlier is not None:
            raise BatchRequestError(
                f"batch job {job_id} was already retried as job {earlier}; retry that one instead"
            )
        rows = conn.execute(
            select(
                batch_job_items.c.id,
                batch_job_items.c.sales_order_id,
                batch_job_items.c.sales_invoice_id,
                batch_job_items.c.payload,
                batch_job_items.c.status,
            )
            .where(batch_job_items.c.batch_job_id == job_id, batch_job_items.c.status.in_(statuses))
            .order_by(batch_job_items.c.position)
        ).all()
        if not rows:
            return None
        original = conn.execute(
            select(batch_jobs.c.request).where(batch_jobs.c.id == job_id)
        ).scalar_one()
        kind = kinds.described(job.kind)
        if kind is None:
            raise BatchRequestError(
                f"no kind {job.kind!r} is known here; its jobs cannot be retried"
            )
        request = retry_request(kind, rows, original or {})
        new_id = insert_job(
            engine,
            org,
            kind=job.kind,
            request=request,
            invoice_date=job.invoice_date,
            due_days=job.due_days,
            created_by=created_by or job.created_by,
            runner=runner,
            retry_of_job_id=job_id,
            follow_ups=kind.requests.follow_ups,
            conn=conn,
        )
        # the orders the failed job never reached now belong to the retry: restarting the old job
        # must not invoice them too (customer lines have no unique key that would stop it)
        unreached = [r.id for r in rows if r.status == "pending"]
        if unreached:
            conn.execute(
                update(batch_job_items)
                .where(batch_job_items.c.id.in_(unreached))
                .values(
                    status="failed",
                    error_code="handed_to_retry",
                    error_message=f"not reached; handed to retry job {new_id}",
                    updated_at=utcnow(),
                )
            )
    return new_id


def retry_request(kind: JobKind, rows: Sequence[Any], original: Mapping[str, Any]) -> dict:
    """The request of a retry over the failed items `rows`, as the job's kind declares it
    (`JobKind.retry`); a `chunk` kind's retry asks for the same options
    (channel, resend, combined PDF) over exactly the failed invoices."""
    if kind.retry.request is not None:
        request = kind.retry.request(rows, original)
    else:
        request = {
            **{k: v for k, v in original.items() if k not in ("invoice_ids", "after_job")},
            "invoice_ids": [r.sales_invoice_id for r in rows],
        }
    request.update({k: v for k, v in original.items() if k in kind.retry.keeps})
    return request


@dataclass(frozen=True)
class QueuedJob:
    """What the sensor needs to launch a run for a job."""

    id: int
    organization_slug: str
    kind: str
    runner: str | None = None


def pending_jobs(
    system: Engine,
    *,
    after_id: int,
    recent_since: datetime,
    exclude_ids: Iterable[int] = (),
    limit: int = 100,
    kinds: Sequence[str] | None = None,
) -> list[QueuedJob]:
    """Pending jobs that no runner has taken: those after the sensor's cursor, plus recent ones.

    The recent window catches a job whose id was allocated before the cursor's but committed
    after the sensor read (ids are handed out at INSERT, rows become visible at COMMIT).
    """
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(batch_jobs.c.id, organizations.c.slug, batch_jobs.c.kind)
            .join(organizations, organizations.c.id == batch_jobs.c.organization_id)
            .where(
                batch_jobs.c.status == "pending",
                batch_jobs.c.dagster_run_id.is_(None),
                or_(batch_jobs.c.id > after_id, batch_jobs.c.created_at >= recent_since),
                # excluded in SQL, not after the LIMIT: jobs launched but not yet started would
                # otherwise fill every page and hide newer ones
                batch_jobs.c.id.not_in(sorted(set(exclude_ids))),
                batch_jobs.c.kind.in_(kinds) if kinds is not None else true(),
            )
            .order_by(batch_jobs.c.id)
            .limit(limit)
        ).all()
    return [QueuedJob(r.id, r.slug, r.kind) for r in rows]


def processing_jobs(
    system: Engine, *, limit: int = 100, kinds: Sequence[str] | None = None
) -> list[QueuedJob]:
    """Jobs in processing with their runner: the sensor resumes those whose Dagster run died."""
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(
                batch_jobs.c.id,
                organizations.c.slug,
                batch_jobs.c.kind,
                batch_jobs.c.dagster_run_id,
            )
            .join(organizations, organizations.c.id == batch_jobs.c.organization_id)
            # a job someone asked to cancel is not resumed; the stuck-job cleanup ends it cancelled
            .where(
                batch_jobs.c.status == "processing",
                batch_jobs.c.cancel_requested.is_(False),
                batch_jobs.c.kind.in_(kinds) if kinds is not None else true(),
            )
            .order_by(batch_jobs.c.id)
            .limit(limit)
        ).all()
    return [QueuedJob(r.id, r.slug, r.kind, r.dagster_run_id) for r in rows]
