"""Documents jobs (kind `documents`) through the queue (`queue/domain/items.py`): the work of a chunk
(every invoice's documents, written once) and the job's closing work.

A `documents` job may ask for a combined PDF (`"combined_pdf": true`): once every item is done,
the runner that finishes the job (once, under the job's lock: `queue.transitions.finish`)
concatenates the generated PDFs in request order into `<org>/batches/batch-<job>.pdf` in the
document store; its path, size, page count and the items it lacks are recorded in the audit log.

`DOCUMENTS_KIND` is the kind as the queue sees it (`queue/domain/job_kind.py`): its launchpad request, its
chunk work, its closing work and what a run records of it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pypdf
from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import (
    audit_log,
    batch_job_items,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.documents.domain.pipeline import Builder, generate_documents
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.items import enqueue_invoice_job, run_item_job, waiting_for
from invoice_pipelines.queue.domain.job_kind import (
    DEFAULT_CHUNK_SIZE,
    SUCCEEDED,
    Chunks,
    ItemOutcome,
    JobKind,
    Reading,
    Requests,
    Work,
)
from invoice_pipelines.queue.domain.jobs import job_item_outcomes
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.resources.files.files import Files

if TYPE_CHECKING:
    from invoice_pipelines.documents.domain.batch_request import DocumentsJobRequest

DOCUMENTS = KindName.DOCUMENTS  # this area's kind of batch job, by its name
DOCUMENTS_VALID = "documents_valid"  # sales_invoice_documents' check, on a job's record too
COMBINED_PDF_ACTION = "batch_job.combined_pdf"


def run_invoice_job(
    engine: Engine,
    job_id: int,
    work: Work,
    *,
    system: Engine,
    store: Files | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    runner: str | None = None,
    on_progress: Callable[[BatchJob], None] | None = None,
) -> BatchJob:
    """A documents or communications job run to its end by the queue with `work`; `store` is
    where a documents job's combined PDF goes (`queue.items.run_item_job` says the rest)."""
    return run_item_job(
        engine,
        job_id,
        work,
        system=system,
        kind=(DOCUMENTS, KindName.COMMUNICATIONS),
        closing=combined_pdf_closing(store),
        chunk_size=chunk_size,
        runner=runner,
        on_progress=on_progress,
    )


def combined_pdf_closing(store: Files | None):
    """The closing work of a documents job that asked for a combined PDF."""

    def closing(conn: Connection, job: BatchJob, request: Mapping[str, Any]):
        if job.kind != DOCUMENTS or not request.get("combined_pdf"):
            return []
        if store is None:
            raise ValueError("a combined PDF needs the document store")
        return [(COMBINED_PDF_ACTION, combine_pdfs(conn, store, job))]

    return closing


# -- documents ---------------------------------------------------------------------------------


def documents_work(
    engine: Engine, store: Files, *, builder: Builder | None = None, run_id: str | None = None
) -> Work:
    """The documents of a chunk's invoices (written once: existing ones count as done). A job
    that follows an invoicing job (`after_job`: nobody named its invoices) skips history; a job
    that names its invoices writes theirs, history too."""

    def work(job: BatchJob, org: Organization, request: Mapping[str, Any], invoice_ids: list[int]):
        outcomes: dict[int, ItemOutcome] = {}
        todo = invoice_ids
        if waiting_for(request) is not None:
            history = history_among(engine, org.id, invoice_ids)
            outcomes = {invoice_id: HISTORY for invoice_id in history}
            todo = [invoice_id for invoice_id in invoice_ids if invoice_id not in history]
        if todo:  # never an empty list: no ids would mean every invoice waiting
            outcomes.update(
                ensure_documents(engine, store, org, todo, builder=builder, run_id=run_id)
            )
        return outcomes

    return work


# an item a job that follows an invoicing job leaves alone; a communications job does not send it
HISTORY = ItemOutcome(
    "skipped",
    "history",
    "history (brought in by a migration): written or sent only for a job that names it",
)


def history_among(engine: Engine, organization_id: int, invoice_ids: list[int]) -> set[int]:
    """The invoices among `invoice_ids` that are history (sales_ledger.not_history); one read."""
    with tenant_transaction(engine, organization_id) as conn:
        rows = sales_ledger.read_invoices(conn, organization_id, invoice_ids, "id", "history")
    return {row.id for row in rows if row.history}


