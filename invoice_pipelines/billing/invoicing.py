"""Batch invoicing: turn a queued batch job into sales invoices, chunk by chunk, exactly once."""

# Per chunk, one transaction: lock the job row, lock the organization's number sequence, take the
# next pending items of the job, invoice the eligible orders set-based, record every item's outcome,
# move the sequence and the job's counters. Only a commit moves the sequence, so a rolled back or
# killed chunk leaves no gap; the unique `sales_invoices.sales_order_id` and the sequence lock (all
# invoicing of an organization queues on it) make a second invoice for an order impossible.
#
# PostgreSQL does the chunk in SQL (`chunk_postgres.py`, NUMERIC arithmetic); SQLite and
# customer-driven jobs use Python Decimal (`chunk_python.py`). Both follow `core/totals.py`.

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, Engine, func, insert, literal, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.billing.queue import (
    CUSTOMER_LINES,
    MAX_ERRORS_ON_JOB,
    SALES_ORDERS,
    BatchJob,
    BatchRequestError,
    get_batch_job,
    normalize_customer_lines,
    organization_today,
    record_audit,
    validate_order_ids,
)
from invoice_pipelines.core.numbering import InvalidNumberFormat, NumberFormat
from invoice_pipelines.db.tables import (
    batch_job_items,
    batch_jobs,
    customers,
    invoice_number_sequences,
    organizations,
    sales_invoices,
    sales_orders,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow

DEFAULT_CHUNK_SIZE = 5000
# chunks of one job in flight at once on PostgreSQL (`pipeline.py`); SQLite has one writer
DEFAULT_WORKERS = 2
MAX_WORKERS = 8  # each holds a connection; the engine's pool has 15
SEQUENCE_NAME = "sales_invoices"
# a first guess for the progress bar until the organization has finished jobs to learn from
DEFAULT_RATE = {"postgresql": 5_000.0, "sqlite": 4_000.0}

# Why an item was not invoiced. `already_invoiced` is a skip (idempotent re-request), the rest are
# failures. `{detail}` is filled in per item; both chunk implementations use these texts.
ITEM_MESSAGES: dict[str, str] = {
    "already_invoiced": "already invoiced (skipped)",
    "unknown_order": "no sales order {detail} in this organization",
    "wrong_status": "order status is {detail}; only reviewed or pending orders are invoiced",
    "unknown_customer": "customer {detail} does not exist in this organization",
    "inactive_customer": "customer {detail} is inactive",
    "no_lines": "the order has no lines",
    "unknown_item": "item {detail} does not exist in this organization",
    "inactive_item": "item {detail} is inactive",
    "invalid_vat": "a line has VAT {detail}: categories Z, E, AE, K, G, O need rate 0; S, L, M a rate above 0",
}
SKIP_CODES = frozenset({"already_invoiced"})


def item_message(code: str, detail: object) -> str:
    return ITEM_MESSAGES[code].replace("{detail}", "" if detail is None else str(detail))


@dataclass(frozen=True)
class ChunkContext:
    """What a chunk implementation needs; it must not commit (the caller owns the transaction)."""

    job_id: int
    organization_id: int
    issue_date: date
    due_date: date
    number_format: NumberFormat
    last_value: int
    limit: int
    created_by: str | None
    now: datetime
    error_room: int = MAX_ERRORS_ON_JOB  # how many more failures the job row keeps
    # the chunk is the pending items at positions after_position + 1 .. after_position + limit
    after_position: int = 0


@dataclass
class ChunkOutcome:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    # the chunk's failures in request order: position, sales_order_id, customer_id, code, message
    errors: list[dict] = field(default_factory=list)


ChunkFunction = Callable[[Connection, ChunkContext], ChunkOutcome]


@dataclass(frozen=True)
class ProcessedBatchJob(BatchJob):
    """What `process_batch_job` returns: the job's state, and how this call went.

    `fallbacks`: chunks of this call that had to be redone one at a time under the sequence lock
    because their attempt in flight was rolled back (`pipeline.py`); `fallback_causes` counts them
    by cause. Not stored: a resumed run counts its own.
    """

    fallbacks: int = 0
    fallback_causes: dict[str, int] = field(default_factory=dict)


def _processed(job: BatchJob, fallback_causes: dict[str, int] | None = None) -> ProcessedBatchJob:
    causes = dict(fallback_causes or {})
    return ProcessedBatchJob(
        **{f.name: getattr(job, f.name) for f in fields(BatchJob)},
        fallbacks=sum(causes.values()),
        fallback_causes=causes,
    )


def _chunk_function(kind: str, dialect: str) -> ChunkFunction:
    # imported here: the chunk modules import ChunkContext and the messages from this module
    from invoice_pipelines.billing import chunk_postgres, chunk_python

    if kind == CUSTOMER_LINES:
        return chunk_python.invoice_customer_lines
    if dialect == "postgresql":
        return chunk_postgres.invoice_sales_orders
    return chunk_python.invoice_sales_orders


def _locked_job(conn: Connection, job_id: int):  # noqa: ANN202 - a Row
    query = select(batch_jobs).where(batch_jobs.c.id == job_id)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)  # FOR NO KEY UPDATE: invoices hold KEY SHARE
    return conn.execute(query).mappings().one()


