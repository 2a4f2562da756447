"""Jobs whose items are sales invoices (kinds `documents` and `communications`), run through the
queue: the area registers its work (what to do with a chunk of invoices) and, if it has one, its
closing work; the queue does the rest.

A job of these kinds is a `batch_jobs` row like an invoicing job: its request names the invoices
(`{"invoice_ids": [...]}`) or the invoicing job whose invoices it takes once that job has finished
(`{"after_job": 17}`, queued with it by `generate_pdf` / `send_immediately`). Claiming it writes one
`batch_job_items` row per invoice (`sales_invoice_id`, in request order); then, chunk by chunk:

1. under the job's row lock: stop if it was cancelled (it ends `cancelled` here) or ended
   elsewhere, else take the next pending items and note the heartbeat;
2. the work, outside any transaction (`documents.batch.documents_work`,
   `delivery.batch.communications_work`): each invoice's outcome (succeeded, failed with a code
   and reason, skipped);
3. under the row lock again: the outcomes of the items still pending, the job's counters.

A run that dies between 1 and 3 leaves the chunk pending; the next run does it again, which the
work must survive: documents exist once, a delivery is recorded before it leaves. When no item is
pending, `transitions.finish` ends the job once, doing its closing work (a combined print PDF)
under the job's lock: two runners that both reach the end never both do it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Engine, func, insert, literal, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.bulk import update_rows
from invoice_pipelines.db.tables import (
    audit_log,
    batch_job_items,
    batch_jobs,
    organizations,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.batch_job import TERMINAL_STATUSES, BatchJob
from invoice_pipelines.queue.domain.job_kind import (
    DEFAULT_CHUNK_SIZE,
    Closing,
    ItemOutcome,
    JobKind,
    Work,
)
from invoice_pipelines.queue.domain.jobs import batch_job_of, get_batch_job
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    insert_job,
    lookup_organization,
    positive_ids,
)
from invoice_pipelines.queue.domain.transitions import (
    add_progress,
    claim,
    finish,
    heartbeat,
    job_request,
    locked_job,
    mark_job_failed,
    stopped,
)


def enqueue_invoice_job(
    engine: Engine,
    org: Organization,
    kind: JobKind,
    invoice_ids: Sequence[int | str],
    *,
    created_by: str | None = None,
    runner: str | None = None,
    **options: Any,
) -> int:
    """Queue a job of a kind over sales invoices (documents, communications, ...) over the given
    invoices; its id. `options` are what the kind lets such a request ask for (`Requests.options`:
    a documents job's combined PDF, a communications job's channel), checked by the kind."""
    if not kind.over_invoices:
        raise BatchRequestError(f"a {kind.name} job is not over sales invoices")
    ids = parse_invoice_ids(invoice_ids)
    request: dict[str, Any] = {"invoice_ids": ids}
    if kind.requests.options is not None:
        request.update(kind.requests.options(**options))
    elif options:
        raise BatchRequestError(f"a {kind.name} job takes no options ({', '.join(options)})")
    return insert_job(
        engine,
        org,
        kind=kind.name,
        request=request,
        invoice_date=None,
        due_days=None,
        created_by=created_by,
        runner=runner,
        follow_ups=kind.requests.follow_ups,
    )


def parse_invoice_ids(values: Sequence[int | str] | str) -> list[int]:
    """Positive invoice ids, duplicates dropped, order kept (`"3, 1,2"` works too)."""
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    return list(dict.fromkeys(positive_ids(values, "sales invoice")))


# -- running a job ---------------------------------------------------------------------------------


def run_item_job(
    engine: Engine,
    job_id: int,
    work: Work,
    *,
    system: Engine,
    kind: str | tuple[str, ...],
    closing: Closing | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
) -> BatchJob:
    """Process a job over sales invoices (documents, communications) to its end (or its
    cancel); its final state.

    Safe to call again at any time, like `process_batch_job`: a pending job starts (unless the
    invoicing job it follows has not finished: then it stays pending), a processing or failed job
    resumes with its pending items, a finished one is returned as it is. `closing` is the job's
    closing work, done once by the runner that finishes it.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    job = get_batch_job(system, job_id)
    accepted = (kind,) if isinstance(kind, str) else kind
    if job.kind not in accepted:
        raise BatchRequestError(
            f"batch job {job_id} is a {job.kind} job, not {' or '.join(accepted)}"
        )
    if not claim_item_job(engine, job, runner):
        return batch_job_of(engine, job.organization_id, job_id)
    organization = lookup_organization(system, job.organization_id)  # once per job
    try:
        while True:
            chunk = next_chunk(engine, job, chunk_size)
            if chunk is None:
                break
            request, items = chunk
            if not items:
                finish(engine, job, request, closing, skipped=True)
                break
            outcomes = work(job, organization, request, [invoice_id for _, _, invoice_id in items])
            _record(engine, job, items, outcomes)
            if on_progress is not None:
                on_progress(batch_job_of(engine, job.organization_id, job_id))
    except Exception as exc:
        # another runner works on this organization right now (`leaves_job_running`, e.g. a
        # second sender): the job is that runner's, not failed
        if not getattr(exc, "leaves_job_running", False):
            mark_job_failed(
                engine,
                job,
                f"{type(exc).__name__}: {str(exc).strip()[:300]}",
                "Finished items stay; run the job again to continue with the remaining invoices.",
            )
        raise
    return batch_job_of(engine, job.organization_id, job_id)


