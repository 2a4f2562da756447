"""Batch invoicing: turn a queued batch job into sales invoices, chunk by chunk, exactly once."""

# Claims the job (its request becomes one batch_job_items row per order or customer), then runs
# its chunks: one at a time (`chunk_transaction.py`, one transaction each under the organization's
# number sequence lock) or, on PostgreSQL, several in flight (`chunks_in_flight.py`).

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import date, datetime

from sqlalchemy import BigInteger, Engine, func, literal, select
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.domain.chunk_transaction import run_chunk_retrying
from invoice_pipelines.billing.domain.chunks_in_flight import PipelinedJob
from invoice_pipelines.billing.domain.invoicing_kinds import CUSTOMER_LINES, SALES_ORDERS
from invoice_pipelines.core.batch_requests import normalize_customer_lines
from invoice_pipelines.core.numbering import InvalidNumberFormat, NumberFormat
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    batch_job_items,
    customers,
    reviewed_sales_orders,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.queue.domain.item_rows import add_items, add_items_from, add_items_sql
from invoice_pipelines.queue.domain.jobs import BatchJob, batch_job_of, job_to_run
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    organization_today,
    validate_order_ids,
)
from invoice_pipelines.queue.domain.stats import expected_rate
from invoice_pipelines.queue.domain.transitions import claim, mark_job_failed
from invoice_pipelines.resources.workers import stop_signal

DEFAULT_CHUNK_SIZE = 5000
# chunks of one job in flight at once on PostgreSQL (`chunks_in_flight.py`); SQLite has one writer
DEFAULT_WORKERS = 2
MAX_WORKERS = 8  # each holds a connection; the engine's pool has 15
# a first guess for the progress bar until the organization has finished jobs to learn from
DEFAULT_RATE = {"postgresql": 5_000.0, "sqlite": 4_000.0}


@dataclass(frozen=True)
class ProcessedBatchJob(BatchJob):
    """What `process_batch_job` returns: the job's state, and how this call went.

    `fallbacks`: chunks of this call that had to be redone one at a time under the sequence lock
    because their attempt in flight was rolled back (`chunks_in_flight.py`); `fallback_causes` counts them
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


def process_batch_job(
    engine: Engine,
    job_id: int,
    *,
    system: Engine,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
    workers: int = DEFAULT_WORKERS,
) -> ProcessedBatchJob:
    """Process a batch job to the end (or to its cancellation) and return its final state.

    Safe to call again for the same job at any time: a pending job starts, a processing job (its
    runner died, or another runner works on it right now) resumes where the committed chunks
    ended, a failed job with unprocessed items resumes, a finished job is returned unchanged.
    The queue hands the job's organization over with it (`job_to_run`, once per call); its
    number format, time zone and currency go from here to the chunks as that value.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}")
    job, org = job_to_run(system, job_id)  # the job by id; then read as its organization's
    if not claim_batch_job(engine, org, job, runner):
        return _processed(batch_job_of(engine, job.organization_id, job_id))
    try:
        after = _done_before(engine, job)
        claimed = batch_job_of(engine, job.organization_id, job_id)
        if workers > 1 and claimed.kind == SALES_ORDERS and engine.dialect.name == "postgresql":
            pipelined = PipelinedJob(
                engine,
                org,
                claimed,
                chunk_size=chunk_size,
                after=after,
                total=claimed.total_count,
                workers=workers,
                on_progress=on_progress,
            )
            pipelined.run()
            return _processed(
                batch_job_of(engine, job.organization_id, job_id), pipelined.fallback_causes
            )
        while True:
            # a SIGTERM Dagster's handler lost (stop_signal.py) ends the run before the next
            # chunk, as Dagster's own interrupt: the job stays processing for its resume
            stop_signal.raise_if_received()
            finished, after = run_chunk_retrying(engine, org, job, chunk_size, after)
            if on_progress is not None:
                on_progress(batch_job_of(engine, job.organization_id, job_id))
            if finished:
                break
    except Exception as exc:
        mark_job_failed(
            engine,
            job,
            f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc) else ''}",
            "Committed chunks stay; run the job again to continue with the remaining orders.",
        )
        raise
    return _processed(batch_job_of(engine, job.organization_id, job_id))


def claim_batch_job(engine: Engine, org: Organization, job: BatchJob, runner: str | None) -> bool:
    """Claim the job of `org` (pending -> processing, expanding its request into items) or
    resume it."""
    return claim(engine, job, runner, lambda conn, row, now: _start(conn, org, row, now))


def _start(conn: Connection, org: Organization, row, now: datetime) -> dict:
    """What starts an invoicing job of `org`: its items, its invoice date (the organization's
    today unless it names one) and a first time estimate."""
    try:
        NumberFormat.parse(org.invoice_number_format)
    except InvalidNumberFormat as exc:
        raise BatchRequestError(str(exc)) from exc
    total = _expand_request(conn, row, now)
    return {
        "total_count": total,
        "invoice_date": row["invoice_date"] or organization_today(org.timezone),
        "estimated_duration_seconds": round(
            total
            / expected_rate(
                conn, row["organization_id"], DEFAULT_RATE.get(conn.dialect.name, 3_000.0)
            ),
            3,
        ),
    }


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
    add_items_sql(
        conn,
        f"""
        SELECT :org, :job, row_number() OVER (ORDER BY r.pos), so.id,
               CASE WHEN so.id IS NULL THEN {payload} END, 'pending'
        FROM ({requested}) AS r
        {order_lookup}
        """,
        {"org": org_id, "job": job_id},
    )


def _expand_all_reviewed(conn: Connection, job_id: int, org_id: int, up_to: str | None) -> None:
    # the working set, not the orders' history: reviewed_sales_orders holds the organization's
    # reviewed orders (the database keeps it, migration 0047), read in its (organization, order
    # date, order) index's order; sales_orders' status is no longer indexed
    waiting = reviewed_sales_orders
    position = func.row_number().over(order_by=(waiting.c.order_date, waiting.c.sales_order_id))
    query = select(
        waiting.c.organization_id,
        literal(job_id, BigInteger()),
        position,
        waiting.c.sales_order_id,
    ).where(
        waiting.c.organization_id == org_id,
        ~select(sales_invoices.c.id)
        .where(sales_invoices.c.sales_order_id == waiting.c.sales_order_id)
        .exists(),
    )
    if up_to:
        query = query.where(waiting.c.order_date <= date.fromisoformat(up_to))
    add_items_from(conn, ["organization_id", "batch_job_id", "position", "sales_order_id"], query)


def _expand_customer_lines(conn: Connection, job_id: int, org_id: int, entries: list[dict]) -> None:
    wanted = {e["customer_id"] for e in entries}
    known = set(
        conn.execute(
            select(customers.c.id).where(
                customers.c.organization_id == org_id, customers.c.id.in_(wanted)
            )
        ).scalars()
    )
    add_items(
        conn,
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