def lock_sequence(conn: Connection, organization_id: int, *, nowait: bool = False) -> int:
    """Lock the organization's invoice number sequence for this transaction; its last value.

    PostgreSQL: a row lock (FOR UPDATE) that every invoicing transaction of the organization
    queues on; `nowait` raises (SQLSTATE 55P03) instead of queueing. SQLite: the transaction
    already holds the database write lock (BEGIN IMMEDIATE).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO invoice_number_sequences (organization_id, name, last_value) "
                "VALUES (:org, :name, 0) ON CONFLICT DO NOTHING"
            ),
            {"org": organization_id, "name": SEQUENCE_NAME},
        )
        return conn.execute(
            text(
                "SELECT last_value FROM invoice_number_sequences "
                "WHERE organization_id = :org AND name = :name FOR UPDATE"
                + (" NOWAIT" if nowait else "")
            ),
            {"org": organization_id, "name": SEQUENCE_NAME},
        ).scalar_one()
    conn.execute(
        text(
            "INSERT OR IGNORE INTO invoice_number_sequences (organization_id, name, last_value) "
            "VALUES (:org, :name, 0)"
        ),
        {"org": organization_id, "name": SEQUENCE_NAME},
    )
    return read_sequence(conn, organization_id)


def read_sequence(conn: Connection, organization_id: int) -> int:
    """The sequence's committed last value, without a lock (0 before the first invoice)."""
    value = conn.execute(
        select(invoice_number_sequences.c.last_value).where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == SEQUENCE_NAME,
        )
    ).scalar()
    return value or 0


def set_sequence(conn: Connection, organization_id: int, last_value: int, now: datetime) -> None:
    conn.execute(
        update(invoice_number_sequences)
        .where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == SEQUENCE_NAME,
        )
        .values(last_value=last_value, updated_at=now)
    )