def ensure_documents(
    engine: Engine,
    store: Files,
    org: Organization,
    invoice_ids: list[int],
    *,
    builder: Builder | None = None,
    run_id: str | None = None,
) -> dict[int, ItemOutcome]:
    """Every invoice's documents written (or there already): succeeded, or failed with its rule ids."""
    summary = generate_documents(
        engine,
        store,
        org,
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


def combine_pdfs(conn: Connection, store: Files, job: BatchJob) -> dict[str, Any]:
    """The job's generated invoice PDFs in request order as one print file; what it holds and lacks.

    Called by the runner that finishes the job, under the job's lock (`conn` holds it): no other
    runner writes or removes this file meanwhile.
    """
    i, d, s = batch_job_items.c, sales_invoice_documents.c, sales_invoices.c
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

    from invoice_pipelines.documents.domain.render import font_dir

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


# -- the kind, as the queue knows it -------------------------------------------------------------


def _request() -> type:
    """The launchpad's request (Dagster config), loaded with the queue's Dagster job only."""
    from invoice_pipelines.documents.domain.batch_request import DocumentsJobRequest

    return DocumentsJobRequest


def _enqueue(
    engine: Engine, organization: Organization, request: DocumentsJobRequest, who, runner
) -> int:
    return enqueue_invoice_job(
        engine,
        organization,
        DOCUMENTS_KIND,
        request.invoice_ids,
        combined_pdf=request.combined_pdf,
        created_by=who,
        runner=runner,
    )


def _options(*, combined_pdf: bool = False, channel: str | None = None, resend: bool = False):
    """What a documents request over invoices may ask for: a combined PDF."""
    if channel is not None or resend:
        raise BatchRequestError("channel and resend apply to communications jobs")
    return {"combined_pdf": True} if combined_pdf else {}


def _metadata(engine: Engine, job: BatchJob) -> dict:
    from dagster import MetadataValue  # a run's metadata: commands never ask for it

    combined = combined_pdf_of(engine, job)
    if not combined:
        return {}
    return {
        "combined_pdf": MetadataValue.path(combined["path"]),
        "combined_pdf_bytes": MetadataValue.int(combined["size_bytes"]),
        "combined_pdf_pages": MetadataValue.int(combined["pages"]),
        "combined_pdf_missing": MetadataValue.json(combined["missing"]),
    }


def _checks(engine: Engine, job: BatchJob) -> list:
    """`documents_valid` on the job's record of sales_invoice_documents, as the asset's own run
    evaluates it: the job's invoices that got no document (their first ten, with the finding)."""
    from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

    failed = job_item_outcomes(engine, job, limit=10) if job.failed_count else []
    metadata: dict = {"failed": MetadataValue.int(job.failed_count)}
    if failed:
        metadata["failed_documents"] = MetadataValue.md(
            markdown_table(
                ("invoice", "finding"),
                ((f["sales_invoice_id"], f["error_message"] or f["error_code"]) for f in failed),
                align="r",
            )
        )
    return [
        AssetCheckResult(
            check_name=DOCUMENTS_VALID,
            passed=not job.failed_count,
            severity=AssetCheckSeverity.WARN,
            metadata=metadata,
            description=f"Every document of batch job {job.id} proved valid."
            if not job.failed_count
            else f"{job.failed_count} invoice(s) of batch job {job.id} have no document: "
            f"invoice-pipelines batch-status --id {job.id} lists them.",
        )
    ]


def _report(engine: Engine, job: BatchJob) -> list[str]:
    combined = combined_pdf_of(engine, job)
    if not combined:
        return []
    return [
        f"  combined PDF: {combined['path']} ({combined['pages']} pages, "
        f"{combined['size_bytes']:,} bytes, {combined['invoices']} invoices"
        + (f", {combined['missing_count']} not in it" if combined["missing_count"] else "")
        + ")"
    ]


DOCUMENTS_KIND = JobKind(
    name=DOCUMENTS,
    runs=Chunks(
        lambda engine, resources, run_id: documents_work(
            engine,
            resources.document_store,
            builder=getattr(resources, "document_renderer", None),
            run_id=run_id,
        ),
        closing=lambda resources: combined_pdf_closing(resources.document_store),
    ),
    requests=Requests(config=_request, enqueue=_enqueue, options=_options),
    reading=Reading(
        unit="invoices",
        done="written",
        stuck_left="Documents written stay; the invoices not reached got none and stay eligible",
        report=_report,
        asset=lambda engine, job: "sales_invoice_documents",
        metadata=_metadata,
        checks=_checks,
    ),
    resource_keys=frozenset({"document_store", "document_renderer"}),
)
