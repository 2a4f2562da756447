"""One chunk of a batch job in one transaction: job and sequence locks, chunk function, counters."""

# Per chunk, one transaction: lock the job row, lock the organization's number sequence, take the
# next pending items of the job, invoice the eligible orders set-based, record every item's outcome,
# move the sequence and the job's counters. Only a commit moves the sequence, so a rolled back or
# killed chunk leaves no gap; the unique `sales_invoices.sales_order_id` and the sequence lock (all
# invoicing of an organization queues on it) make a second invoice for an order impossible.
#
# PostgreSQL does the chunk in SQL (`chunk_postgres.py`, NUMERIC arithmetic); SQLite and
# customer-driven jobs use Python Decimal (`chunk_python.py`). Both follow `core/totals.py`.

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.domain import chunk_postgres, chunk_python
from invoice_pipelines.billing.domain.contract import (
    ChunkContext,
    ChunkFunction,
    ChunkOutcome,
)
from invoice_pipelines.core.batch_requests import CUSTOMER_LINES
from invoice_pipelines.core.numbering import NumberFormat
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db import sequences
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.jobs import BatchJob
from invoice_pipelines.queue.domain.transitions import (
    MAX_ERRORS_ON_JOB,
    add_progress,
    complete,
    locked_job,
    stopped,
)

SEQUENCE_NAME = sequences.INVOICES


def _chunk_function(kind: str, dialect: str) -> ChunkFunction:
    # looked up on the modules at each call, so a test can patch a chunk function
    if kind == CUSTOMER_LINES:
        return chunk_python.invoice_customer_lines
    if dialect == "postgresql":
        return chunk_postgres.invoice_sales_orders
    return chunk_python.invoice_sales_orders


def lock_sequence(conn: Connection, organization_id: int, *, nowait: bool = False) -> int:
    """Lock the organization's invoice number series for this transaction; its last value."""
    return sequences.lock_sequence(conn, organization_id, SEQUENCE_NAME, nowait=nowait)


def read_sequence(conn: Connection, organization_id: int) -> int:
    """The invoice number series' committed last value, without a lock."""
    return sequences.read_sequence(conn, organization_id, SEQUENCE_NAME)


def set_sequence(conn: Connection, organization_id: int, last_value: int, now: datetime) -> None:
    sequences.set_sequence(conn, organization_id, SEQUENCE_NAME, last_value, now)


def _run_chunk(
    engine: Engine, org: Organization, job: BatchJob, chunk_size: int, after: int
) -> tuple[bool, int]:
    """One chunk in one transaction, numbered under the sequence lock: (finished or stopped, last position)."""
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        now = utcnow()
        if stopped(conn, job, row, now):
            return True, after
        ctx = chunk_context(
            conn, org, job, row, chunk_size, after, now, lock_sequence(conn, job.organization_id)
        )
        outcome = _chunk_function(row["kind"], conn.dialect.name)(conn, ctx)
        return record_chunk(conn, job, row, ctx, outcome), after + chunk_size


# SQLSTATEs of "another transaction got in the way": deadlock, serialization failure, unique key,
# a lock taken NOWAIT that someone holds
CONFLICTS = frozenset({"40P01", "40001", "23505", "55P03"})
# a chunk under the sequence lock meets deadlocks only with chunks in flight elsewhere (`chunks_in_flight.py`)
CHUNK_ATTEMPTS = 5


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) in CONFLICTS


def run_chunk_retrying(
    engine: Engine, org: Organization, job: BatchJob, chunk_size: int, after: int
) -> tuple[bool, int]:
    """`_run_chunk`, again (up to CHUNK_ATTEMPTS times) when PostgreSQL broke a deadlock with it."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return _run_chunk(engine, org, job, chunk_size, after)
        except DBAPIError as exc:
            if not is_conflict(exc) or attempt == CHUNK_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def chunk_context(
    conn: Connection,
    org: Organization,
    job: BatchJob,
    row,  # the job's Row
    chunk_size: int,
    after: int,
    now: datetime,
    last_value: int,
) -> ChunkContext:
    """What a chunk of `org`'s job works with: the job row's dates and author, the
    organization's number format and currency (the value its runner was handed), the window of
    items and the sequence's last value."""
    issue_date: date = row["invoice_date"]
    return ChunkContext(
        job_id=job.id,
        organization_id=job.organization_id,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=row["due_days"]),
        number_format=NumberFormat.parse(org.invoice_number_format),
        currency=org.currency,
        last_value=last_value,
        limit=chunk_size,
        created_by=row["created_by"],
        now=now,
        error_room=max(MAX_ERRORS_ON_JOB - len(row["errors"] or []), 0),
        after_position=after,
    )


def record_chunk(
    conn: Connection,
    job: BatchJob,
    row,  # the job's Row, locked
    ctx: ChunkContext,
    outcome: ChunkOutcome,
) -> bool:
    """Move the sequence past the chunk's invoices and add the chunk to the job; True when it was the last."""
    now = ctx.now
    if outcome.succeeded:
        set_sequence(conn, job.organization_id, ctx.last_value + outcome.succeeded, now)
    counters = add_progress(
        conn,
        job,
        row,
        now,
        processed=outcome.processed,
        succeeded=outcome.succeeded,
        failed=outcome.failed,
        skipped=outcome.skipped,
        errors=outcome.errors,
        error_room=ctx.error_room,
    )
    # positions are 1..total_count: the job is done when the window reached the end
    finished = ctx.after_position + ctx.limit >= row["total_count"]
    if finished:
        complete(conn, job, row, now, counters)
    return finished