def process_batch_job(
    engine: Engine,
    job_id: int,
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ProcessedBatchJob:
    """Process a batch job to the end (or to its cancellation) and return its final state.

    Safe to call again for the same job at any time: a pending job starts, a processing job (its
    runner died, or another runner works on it right now) resumes where the committed chunks
    ended, a failed job with unprocessed items resumes, a finished job is returned unchanged.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
    job = get_batch_job(engine, job_id)
    if not claim_batch_job(engine, job, runner):
        return _processed(get_batch_job(engine, job_id))
    try:
        after = _done_before(engine, job)
        claimed = get_batch_job(engine, job_id)
        if workers > 1 and claimed.kind == SALES_ORDERS and engine.dialect.name == "postgresql":
            from invoice_pipelines.billing.pipeline import PipelinedJob  # imports this module

            pipelined = PipelinedJob(
                engine,
                claimed,
                chunk_size=chunk_size,
                after=after,
                total=claimed.total_count,
                workers=workers,
                on_progress=on_progress,
            )
            pipelined.run()
            return _processed(get_batch_job(engine, job_id), pipelined.fallback_causes)
        while True:
            finished, after = run_chunk_retrying(engine, job, chunk_size, after)
            if on_progress is not None:
                on_progress(get_batch_job(engine, job_id))
            if finished:
                break
    except Exception as exc:
        _mark_failed(
            engine,
            job,
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}",
        )
        raise
    return _processed(get_batch_job(engine, job_id))


def claim_batch_job(engine: Engine, job: BatchJob, runner: str | None) -> bool:
    """Claim the job (pending -> processing, expanding its request into items) or resume it."""
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = _locked_job(conn, job.id)
        status = row["status"]
        values: dict = {"heartbeat_at": now, "updated_at": now}
        if runner:
            values["dagster_run_id"] = runner
        if status == "pending":
            org = (
                conn.execute(select(organizations).where(organizations.c.id == job.organization_id))
                .mappings()
                .one()
            )
            try:
                NumberFormat.parse(org["invoice_number_format"])
                total = _expand_request(conn, row, now)
            except (BatchRequestError, InvalidNumberFormat) as exc:
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.id == job.id)
                    .values(status="failed", failure_reason=str(exc), completed_at=now, **values)
                )
                return False
            values.update(
                status="processing",
                started_at=now,
                total_count=total,
                invoice_date=row["invoice_date"] or organization_today(org["timezone"]),
                estimated_duration_seconds=round(
                    total / _expected_rate(conn, job.organization_id), 3
                ),
            )
        elif status == "failed":
            pending = conn.execute(
                select(func.count()).where(
                    batch_job_items.c.batch_job_id == job.id, batch_job_items.c.status == "pending"
                )
            ).scalar_one()
            if not pending:
                return False
            values.update(
                status="processing", failure_reason=None, completed_at=None, duration_seconds=None
            )
        elif status != "processing":
            return False
        conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
    return True


def _expected_rate(conn: Connection, organization_id: int) -> float:
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
    return DEFAULT_RATE.get(conn.dialect.name, 3_000.0)


def _expand_request(conn: Connection, job: dict, now: datetime) -> int:
    """Write one batch_job_items row per requested order (or customer); returns the count.

    Runs once per job: a resumed job keeps its items. Unknown order ids become items without a
    sales order (the id stays in `payload`), and fail with `unknown_order` in their chunk.
    """
    existing = conn.execute(
        select(func.count()).where(batch_job_items.c.batch_job_id == job["id"])
    ).scalar_one()
    if existing:
        return existing
    request = job["request"] or {}
    org_id = job["organization_id"]
    if job["kind"] == SALES_ORDERS and "order_ids" in request:
        validate_order_ids(request["order_ids"])  # validates before SQL casts the JSON values
        _expand_order_ids(conn, job["id"], org_id)
    elif job["kind"] == SALES_ORDERS and request.get("all_reviewed"):
        _expand_all_reviewed(conn, job["id"], org_id, request.get("up_to"))
    elif job["kind"] == CUSTOMER_LINES:
        _expand_customer_lines(
            conn, job["id"], org_id, normalize_customer_lines(request.get("customers") or [])
        )
    else:
        raise BatchRequestError(
            f"batch job {job['id']}: request {request!r} of kind {job['kind']!r} names no orders; "
            'use {"order_ids": [...]}, {"all_reviewed": true} or kind customer_lines'
        )
    return conn.execute(
        select(func.count()).where(batch_job_items.c.batch_job_id == job["id"])
    ).scalar_one()


def _expand_order_ids(conn: Connection, job_id: int, org_id: int) -> None:
    # set-based straight from the stored JSON: 100,000 ids never travel as bind parameters
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")  # see chunk_postgres: compiling costs more
        requested = """
            SELECT (e.value)::bigint AS order_id, min(e.pos) AS pos
            FROM batch_jobs j, jsonb_array_elements_text(j.request -> 'order_ids') WITH ORDINALITY AS e(value, pos)
            WHERE j.id = :job GROUP BY 1
        """
        payload = "jsonb_build_object('sales_order_id', r.order_id)"
        # by primary key alone (`+ 0` keeps the organization index out of it): with statistics
        # from before a new tenant's orders the planner walked that index once per requested id
        # (4 s for 15,000 ids); see chunk_postgres.TAKE_ORDERS
        order_lookup = """
            LEFT JOIN LATERAL (
                SELECT id FROM sales_orders
                WHERE id = r.order_id AND organization_id + 0 = :org OFFSET 0
            ) AS so ON true"""
    else:
        requested = """
            SELECT CAST(e.value AS INTEGER) AS order_id, min(e.key) + 1 AS pos
            FROM batch_jobs j, json_each(j.request, '$.order_ids') AS e
            WHERE j.id = :job GROUP BY 1
        """
        payload = "json_object('sales_order_id', r.order_id)"
        order_lookup = (
            "LEFT JOIN sales_orders so ON so.id = r.order_id AND so.organization_id = :org"
        )
    conn.execute(
        text(
            f"""
            INSERT INTO batch_job_items (organization_id, batch_job_id, position, sales_order_id, payload, status)
            SELECT :org, :job, row_number() OVER (ORDER BY r.pos), so.id,
                   CASE WHEN so.id IS NULL THEN {payload} END, 'pending'
            FROM ({requested}) AS r
            {order_lookup}
            """
        ),
        {"org": org_id, "job": job_id},
    )


def _expand_all_reviewed(conn: Connection, job_id: int, org_id: int, up_to: str | None) -> None:
    position = func.row_number().over(order_by=(sales_orders.c.order_date, sales_orders.c.id))
    query = select(
        sales_orders.c.organization_id,
        literal(job_id, BigInteger()),
        position,
        sales_orders.c.id,
    ).where(
        sales_orders.c.organization_id == org_id,
        sales_orders.c.status == "reviewed",
        ~select(sales_invoices.c.id)
        .where(sales_invoices.c.sales_order_id == sales_orders.c.id)
        .exists(),
    )
    if up_to:
        query = query.where(sales_orders.c.order_date <= date.fromisoformat(up_to))
    conn.execute(
        insert(batch_job_items).from_select(
            ["organization_id", "batch_job_id", "position", "sales_order_id"], query
        )
    )


def _expand_customer_lines(conn: Connection, job_id: int, org_id: int, entries: list[dict]) -> None:
    wanted = {e["customer_id"] for e in entries}
    known = set(
        conn.execute(
            select(customers.c.id).where(
                customers.c.organization_id == org_id, customers.c.id.in_(wanted)
            )
        ).scalars()
    )
    conn.execute(
        insert(batch_job_items),
        [
            {
                "organization_id": org_id,
                "batch_job_id": job_id,
                "position": n,
                # an unknown customer cannot be a foreign key: it stays in the payload and fails
                "customer_id": e["customer_id"] if e["customer_id"] in known else None,
                "payload": e,
                "status": "pending",
            }
            for n, e in enumerate(entries, start=1)
        ],
    )


def _done_before(engine: Engine, job: BatchJob) -> int:
    """The position before the first pending item: where a started or resumed job continues."""
    with tenant_transaction(engine, job.organization_id) as conn:
        first = conn.execute(
            select(func.min(batch_job_items.c.position)).where(
                batch_job_items.c.batch_job_id == job.id, batch_job_items.c.status == "pending"
            )
        ).scalar()
    return (first - 1) if first is not None else 0


def _run_chunk(engine: Engine, job: BatchJob, chunk_size: int, after: int) -> tuple[bool, int]:
    """One chunk in one transaction, numbered under the sequence lock: (finished or stopped, last position)."""
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = _locked_job(conn, job.id)
        now = utcnow()
        if _stopped(conn, job, row, now):
            return True, after
        ctx = chunk_context(
            conn, job, row, chunk_size, after, now, lock_sequence(conn, job.organization_id)
        )
        outcome = _chunk_function(row["kind"], conn.dialect.name)(conn, ctx)
        return record_chunk(conn, job, row, ctx, outcome), after + chunk_size


# SQLSTATEs of "another transaction got in the way": deadlock, serialization failure, unique key,
# a lock taken NOWAIT that someone holds
CONFLICTS = frozenset({"40P01", "40001", "23505", "55P03"})
# a chunk under the sequence lock meets deadlocks only with chunks in flight elsewhere (`pipeline.py`)
CHUNK_ATTEMPTS = 5


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "pgcode", None) in CONFLICTS


def run_chunk_retrying(
    engine: Engine, job: BatchJob, chunk_size: int, after: int
) -> tuple[bool, int]:
    """`_run_chunk`, again (up to CHUNK_ATTEMPTS times) when PostgreSQL broke a deadlock with it."""
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            return _run_chunk(engine, job, chunk_size, after)
        except DBAPIError as exc:
            if not is_conflict(exc) or attempt == CHUNK_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _stopped(conn: Connection, job: BatchJob, row, now: datetime) -> bool:  # noqa: ANN001 - a Row
    """Whether the job must not go on; a cancel request ends it here (its row is locked)."""
    if row["status"] != "processing":
        return True  # failed as stuck, or finished by a concurrent runner
    if row["cancel_requested"]:
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job.id)
            .values(
                status="cancelled",
                completed_at=now,
                duration_seconds=_seconds_since(row["started_at"], now),
                updated_at=now,
            )
        )
        return True
    return False


def chunk_context(
    conn: Connection,
    job: BatchJob,
    row,  # noqa: ANN001 - the job's Row
    chunk_size: int,
    after: int,
    now: datetime,
    last_value: int,
) -> ChunkContext:
    number_format = conn.execute(
        select(organizations.c.invoice_number_format).where(
            organizations.c.id == job.organization_id
        )
    ).scalar_one()
    issue_date: date = row["invoice_date"]
    return ChunkContext(
        job_id=job.id,
        organization_id=job.organization_id,
        issue_date=issue_date,
        due_date=issue_date + timedelta(days=row["due_days"]),
        number_format=NumberFormat.parse(number_format),
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
    row,  # noqa: ANN001 - the job's Row, locked
    ctx: ChunkContext,
    outcome: ChunkOutcome,
) -> bool:
    """Move the sequence past the chunk's invoices and add the chunk to the job; True when it was the last."""
    now = ctx.now
    if outcome.succeeded:
        set_sequence(conn, job.organization_id, ctx.last_value + outcome.succeeded, now)
    # positions are 1..total_count: the job is done when the window reached the end
    finished = ctx.after_position + ctx.limit >= row["total_count"]
    processed = row["processed_count"] + outcome.processed
    failed = row["failed_count"] + outcome.failed
    values: dict = {
        "processed_count": processed,
        "successful_count": row["successful_count"] + outcome.succeeded,
        "failed_count": failed,
        "skipped_count": row["skipped_count"] + outcome.skipped,
        "heartbeat_at": now,
        "updated_at": now,
    }
    # room left on the locked row (a chunk in flight read the row before earlier chunks committed)
    room = min(ctx.error_room, max(MAX_ERRORS_ON_JOB - len(row["errors"] or []), 0))
    if room and outcome.errors:
        values["errors"] = list(row["errors"] or []) + outcome.errors[:room]
    elapsed = _seconds_since(row["started_at"], now)
    if processed and elapsed:
        values["estimated_duration_seconds"] = round(elapsed / processed * row["total_count"], 3)
    if finished:
        values.update(
            status="completed_with_errors" if failed else "completed",
            completed_at=now,
            duration_seconds=elapsed,
        )
    conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
    if finished:
        record_audit(
            conn,
            job.organization_id,
            row["created_by"] or "unknown",
            "batch_job.finished",
            job.id,
            {
                "status": values["status"],
                "successful": values["successful_count"],
                "failed": failed,
            },
        )
    return finished


def _seconds_since(start: datetime | None, now: datetime) -> float | None:
    return round((now - start).total_seconds(), 3) if start else None


def _mark_failed(engine: Engine, job: BatchJob, reason: str) -> None:
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = _locked_job(conn, job.id)
        if row["status"] != "processing":
            return
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job.id)
            .values(
                status="failed",
                failure_reason=f"processing stopped: {reason}. Committed chunks stay; run the job "
                "again to continue with the remaining orders.",
                completed_at=now,
                duration_seconds=_seconds_since(row["started_at"], now),
                updated_at=now,
            )
        )
