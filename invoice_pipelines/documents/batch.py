"""Batch jobs over sales invoices (kinds `documents` and `communications`) through the queue.

A job of these kinds is a `batch_jobs` row like an invoicing job: its request names the invoices
(`{"invoice_ids": [...]}`) or the invoicing job whose invoices it takes once that job has finished
(`{"after_job": 17}`, queued with it by `generate_pdf` / `send_immediately`). Claiming it writes one
`batch_job_items` row per invoice (`sales_invoice_id`, in request order); then, chunk by chunk:

1. under the job's row lock: stop if it was cancelled (it ends `cancelled` here) or ended
   elsewhere, else take the next pending items and note the heartbeat;
2. the work, outside any transaction (`documents_work` here, `delivery.batch.communications_work`):
   each invoice's outcome (succeeded, failed with a code and reason, skipped);
3. under the row lock again: the outcomes of the items still pending, the job's counters.

A run that dies between 1 and 3 leaves the chunk pending; the next run does it again, which the
work must survive: documents exist once, a delivery is recorded before it leaves. Cancel, retry of
failed items (`billing.jobs.retry_failed`) and the stuck-job cleanup are the queue's own.

A `documents` job may ask for a combined PDF (`"combined_pdf": true`): once every item is done,
the generated PDFs are concatenated in request order into `<org>/batches/batch-<job>.pdf` in the
document store; its path, size, page count and the items it lacks are recorded in the audit log.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pypdf
from sqlalchemy import BigInteger, Engine, bindparam, func, insert, literal, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.chunk_transaction import (
    end_job,
    locked_job,
    mark_job_failed,
    reopened_if_pending,
    seconds_since,
)
from invoice_pipelines.billing.contract import MAX_ERRORS_ON_JOB
from invoice_pipelines.billing.jobs import TERMINAL_STATUSES, BatchJob, get_batch_job
from invoice_pipelines.billing.requests import (
    CHANNELS,
    DOCUMENTS,
    INVOICE_KINDS,
    BatchRequestError,
    insert_job,
    lookup_organization,
    record_audit,
)
from invoice_pipelines.db.tables import (
    audit_log,
    batch_job_items,
    batch_jobs,
    organizations,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.documents.pipeline import Builder, generate_documents
from invoice_pipelines.resources.files import FileStore

DEFAULT_CHUNK_SIZE = 200
COMBINED_PDF_ACTION = "batch_job.combined_pdf"


@dataclass(frozen=True)
class ItemOutcome:
    status: str  # succeeded | failed | skipped
    code: str | None = None
    message: str | None = None
    # an audit log row (action, created_by, entity, details) written with the item's outcome
    audit: dict | None = None


SUCCEEDED = ItemOutcome("succeeded")
# the work of one chunk: (job, its request, the chunk's invoice ids) -> outcome per invoice id
Work = Callable[[BatchJob, Mapping[str, Any], list[int]], dict[int, ItemOutcome]]


def enqueue_invoice_job(
    engine: Engine,
    organization: str | int,
    kind: str,
    invoice_ids: Sequence[int | str],
    *,
    combined_pdf: bool = False,
    channel: str | None = None,
    resend: bool = False,
    created_by: str | None = None,
    runner: str | None = None,
) -> int:
    """Queue a `documents` or `communications` job over the given sales invoices; its id."""
    if kind not in INVOICE_KINDS:
        raise BatchRequestError(f"kind must be one of {', '.join(INVOICE_KINDS)}, not {kind!r}")
    ids = parse_invoice_ids(invoice_ids)
    request: dict[str, Any] = {"invoice_ids": ids}
    if kind == DOCUMENTS:
        if channel is not None or resend:
            raise BatchRequestError("channel and resend apply to communications jobs")
        if combined_pdf:
            request["combined_pdf"] = True
    else:
        if combined_pdf:
            raise BatchRequestError("a combined PDF applies to documents jobs")
        channel = channel or "email"
        if channel not in CHANNELS:
            raise BatchRequestError(
                f"channel must be one of {', '.join(CHANNELS)}, not {channel!r}"
            )
        request["channel"] = channel
        if resend:
            request["resend"] = True
    org = lookup_organization(engine, organization)
    return insert_job(
        engine,
        org,
        kind=kind,
        request=request,
        invoice_date=None,
        due_days=None,
        created_by=created_by,
        runner=runner,
    )


def parse_invoice_ids(values: Sequence[int | str] | str) -> list[int]:
    """Positive invoice ids, duplicates dropped, order kept (`"3, 1,2"` works too)."""
    if isinstance(values, str):
        values = [part for part in values.split(",") if part.strip()]
    ids: list[int] = []
    for value in values:
        text = str(value).strip()
        if not text.isdigit() or int(text) <= 0:
            raise BatchRequestError(f"sales invoice ids are positive integers, not {value!r}")
        ids.append(int(text))
    if not ids:
        raise BatchRequestError("no sales invoice ids given")
    return list(dict.fromkeys(ids))


# -- running a job ---------------------------------------------------------------------------------


def run_invoice_job(
    engine: Engine,
    job_id: int,
    work: Work,
    *,
    store: FileStore | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
) -> BatchJob:
    """Process a documents or communications job to its end (or its cancel); its final state.

    Safe to call again at any time, like `process_batch_job`: a pending job starts (unless the
    invoicing job it follows has not finished: then it stays pending), a processing or failed job
    resumes with its pending items, a finished one is returned as it is. `store` is where a
    combined PDF goes.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    job = get_batch_job(engine, job_id)
    if job.kind not in INVOICE_KINDS:
        raise BatchRequestError(f"batch job {job_id} is a {job.kind} job, not documents or sending")
    if not _claim(engine, job, runner):
        return get_batch_job(engine, job_id)
    try:
        while True:
            chunk = _next_chunk(engine, job, chunk_size)
            if chunk is None:
                break
            request, items = chunk
            if not items:
                _finish(engine, job, request, store)
                break
            outcomes = work(job, request, [invoice_id for _, _, invoice_id in items])
            _record(engine, job, items, outcomes)
            if on_progress is not None:
                on_progress(get_batch_job(engine, job_id))
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
    return get_batch_job(engine, job_id)


