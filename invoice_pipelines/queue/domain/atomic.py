"""Jobs whose items each make one thing that must exist exactly once (kind `credit_notes`): an
item's work and its outcome commit in one transaction.

Documents and sending (`items.py`) work outside the queue's transactions and record the outcomes
afterwards, which their work survives (a document exists once, a delivery is recorded before it
leaves). A credit note has no such key of its own: issued twice, it credits twice. So here each
item is ONE transaction:

1. lock the job row; stop if the job no longer runs or a cancel was asked for (the next chunk
   boundary ends it `cancelled`); leave the item if it is no longer pending;
2. the work, with this connection (`billing.credit_note_jobs`: the credit note, its number, the
   invoice's amount due);
3. the item becomes `succeeded` with what the work made (`sales_invoice_id`), by an UPDATE that
   requires it to be still pending, and the job's counters move.

A crash before the commit leaves nothing of the item (the next run does it again); after it the
item is done and no runner takes it again. Two runners of one job wait for each other on the job
row, and the conditional UPDATE is the last guard: had another transaction finished the item, this
one rolls back with everything it wrote. A refusal (`ItemFailed`, raised by the work) rolls the work
back and records the item `failed` with its code and message in a transaction of its own; the next
item goes on. Anything else (a lost database connection) fails the job with the reason; running it
again goes on with the items still pending.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import batch_job_items
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.items import item_count, next_chunk
from invoice_pipelines.queue.domain.jobs import batch_job_of, get_batch_job
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.queue.domain.transitions import (
    add_progress,
    claim,
    finish,
    locked_job,
    mark_job_failed,
)


class ItemFailed(Exception):
    """The work refuses an item: `code` and `message` are recorded with it, nothing it did stays."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# work(conn, job, request, payload): does the item inside the open transaction; the id of the
# sales invoice it made (or None). Raises ItemFailed for an item it refuses.
ItemWork = Callable[[Connection, BatchJob, Mapping[str, Any], Any], int | None]
# the items (payloads) a request lists; BatchRequestError when it lists none
Payloads = Callable[[Mapping[str, Any]], list[Any]]
# what names an item in the job's error list, besides its position (e.g. its invoice number)
Describe = Callable[[Any], dict]


def run_atomic_job(
    engine: Engine,
    job_id: int,
    work: ItemWork,
    *,
    system: Engine,
    kind: str,
    payloads: Payloads,
    describe: Describe,
    chunk_size: int,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
    after_failure: str = "Finished items stay; run the job again to go on with the others.",
) -> BatchJob:
    """Process a job of `kind` to its end (or its cancel); its final state.

    Safe to call again at any time: a pending job starts, a processing or failed one goes on with
    its pending items, a finished one is returned as it is.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    job = get_batch_job(system, job_id)
    if job.kind != kind:
        raise BatchRequestError(f"batch job {job_id} is a {job.kind} job, not {kind}")

    def start(conn: Connection, row: Mapping[str, Any], now) -> dict:
        return {"total_count": _expand(conn, row, payloads)}

    if not claim(engine, job, runner, start):
        return batch_job_of(engine, job.organization_id, job_id)
    try:
        while True:
            chunk = next_chunk(engine, job, chunk_size, "payload")
            if chunk is None:
                break
            request, items = chunk
            if not items:
                finish(engine, job, request, None)
                break
            for item_id, position, payload in items:
                if not _one_item(engine, job, request, item_id, position, payload, work, describe):
                    break  # the job stopped: the next chunk boundary says how
            if on_progress is not None:
                on_progress(batch_job_of(engine, job.organization_id, job_id))
    except Exception as exc:
        mark_job_failed(
            engine, job, f"{type(exc).__name__}: {str(exc).strip()[:300]}", after_failure
        )
        raise
    return batch_job_of(engine, job.organization_id, job_id)


def _expand(conn: Connection, job: Mapping[str, Any], payloads: Payloads) -> int:
    """One item per entry of the request, in its order (once per job: a resumed job keeps them)."""
    existing = item_count(conn, job["id"])
    if existing:
        return existing
    entries = payloads(job["request"] or {})
    conn.execute(
        insert(batch_job_items),
        [
            {
                "organization_id": job["organization_id"],
                "batch_job_id": job["id"],
                "position": n,
                # as asked: an entry the work cannot read fails as its item, with the reason
                "payload": entry,
                "status": "pending",
            }
            for n, entry in enumerate(entries, start=1)
        ],
    )
    return len(entries)


class _DoneElsewhere(Exception):
    """Another transaction finished the item first: roll this one back."""


def _one_item(
    engine: Engine,
    job: BatchJob,
    request: Mapping[str, Any],
    item_id: int,
    position: int,
    payload: Any,
    work: ItemWork,
    describe: Describe,
) -> bool:
    """Do one item with its outcome in one transaction; False when the job must stop."""
    c = batch_job_items.c
    now = utcnow()
    try:
        with tenant_transaction(engine, job.organization_id, write=True) as conn:
            row = locked_job(conn, job.id)
            if row["status"] != "processing" or row["cancel_requested"]:
                return False
            status = conn.execute(select(c.status).where(c.id == item_id)).scalar_one()
            if status != "pending":
                return True
            made = work(conn, job, request, payload)
            done = conn.execute(
                update(batch_job_items)
                .where(c.id == item_id, c.status == "pending")
                .values(status="succeeded", sales_invoice_id=made, updated_at=now)
            )
            if done.rowcount != 1:
                raise _DoneElsewhere
            add_progress(
                conn, job, row, now, processed=1, succeeded=1, failed=0, skipped=0, errors=[]
            )
        return True
    except _DoneElsewhere:
        return True
    except ItemFailed as exc:
        failure = exc
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if row["status"] != "processing":
            return False
        done = conn.execute(
            update(batch_job_items)
            .where(c.id == item_id, c.status == "pending")
            .values(
                status="failed",
                error_code=failure.code[:64],
                error_message=failure.message,
                updated_at=now,
            )
        )
        if done.rowcount == 1:
            error = {
                "position": position,
                **describe(payload),
                "code": failure.code,
                "message": failure.message,
            }
            add_progress(
                conn, job, row, now, processed=1, succeeded=0, failed=1, skipped=0, errors=[error]
            )
    return True