def waiting_for(request: Mapping[str, Any]) -> int | None:
    after = request.get("after_job")
    return int(after) if after is not None else None


def claim_item_job(engine: Engine, job: BatchJob, runner: str | None) -> bool:
    """Claim the job for this runner (`transitions.claim`); False when there is nothing to do."""
    return claim(engine, job, runner, _start)


def _start(conn: Connection, row: Mapping[str, Any], now) -> dict | None:
    """A pending job starts with its items, unless the invoicing job it follows may still create
    invoices (then it stays pending)."""
    after = waiting_for(row["request"] or {})
    if after is not None and unfinished(conn, [after]):
        return None
    return {"total_count": _expand(conn, row)}


def item_count(conn: Connection, job_id: int) -> int:
    """How many items the job has: 0 before its request is expanded into them."""
    return conn.execute(
        select(func.count()).where(batch_job_items.c.batch_job_id == job_id)
    ).scalar_one()


def _expand(conn: Connection, job: Mapping[str, Any]) -> int:
    """One item per invoice of the request, in its order (once per job: a resumed job keeps them)."""
    existing = item_count(conn, job["id"])
    if existing:
        return existing
    request = job["request"] or {}
    org_id = job["organization_id"]
    after = waiting_for(request)
    if after is not None:
        # the invoices the earlier job created, in number order, set-based
        position = func.row_number().over(order_by=sales_invoices.c.sequence_number)
        conn.execute(
            insert(batch_job_items).from_select(
                ["organization_id", "batch_job_id", "position", "sales_invoice_id", "status"],
                select(
                    sales_invoices.c.organization_id,
                    literal(job["id"], BigInteger()),
                    position,
                    sales_invoices.c.id,
                    literal("pending"),
                ).where(
                    sales_invoices.c.organization_id == org_id,
                    sales_invoices.c.batch_job_id == after,
                ),
            )
        )
    else:
        ids = parse_invoice_ids(request.get("invoice_ids") or [])
        conn.execute(
            insert(batch_job_items),
            [
                {
                    "organization_id": org_id,
                    "batch_job_id": job["id"],
                    "position": n,
                    # not a foreign key: an unknown id fails as an item, with the reason
                    "sales_invoice_id": invoice_id,
                    "status": "pending",
                }
                for n, invoice_id in enumerate(ids, start=1)
            ],
        )
    return item_count(conn, job["id"])


def next_chunk(engine: Engine, job: BatchJob, chunk_size: int, what: str = "sales_invoice_id"):
    """(request, [(item id, position, the item's `what`)]) of the next chunk of pending items;
    None when the job stops (a cancel request ends it here)."""
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if stopped(conn, job, row, now):
            return None
        items = batch_job_items.c
        chunk = conn.execute(
            select(items.id, items.position, items[what])
            .where(items.batch_job_id == job.id, items.status == "pending")
            .order_by(items.position)
            .limit(chunk_size)
        ).all()
        heartbeat(conn, job.id, now)
        return row["request"] or {}, [tuple(r) for r in chunk]


def _record(
    engine: Engine, job: BatchJob, items: list[tuple], outcomes: Mapping[int, ItemOutcome]
) -> None:
    now = utcnow()
    c = batch_job_items.c
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        # only what is still pending counts: another runner may have recorded some meanwhile
        still = set(
            conn.execute(
                select(c.id).where(c.id.in_([i for i, _, _ in items]), c.status == "pending")
            ).scalars()
        )
        rows, errors, audit = [], [], []
        counts = {"succeeded": 0, "failed": 0, "skipped": 0}
        for item_id, position, invoice_id in items:
            if item_id not in still:
                continue
            outcome = outcomes.get(invoice_id) or ItemOutcome(
                "failed", "no_outcome", "the work reported nothing for this invoice"
            )
            counts[outcome.status] += 1
            if outcome.audit is not None:
                audit.append({"organization_id": job.organization_id, **outcome.audit})
            rows.append(
                {
                    "status": outcome.status,
                    "error_code": (outcome.code or None) and outcome.code[:64],
                    "error_message": outcome.message,
                    "updated_at": now,
                    "item_id": item_id,
                }
            )
            if outcome.status == "failed":
                errors.append(
                    {
                        "position": position,
                        "sales_invoice_id": invoice_id,
                        "code": outcome.code,
                        "message": outcome.message,
                    }
                )
        if rows:
            update_rows(conn, batch_job_items, {"item_id": c.id}, rows)
        if audit:
            conn.execute(insert(audit_log), audit)
        add_progress(
            conn,
            job,
            row,
            now,
            processed=len(rows),
            succeeded=counts["succeeded"],
            failed=counts["failed"],
            skipped=counts["skipped"],
            errors=errors,
        )