def waiting_for(request: Mapping[str, Any]) -> int | None:
    after = request.get("after_job")
    return int(after) if after is not None else None


def _claim(engine: Engine, job: BatchJob, runner: str | None) -> bool:
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        status = row["status"]
        values: dict = {"heartbeat_at": now, "updated_at": now}
        if runner:
            values["dagster_run_id"] = runner
        if status == "pending":
            request = row["request"] or {}
            after = waiting_for(request)
            if after is not None and unfinished(conn, [after]):
                return False  # its invoices are not all there yet
            try:
                total = _expand(conn, row)
            except BatchRequestError as exc:
                conn.execute(
                    update(batch_jobs)
                    .where(batch_jobs.c.id == job.id)
                    .values(status="failed", failure_reason=str(exc), completed_at=now, **values)
                )
                return False
            values.update(status="processing", started_at=now, total_count=total)
        elif status == "failed":
            reopened = reopened_if_pending(conn, job.id)
            if reopened is None:
                return False
            values.update(reopened)
        elif status != "processing":
            return False
        conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))
    return True


def _expand(conn: Connection, job: Mapping[str, Any]) -> int:
    """One item per invoice of the request, in its order (once per job: a resumed job keeps them)."""
    items = batch_job_items.c
    existing = conn.execute(
        select(func.count()).where(items.batch_job_id == job["id"])
    ).scalar_one()
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
    return conn.execute(select(func.count()).where(items.batch_job_id == job["id"])).scalar_one()


def _next_chunk(engine: Engine, job: BatchJob, chunk_size: int):
    """(request, [(item id, position, invoice id)]) of the next chunk; None when the job stops."""
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if row["status"] != "processing":
            return None  # failed as stuck, or finished by another runner
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
            return None
        items = batch_job_items.c
        chunk = conn.execute(
            select(items.id, items.position, items.sales_invoice_id)
            .where(items.batch_job_id == job.id, items.status == "pending")
            .order_by(items.position)
            .limit(chunk_size)
        ).all()
        conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.id == job.id)
            .values(heartbeat_at=now, updated_at=now)
        )
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
                    "item_id": item_id,
                    "new_status": outcome.status,
                    "code": (outcome.code or None) and outcome.code[:64],
                    "message": outcome.message,
                    "now": now,
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
            conn.execute(
                update(batch_job_items)
                .where(c.id == bindparam("item_id"))
                .values(
                    status=bindparam("new_status"),
                    error_code=bindparam("code"),
                    error_message=bindparam("message"),
                    updated_at=bindparam("now"),
                ),
                rows,
            )
        if audit:
            conn.execute(insert(audit_log), audit)
        values: dict = {
            "processed_count": row["processed_count"] + len(rows),
            "successful_count": row["successful_count"] + counts["succeeded"],
            "failed_count": row["failed_count"] + counts["failed"],
            "skipped_count": row["skipped_count"] + counts["skipped"],
            "heartbeat_at": now,
            "updated_at": now,
        }
        room = max(MAX_ERRORS_ON_JOB - len(row["errors"] or []), 0)
        if room and errors:
            values["errors"] = list(row["errors"] or []) + errors[:room]
        elapsed = seconds_since(row["started_at"], now)
        if values["processed_count"] and elapsed:
            values["estimated_duration_seconds"] = round(
                elapsed / values["processed_count"] * row["total_count"], 3
            )
        conn.execute(update(batch_jobs).where(batch_jobs.c.id == job.id).values(**values))


