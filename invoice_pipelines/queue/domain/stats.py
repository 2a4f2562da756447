"""Daily batch job stats of one organization: jobs, invoices, failures, throughput.

Orders and invoices count the invoicing jobs only (the kinds that declare `creates_invoices`: sales
orders, customer lines); the other kinds (documents, communications, credit notes) have their items
counted per kind beside them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import batch_jobs
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import organization_today


@dataclass(frozen=True)
class BatchStats:
    """One organization's batch invoicing on one day (its own timezone)."""

    day: date
    jobs: int
    jobs_by_status: dict[str, int]
    orders_requested: int  # invoicing jobs only
    invoices_created: int  # invoicing jobs only
    failed_items: int  # every kind
    skipped_items: int  # every kind
    average_duration_seconds: float | None
    orders_per_second: float | None  # invoicing jobs only
    jobs_by_kind: dict[str, int]
    items_done_by_kind: dict[str, int]  # successful items per kind


def batch_stats(
    engine: Engine, org: Organization, kinds: Kinds, day: date | None = None
) -> BatchStats:
    """Jobs created on `day` (default: today where the organization is) and what they did;
    `kinds` say which of them create invoices."""
    zone = ZoneInfo(org.timezone)
    day = day or organization_today(org.timezone)
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    with tenant_transaction(engine, org.id) as conn:
        rows = conn.execute(
            select(
                batch_jobs.c.kind,
                batch_jobs.c.status,
                func.count().label("jobs"),
                func.coalesce(func.sum(batch_jobs.c.total_count), 0).label("total"),
                func.coalesce(func.sum(batch_jobs.c.successful_count), 0).label("successful"),
                func.coalesce(func.sum(batch_jobs.c.failed_count), 0).label("failed"),
                func.coalesce(func.sum(batch_jobs.c.skipped_count), 0).label("skipped"),
            )
            .where(
                batch_jobs.c.organization_id == org.id,
                batch_jobs.c.created_at >= start,
                batch_jobs.c.created_at < end,
            )
            .group_by(batch_jobs.c.kind, batch_jobs.c.status)
            .order_by(batch_jobs.c.kind, batch_jobs.c.status)
        ).all()
        timed = conn.execute(
            select(
                batch_jobs.c.kind, batch_jobs.c.processed_count, batch_jobs.c.duration_seconds
            ).where(
                batch_jobs.c.organization_id == org.id,
                batch_jobs.c.created_at >= start,
                batch_jobs.c.created_at < end,
                batch_jobs.c.duration_seconds.is_not(None),
            )
        ).all()
    seconds = sum(t.duration_seconds for t in timed)
    invoicing = [r for r in rows if kinds.creates_invoices(r.kind)]
    invoicing_timed = [t for t in timed if kinds.creates_invoices(t.kind)]
    invoicing_seconds = sum(t.duration_seconds for t in invoicing_timed)
    jobs_by_status: dict[str, int] = {}
    jobs_by_kind: dict[str, int] = {}
    done_by_kind: dict[str, int] = {}
    for r in rows:
        jobs_by_status[r.status] = jobs_by_status.get(r.status, 0) + r.jobs
        jobs_by_kind[r.kind] = jobs_by_kind.get(r.kind, 0) + r.jobs
        done_by_kind[r.kind] = done_by_kind.get(r.kind, 0) + int(r.successful)
    return BatchStats(
        day=day,
        jobs=sum(r.jobs for r in rows),
        jobs_by_status=jobs_by_status,
        orders_requested=sum(int(r.total) for r in invoicing),
        invoices_created=sum(int(r.successful) for r in invoicing),
        failed_items=sum(int(r.failed) for r in rows),
        skipped_items=sum(int(r.skipped) for r in rows),
        average_duration_seconds=round(seconds / len(timed), 3) if timed else None,
        orders_per_second=round(
            sum(t.processed_count for t in invoicing_timed) / invoicing_seconds, 1
        )
        if invoicing_seconds > 0
        else None,
        jobs_by_kind=jobs_by_kind,
        items_done_by_kind=done_by_kind,
    )


def expected_rate(conn: Connection, organization_id: int, default: float) -> float:
    """Items per second of the organization's last finished jobs of some size; `default` before
    it has any (a first guess for the progress bar)."""
    recent = (
        select(batch_jobs.c.processed_count, batch_jobs.c.duration_seconds)
        .where(
            batch_jobs.c.organization_id == organization_id,
            batch_jobs.c.status.in_(("completed", "completed_with_errors")),
            batch_jobs.c.duration_seconds > 0,
            batch_jobs.c.processed_count >= 1000,
        )
        .order_by(batch_jobs.c.id.desc())
        .limit(10)
        .subquery()
    )
    processed, seconds = conn.execute(
        select(func.sum(recent.c.processed_count), func.sum(recent.c.duration_seconds))
    ).one()
    if processed and seconds:
        return float(processed) / float(seconds)
    return default