@dataclass(frozen=True)
class ReadyJob:
    id: int
    organization_slug: str
    kind: str


def ready_invoice_jobs(system: Engine, *, kinds: Sequence[str], limit: int = 500) -> list[ReadyJob]:
    """Pending jobs of `kinds` (names of kinds the queue's job runs, not a job of their own:
    documents, communications, credit notes; `Kinds.run_by_the_queue`) no runner has taken, whose
    invoicing job (if they follow one) has finished: what the sensor launches. Oldest first."""
    j = batch_jobs.c
    with system_transaction(system) as conn:  # every organization's queue, on purpose
        rows = conn.execute(
            select(j.id, organizations.c.slug, j.kind, j.request)
            .join(organizations, organizations.c.id == j.organization_id)
            .where(
                j.status == "pending",
                j.dagster_run_id.is_(None),
                j.kind.in_(list(kinds)),
            )
            .order_by(j.id)
            .limit(limit)
        ).all()
        waiting = unfinished(conn, {waiting_for(r.request or {}) for r in rows} - {None})
    return [
        ReadyJob(r.id, r.slug, r.kind) for r in rows if waiting_for(r.request or {}) not in waiting
    ]


def unfinished(conn: Connection, job_ids) -> set[int]:
    """Those of the invoicing jobs that may still create invoices: not ended, or failed with
    orders still pending (run again, they go on; retried, those orders move to the retry job,
    which has a follow-up of its own)."""
    j = batch_jobs.c
    ids = sorted(job_ids)
    if not ids:
        return set()
    return set(
        conn.execute(
            select(j.id).where(
                j.id.in_(ids),
                j.status.not_in(TERMINAL_STATUSES) | ((j.status == "failed") & _items_pending()),
            )
        ).scalars()
    )


def _items_pending():
    """The condition of a batch job (`batch_jobs` in the query) with items still pending."""
    i = batch_job_items.c
    return select(i.id).where(i.batch_job_id == batch_jobs.c.id, i.status == "pending").exists()


@dataclass(frozen=True)
class Followed:
    """An invoicing job whose invoices the job queued with it (`follow_up`: a batch's documents
    or communications job) takes next."""

    invoicing_job_id: int
    follow_up_id: int
    organization_id: int


def followed_invoicing_jobs(conn: Connection, organization_id: int | None = None) -> list[Followed]:
    """The invoicing jobs (of the organization, or of every one) whose invoices their follow-up
    will take next: the follow-up is pending or processing, and the invoicing job has not failed
    with orders still pending (that one waits for a person's retry, and its follow-up with it).

    Work that would do the same for any invoice (documents_sensor and an organization's
    documents run, which write every invoice without a document) leaves these invoices to the
    follow-up, the batch's own job: otherwise both queue for the same organization, one after
    the other, and the second finds its work done (issue 73: a batch's documents job waited 4.5
    minutes behind the sensor's run that had written its PDFs, then ran 13 s). Two small reads
    over the jobs not ended (`ix_batch_jobs_status_created`)."""
    j = batch_jobs.c
    query = select(j.id, j.organization_id, j.request).where(
        j.status.in_(("pending", "processing"))
    )
    if organization_id is not None:
        query = query.where(j.organization_id == organization_id)
    follow_ups = [
        Followed(after, row.id, row.organization_id)
        for row in conn.execute(query)
        if (after := waiting_for(row.request or {})) is not None
    ]
    if not follow_ups:
        return []
    held = set(
        conn.execute(
            select(j.id).where(
                j.id.in_(sorted({f.invoicing_job_id for f in follow_ups})),
                j.status == "failed",
                _items_pending(),
            )
        ).scalars()
    )
    return [f for f in follow_ups if f.invoicing_job_id not in held]


def request_of(engine: Engine, job: BatchJob) -> dict:
    """A job's stored request (what it was asked to do: its channel, its options)."""
    with tenant_transaction(engine, job.organization_id) as conn:
        return job_request(conn, job.id)
