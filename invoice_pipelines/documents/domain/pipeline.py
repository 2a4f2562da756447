"""Generating the documents of one organization's sales invoices: pick, build, store, record.

`generate_documents` is what the documents asset, the CLI and the benchmark call:

1. the invoices (given ids, or every invoice without a generated PDF that is not history: a
   migration's invoices get documents only when named) are read set-based into
   `DocumentSource`s; invoices that have their documents already are left alone
   (a document exists once: a correction is a credit note, not a changed PDF);
2. each gets its document format (`formats.py`: Factur-X, or a plain PDF invoice where an
   EN 16931 e-invoice does not apply) and a builder writes and proves each document (in worker
   processes inside Dagster);
3. holding the organization's documents lock, the good ones are written to the document store
   (`<org>/<yyyy-mm>/<number>.pdf`, `..._xrechnung.xml`, `..._peppol.xml` for a customer on
   Peppol) and recorded in
   `sales_invoice_documents` (generated, path, size, sha256, format and why); a document that did not prove is
   recorded as failed with its findings and rule ids, and is tried again on the next run.
   In the same transaction an invoice's first generated document records the early-payment
   discount steps it states on the invoice (`sales_invoices.skonto_steps`, [] for none): its
   terms from then on, whatever the customer's or organization's settings become.
One bad invoice never stops the others.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import bindparam, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.skonto import stored_steps
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import organizations, sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.documents.domain.build import BuiltDocument, build_document
from invoice_pipelines.documents.domain.formats import choose_formats
from invoice_pipelines.documents.domain.sources import DocumentSource, load_sources
from invoice_pipelines.queue.domain.items import Followed, followed_invoicing_jobs
from invoice_pipelines.resources.files.files import Files

# invoices per build and record step: small enough that recording a step (its files fsynced, its
# rows) runs beside the building of the next instead of after the last
DEFAULT_BATCH = 50
# the first and the last step of a run of several are this small: the workers wait for the first
# step's sources to be read, and the run for the last step's files and rows to be written
EDGE_BATCH = 8


def steps_of(todo: list[int], batch_size: int) -> list[list[int]]:
    """The invoices of each build and record step, in order: `batch_size` each, and where there
    are several steps the first and the last EDGE_BATCH (when that leaves one in between)."""
    edge = min(EDGE_BATCH, batch_size)
    if len(todo) <= batch_size or len(todo) <= 2 * edge:
        return [todo[first : first + batch_size] for first in range(0, len(todo), batch_size)]
    middle = todo[edge:-edge]
    return [
        todo[:edge],
        *(middle[first : first + batch_size] for first in range(0, len(middle), batch_size)),
        todo[-edge:],
    ]


class Builder(Protocol):
    def build_many(self, sources: Sequence[DocumentSource]) -> list[BuiltDocument]: ...


class InProcessBuilder:
    """Builds in this process, one after the other (tests, the CLI)."""

    def build_many(self, sources: Sequence[DocumentSource]) -> list[BuiltDocument]:
        return [build_document(source) for source in sources]


@dataclass
class DocumentsSummary:
    organization: str
    requested: int = 0
    generated: int = 0
    xrechnung: int = 0
    # Peppol BIS documents written (customers on Peppol), and those that did not prove
    peppol: int = 0
    peppol_failed: dict[int, list[dict]] = field(default_factory=dict)  # invoice id -> findings
    plain_pdf: int = 0  # generated as a plain PDF invoice (no e-invoice inside)
    formats: dict[str, int] = field(default_factory=dict)  # "pdf: <why>" -> invoices generated
    # XRechnungs by what they were checked against beyond EN 16931 (build.KOSIT_CHECKED or
    # build.KOSIT_NOT_CONFIGURED): a deployment without the KoSIT rules sees it on every run
    xrechnung_rules: dict[str, int] = field(default_factory=dict)
    already: int = 0
    failed: dict[int, list[dict]] = field(default_factory=dict)  # invoice id -> findings
    numbers: dict[int, str] = field(default_factory=dict)
    paths: list[str] = field(default_factory=list)
    bytes_written: int = 0
    seconds: float = 0.0
    build_seconds: float = 0.0

    def as_line(self) -> dict:
        """What `invoice-pipelines documents` prints as its last line (JSON)."""
        return {
            "generated": self.generated,
            "xrechnung": self.xrechnung,
            "already": self.already,
            "failed": {str(k): v for k, v in self.failed.items()},
            "paths": self.paths,
        }


def document_key(slug: str, source: DocumentSource, name: str) -> str:
    day = source.invoice.issue_date
    return f"{slug}/{day.year:04d}-{day.month:02d}/{name}"


def waiting_for_documents(organization_id: int | None = None) -> list[ColumnElement]:
    """The conditions of a sales invoice that waits for its documents (of the organization's, or
    of every organization's): no generated Factur-X PDF, and not history (brought in by a
    migration, sales_ledger.not_history): history gets its documents only when a person names
    it. What `documents_sensor` counts and an organization's run without ids writes.

    An anti-join (NOT EXISTS), never `NOT IN (subquery)`: once the generated documents no longer
    fit in PostgreSQL's hash memory (about 150,000 of them at the default work_mem), NOT IN is
    planned as a scan of every document for every invoice, and the sensor's query over 480,000
    invoices ran for more than a minute (Dagster's sensor timeout) instead of 0.19 s."""
    d = sales_invoice_documents.c
    done = exists().where(
        d.sales_invoice_id == sales_invoices.c.id, d.kind == "facturx", d.status == "generated"
    )
    if organization_id is not None:
        done = done.where(d.organization_id == organization_id)
    return [~done, sales_ledger.not_history()]


def not_left_to_a_batch(invoicing_job_ids: Iterable[int]) -> list[ColumnElement]:
    """The condition of a sales invoice that no batch's own documents or communications job will
    take next: not made by one of `invoicing_job_ids` (`queue.items.followed_invoicing_jobs`).
    documents_sensor and an organization's run without ids leave those to the batch, so the
    organization's invoices are never queued twice (issue 73)."""
    ids = sorted(set(invoicing_job_ids))
    if not ids:
        return []
    made_by = sales_invoices.c.batch_job_id
    return [or_(made_by.is_(None), made_by.not_in(ids))]


def organizations_waiting_for_documents(
    system: Engine,
) -> tuple[list[tuple[str, int, int]], list[Followed]]:
    """Across organizations (the system engine `system`): (slug, newest invoice id, how many) of
    each organization with sales invoices waiting for documents (`waiting_for_documents`), those
    left to a batch's own queued job (`not_left_to_a_batch`) not counted, and those followed jobs
    (`documents_sensor` says what it left to them). One statement over the invoices."""
    with system_transaction(system) as conn:
        # a batch's invoices whose own documents (or communications) job is queued are that
        # job's: asked for here too, they queued twice for the organization (issue 73)
        followed = followed_invoicing_jobs(conn)
        waiting = conn.execute(
            select(organizations.c.slug, func.max(sales_invoices.c.id), func.count())
            .join(organizations, organizations.c.id == sales_invoices.c.organization_id)
            .where(
                *waiting_for_documents(),
                *not_left_to_a_batch(f.invoicing_job_id for f in followed),
            )
            .group_by(organizations.c.slug)
        ).all()
    return [(slug, newest, count) for slug, newest, count in waiting], followed


def pending_invoices(conn, organization_id: int, limit: int | None = None) -> list[int]:
    """Sales invoices of the organization waiting for their documents (`waiting_for_documents`),
    oldest first; those a batch's own job will take next are left to it (`not_left_to_a_batch`)."""
    followed = followed_invoicing_jobs(conn, organization_id)
    query = (
        select(sales_invoices.c.id)
        .where(
            sales_invoices.c.organization_id == organization_id,
            *waiting_for_documents(organization_id),
            *not_left_to_a_batch(f.invoicing_job_id for f in followed),
        )
        .order_by(sales_invoices.c.id)
    )
    if limit:
        query = query.limit(limit)
    return list(conn.execute(query).scalars())


def generate_documents(
    engine: Engine,
    store: Files,
    org: Organization,
    invoice_ids: Sequence[int] | None = None,
    *,
    builder: Builder | None = None,
    run_id: str | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> DocumentsSummary:
    started = time.perf_counter()
    summary = DocumentsSummary(org.slug)
    builder = builder or InProcessBuilder()
    with tenant_transaction(engine, org.id) as conn:
        ids = list(invoice_ids) if invoice_ids else pending_invoices(conn, org.id)
        d = sales_invoice_documents.c
        generated = set(
            conn.execute(
                select(d.sales_invoice_id).where(
                    d.organization_id == org.id,
                    d.kind == "facturx",
                    d.status == "generated",
                    d.sales_invoice_id.in_(ids),
                )
            ).scalars()
        )
    summary.requested = len(ids)
    todo = [i for i in dict.fromkeys(ids) if i not in generated]
    summary.already = len(ids) - len(todo)
    chunks = steps_of(todo, batch_size)

    def load(chunk: list[int]) -> dict:
        with tenant_transaction(engine, org.id) as conn:
            return choose_formats(conn, org, load_sources(conn, org, chunk))

    # The builder's workers never wait for this process: the next chunk's sources are read and a
    # chunk's files and rows are written in threads of their own while the workers build (one
    # chunk at a time each, in order).
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents-load") as loader,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="documents-record") as recorder,
        # fsync waits for the disk, not for the interpreter: a chunk's files are written side by side
        ThreadPoolExecutor(max_workers=8, thread_name_prefix="documents-write") as writer,
    ):
        recording: Future | None = None
        loading = loader.submit(load, chunks[0]) if chunks else None
        for index, chunk in enumerate(chunks):
            sources = loading.result()
            if index + 1 < len(chunks):
                loading = loader.submit(load, chunks[index + 1])
            missing = {
                i: [
                    {
                        "rule": "IP-DOC-UNKNOWN",
                        "message": "no such sales invoice in this organization",
                    }
                ]
                for i in chunk
                if i not in sources
            }
            t0 = time.perf_counter()
            built = builder.build_many(list(sources.values()))
            summary.build_seconds += time.perf_counter() - t0
            if recording is not None:
                recording.result()  # the previous chunk is recorded (or its error raised here)
            summary.failed.update(missing)
            recording = recorder.submit(
                _store_and_record, engine, store, org, sources, built, summary, run_id, writer
            )
        if recording is not None:
            recording.result()
    summary.seconds = time.perf_counter() - started
    return summary


def _store_and_record(engine, store, org, sources, built, summary, run_id, writer) -> None:
    rows: list[dict] = []
    with tenant_transaction(engine, org.id, write=True) as conn:
        xact_lock(conn, Lock.DOCUMENTS, org.id)
        d = sales_invoice_documents.c
        ids = [b.sales_invoice_id for b in built]
        already = set(
            conn.execute(
                select(d.sales_invoice_id).where(
                    d.sales_invoice_id.in_(ids), d.kind == "facturx", d.status == "generated"
                )
            ).scalars()
        )
        writes: list[tuple[str, bytes]] = []
        terms: list[dict] = []
        for document in built:
            invoice_id = document.sales_invoice_id
            source = sources[invoice_id]
            summary.numbers[invoice_id] = source.invoice.number
            if invoice_id in already:  # another run got there first
                summary.already += 1
                continue
            if not document.ok:
                summary.failed[invoice_id] = document.errors
                rows.append(
                    _row(org, invoice_id, "facturx", None, None, run_id, document.errors, source)
                )
                continue
            files = [("facturx", source.filename, document.pdf)]
            if document.xrechnung is not None:
                files.append(("xrechnung", document.xrechnung_name, document.xrechnung))
            if document.peppol is not None:
                files.append(("peppol", document.peppol_name, document.peppol))
                summary.peppol += 1
            elif document.peppol_errors:
                # the PDF stands; delivery reads these findings as why it is not sent over Peppol
                summary.peppol_failed[invoice_id] = document.peppol_errors
                errors = document.peppol_errors
                rows.append(_row(org, invoice_id, "peppol", None, None, run_id, errors, source))
            for kind, name, data in files:
                key = document_key(org.slug, source, name)
                writes.append((key, data))
                rows.append(_row(org, invoice_id, kind, key, data, run_id, [], source))
                summary.bytes_written += len(data)
            terms.append(
                {"invoice": invoice_id, "steps": stored_steps(source.invoice.discount_terms)}
            )
            summary.generated += 1
            summary.xrechnung += document.xrechnung is not None
            if document.xrechnung is not None and document.xrechnung_rules:
                rules = document.xrechnung_rules
                summary.xrechnung_rules[rules] = summary.xrechnung_rules.get(rules, 0) + 1
            chosen = getattr(source, "document_format", "facturx")
            summary.plain_pdf += chosen == "pdf"
            why = f"{chosen}: {getattr(source, 'format_reason', '')}"
            summary.formats[why] = summary.formats.get(why, 0) + 1
        # each file is on disk (fsynced) before the row that names it commits; written side by
        # side, their flushes overlap instead of queueing one behind the other
        locations = list(writer.map(lambda key_data: _write(store, *key_data), writes))
        summary.paths += locations[: max(0, 5 - len(summary.paths))]
        if rows:
            # earlier failed attempts of these invoices make way for this run's outcome
            conn.execute(
                delete(sales_invoice_documents).where(
                    d.sales_invoice_id.in_({r["sales_invoice_id"] for r in rows}),
                    d.status == "failed",
                )
            )
            conn.execute(insert(sales_invoice_documents), rows)
        if terms:
            _record_terms(conn, terms)


def _record_terms(conn, terms: list[dict]) -> None:
    """The discount steps each written document states, on its invoice; only where none are
    recorded yet (a document written again states the recorded ones, sources.py)."""
    s = sales_invoices.c
    conn.execute(
        update(sales_invoices)
        .where(s.id == bindparam("invoice"), s.skonto_steps.is_(None))
        .values(skonto_steps=bindparam("steps")),
        terms,
    )


def _write(store: Files, key: str, data: bytes) -> str:
    if store.exists(key):
        # no generated row refers to it (checked under the lock): a leftover of a run that did
        # not get to record it
        store.remove(key)
    return store.write(key, [data])


def _row(org, invoice_id, kind, key, data, run_id, errors, source) -> dict:
    chosen = getattr(source, "document_format", "facturx")
    return {
        "format": chosen if chosen in ("facturx", "pdf") else None,
        "format_reason": getattr(source, "format_reason", None) or None,
        "organization_id": org.id,
        "sales_invoice_id": invoice_id,
        "kind": kind,
        "status": "generated" if data is not None else "failed",
        "storage_key": key,
        "size_bytes": None if data is None else len(data),
        "sha256": None if data is None else hashlib.sha256(data).hexdigest(),
        "errors": errors,
        "dagster_run_id": run_id,
    }