def _finish(engine: Engine, job: BatchJob, request: Mapping[str, Any], store) -> None:
    combined = None
    if job.kind == DOCUMENTS and request.get("combined_pdf"):
        if store is None:
            raise ValueError("a combined PDF needs the document store")
        combined = combine_pdfs(engine, store, job)
    now = utcnow()
    with tenant_transaction(engine, job.organization_id, write=True) as conn:
        row = locked_job(conn, job.id)
        if row["status"] != "processing":
            return
        status = "completed_with_errors" if row["failed_count"] else "completed"
        end_job(conn, job.id, row, now, status, heartbeat_at=now)
        who = row["created_by"] or "unknown"
        if combined is not None:
            record_audit(conn, job.organization_id, who, COMBINED_PDF_ACTION, job.id, combined)
        record_audit(
            conn,
            job.organization_id,
            who,
            "batch_job.finished",
            job.id,
            {
                "status": status,
                "successful": row["successful_count"],
                "failed": row["failed_count"],
                "skipped": row["skipped_count"],
            },
        )


# -- documents ---------------------------------------------------------------------------------


def documents_work(
    engine: Engine, store: FileStore, *, builder: Builder | None = None, run_id: str | None = None
) -> Work:
    """The documents of a chunk's invoices (written once: existing ones count as done)."""

    def work(job: BatchJob, request: Mapping[str, Any], invoice_ids: list[int]):
        return ensure_documents(engine, store, job, invoice_ids, builder=builder, run_id=run_id)

    return work


def ensure_documents(
    engine: Engine,
    store: FileStore,
    job: BatchJob,
    invoice_ids: list[int],
    *,
    builder: Builder | None = None,
    run_id: str | None = None,
) -> dict[int, ItemOutcome]:
    """Every invoice's documents written (or there already): succeeded, or failed with its rule ids."""
    summary = generate_documents(
        engine,
        store,
        job.organization_id,
        invoice_ids,
        builder=builder,
        run_id=run_id,
        batch_size=max(len(invoice_ids), 1),
    )
    outcomes: dict[int, ItemOutcome] = {}
    for invoice_id in invoice_ids:
        errors = summary.failed.get(invoice_id)
        if errors is None:
            outcomes[invoice_id] = SUCCEEDED
            continue
        rules = ", ".join(dict.fromkeys(e.get("rule") or "?" for e in errors))
        message = "; ".join(e.get("message") or "" for e in errors[:3])
        outcomes[invoice_id] = ItemOutcome("failed", rules, message)
    return outcomes


def combined_pdf_key(slug: str, job_id: int) -> str:
    return f"{slug}/batches/batch-{job_id}.pdf"


def combine_pdfs(engine: Engine, store: FileStore, job: BatchJob) -> dict[str, Any]:
    """The job's generated invoice PDFs in request order as one print file; what it holds and lacks."""
    i, d, s = batch_job_items.c, sales_invoice_documents.c, sales_invoices.c
    with tenant_transaction(engine, job.organization_id) as conn:
        rows = conn.execute(
            select(
                i.position,
                i.sales_invoice_id,
                i.status,
                i.error_code,
                s.invoice_number,
                d.storage_key,
            )
            .select_from(batch_job_items)
            .outerjoin(sales_invoices, s.id == i.sales_invoice_id)
            .outerjoin(
                sales_invoice_documents,
                (d.sales_invoice_id == i.sales_invoice_id)
                & (d.kind == "facturx")
                & (d.status == "generated"),
            )
            .where(i.batch_job_id == job.id)
            .order_by(i.position)
        ).all()
    started = time.perf_counter()
    writer = pypdf.PdfWriter()
    included, missing = [], []
    for position, invoice_id, status, code, number, key in rows:
        if status == "succeeded" and key:
            writer.append(pypdf.PdfReader(io.BytesIO(store.read(key))))
            included.append(number)
        else:
            missing.append(
                {
                    "position": position,
                    "sales_invoice_id": invoice_id,
                    "number": number,
                    "status": status,
                    "code": code,
                }
            )
    invoice_pages = len(writer.pages)
    if missing:
        # the print file says what it lacks, so nobody takes a short stack for the whole batch
        writer.append(pypdf.PdfReader(io.BytesIO(_missing_page(job.id, missing))))
    buffer = io.BytesIO()
    writer.write(buffer)
    data = buffer.getvalue()
    key = combined_pdf_key(job.organization_slug, job.id)
    if store.exists(key):
        store.remove(key)  # a run that died before recording it; nobody was told of that file
    path = store.write(key, [data])
    return {
        "path": path,
        "key": key,
        "size_bytes": len(data),
        "pages": len(writer.pages),
        "invoice_pages": invoice_pages,
        "invoices": len(included),
        "first_number": included[0] if included else None,
        "last_number": included[-1] if included else None,
        "missing": missing[:200],
        "missing_count": len(missing),
        "seconds": round(time.perf_counter() - started, 3),
    }


def _missing_page(job_id: int, missing: list[dict]) -> bytes:
    """A closing page listing the items a combined PDF lacks (German and English)."""
    from fpdf import FPDF

    from invoice_pipelines.documents.render import font_dir

    pdf = FPDF(unit="pt", format="A4")
    pdf.add_font("DejaVu", "", str(font_dir() / "DejaVuSans.ttf"))
    pdf.set_margins(56, 56, 56)
    pdf.add_page()
    pdf.set_font("DejaVu", size=13)
    pdf.multi_cell(
        0,
        18,
        f"Stapel {job_id}: {len(missing)} Rechnung(en) fehlen in dieser Datei / "
        f"batch {job_id}: {len(missing)} invoice(s) not in this file",
    )
    pdf.ln(8)
    pdf.set_font("DejaVu", size=10)
    for m in missing:
        what = m["number"] or f"id {m['sales_invoice_id']}"
        reason = f"{m['status']}: {m['code']}" if m["code"] else m["status"]
        pdf.multi_cell(0, 14, f"#{m['position']}  {what}  ({reason})")
    return bytes(pdf.output())


def combined_pdf_of(engine: Engine, job: BatchJob) -> dict[str, Any] | None:
    """What `combine_pdfs` recorded for the job (path, size, pages, missing items), if anything."""
    a = audit_log.c
    with tenant_transaction(engine, job.organization_id) as conn:
        return conn.execute(
            select(a.details)
            .where(
                a.organization_id == job.organization_id,
                a.entity_type == "batch_job",
                a.entity_id == str(job.id),
                a.action == COMBINED_PDF_ACTION,
            )
            .order_by(a.id.desc())
            .limit(1)
        ).scalar()


@dataclass(frozen=True)
class ReadyJob:
    id: int
    organization_slug: str
    kind: str


def ready_invoice_jobs(engine: Engine, *, limit: int = 500) -> list[ReadyJob]:
    """Pending documents and communications jobs no runner has taken, whose invoicing job (if they
    follow one) has finished: what the sensor launches. Oldest first."""
    j = batch_jobs.c
    with system_transaction(engine) as conn:  # every organization's queue, on purpose
        rows = conn.execute(
            select(j.id, organizations.c.slug, j.kind, j.request)
            .join(organizations, organizations.c.id == j.organization_id)
            .where(j.status == "pending", j.dagster_run_id.is_(None), j.kind.in_(INVOICE_KINDS))
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
    j, i = batch_jobs.c, batch_job_items.c
    ids = sorted(job_ids)
    if not ids:
        return set()
    pending_items = select(i.id).where(i.batch_job_id == j.id, i.status == "pending").exists()
    return set(
        conn.execute(
            select(j.id).where(
                j.id.in_(ids),
                j.status.not_in(TERMINAL_STATUSES) | ((j.status == "failed") & pending_items),
            )
        ).scalars()
    )
