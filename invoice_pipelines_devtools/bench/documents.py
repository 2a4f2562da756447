"""Benchmark: N sales invoices of a fresh organization as validated Factur-X PDFs, then e-mailed.

Seeds N invoices (20 customers, three lines and one or two VAT rates each; written in bulk, not
measured), writes their documents exactly as the documents asset does (worker processes, one per
core: render the PDF/A-3, embed the CII, read it back through XSD, the official schematron and
our rules), then sends every invoice to a loopback SMTP server through the production mailer and
the at-most-once delivery. One PDF is kept; its path is in the JSON.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines_devtools.bench.cpu import cpu_spent, processes_cpu

SELLER = {
    "street": "Industriestraße 5",
    "postal_code": "70565",
    "city": "Stuttgart",
    "iban": "DE02120300000000202051",
    "bic": "BYLADEM1001",
    "email": "rechnung@bench.example",
    "phone": "+49 711 123456",
    "contact_name": "Buchhaltung",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=positive_int, default=200, help="sales invoices")
    parser.add_argument(
        "--workers", type=positive_int, default=os.cpu_count() or 2, help="worker processes"
    )
    parser.add_argument(
        "--keep", default="", help="folder for the sample PDF (default: a temp dir)"
    )
    parser.add_argument(
        "--through-queue",
        action="store_true",
        help="as batch jobs of the queue: a documents job with a combined PDF, then a "
        "communications job (chunks, progress, item outcomes, audit trail)",
    )


def _seed(engine, org_id: int, n: int) -> None:
    from sqlalchemy import insert, select

    from invoice_pipelines.db.tables import (
        customers,
        sales_invoice_lines,
        sales_invoice_taxes,
        sales_invoices,
    )
    from invoice_pipelines.db.tenancy import tenant_transaction

    d = Decimal
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(
            insert(customers),
            [
                {
                    "organization_id": org_id,
                    "customer_number": f"K-{i:05d}",
                    "name": f"Kunde {i:02d} GmbH & Co. KG",
                    "email": f"einkauf{i}@kunde.example",
                    "street": f"Hauptstraße {i + 1}",
                    "postal_code": "10115",
                    "city": "Berlin",
                    "country": "DE",
                    "language": "de" if i % 4 else "en",
                }
                for i in range(20)
            ],
        )
        customer_ids = list(
            conn.execute(
                select(customers.c.id).where(customers.c.organization_id == org_id)
            ).scalars()
        )
        invoices, plans = [], []
        for i in range(n):
            day = date(2026, 11, 1) + timedelta(days=i % 28)
            lines = [
                (f"Artikel {i}-{k} Präzisionsteil", d(k + 1), d("12.50") * (k + 1), d("19"))
                for k in range(2)
            ] + ([(f"Fachbuch {i}", d(1), d("39.95"), d("7"))] if i % 2 else [])
            by_rate: dict[Decimal, Decimal] = {}
            for _, qty, price, rate in lines:
                by_rate[rate] = by_rate.get(rate, d(0)) + (qty * price).quantize(d("0.01"))
            taxes = {rate: (net * rate / 100).quantize(d("0.01")) for rate, net in by_rate.items()}
            net, tax = sum(by_rate.values()), sum(taxes.values())
            invoices.append(
                {
                    "organization_id": org_id,
                    "invoice_number": f"RE-2026-{i + 1:06d}",
                    "sequence_number": i + 1,
                    "customer_id": customer_ids[i % len(customer_ids)],
                    "issue_date": day,
                    "due_date": day + timedelta(days=14),
                    "currency": "EUR",
                    "net_total": net,
                    "tax_total": tax,
                    "gross_total": net + tax,
                    "amount_due": net + tax,
                }
            )
            plans.append((lines, by_rate, taxes))
        conn.execute(insert(sales_invoices), invoices)
        ids = list(
            conn.execute(
                select(sales_invoices.c.id)
                .where(sales_invoices.c.organization_id == org_id)
                .order_by(sales_invoices.c.sequence_number)
            ).scalars()
        )
        line_rows, tax_rows = [], []
        for invoice_id, (lines, by_rate, taxes) in zip(ids, plans, strict=True):
            for no, (text, qty, price, rate) in enumerate(lines, start=1):
                line_rows.append(
                    {
                        "organization_id": org_id,
                        "sales_invoice_id": invoice_id,
                        "line_no": no,
                        "description": text,
                        "quantity": qty,
                        "unit_price": price,
                        "net_amount": (qty * price).quantize(d("0.01")),
                        "vat_rate": rate,
                        "vat_category": "S",
                    }
                )
            for rate, basis in by_rate.items():
                tax_rows.append(
                    {
                        "organization_id": org_id,
                        "sales_invoice_id": invoice_id,
                        "vat_category": "S",
                        "vat_rate": rate,
                        "basis": basis,
                        "amount": taxes[rate],
                    }
                )
        conn.execute(insert(sales_invoice_lines), line_rows)
        conn.execute(insert(sales_invoice_taxes), tax_rows)


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import find_organization, system_transaction
    from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
    from invoice_pipelines.documents.domain.pipeline import generate_documents
    from invoice_pipelines.documents.domain.renderer import DocumentRenderer
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.bench.limit import limit_fields, per_second
    from invoice_pipelines_devtools.standins.smtp import SmtpSinkProcess

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    system = make_system_engine()
    slug = f"bench-documents-{uuid.uuid4().hex[:8]}"
    with system_transaction(system, write=True) as conn:
        org_id = conn.execute(
            organizations.insert()
            .values(
                slug=slug,
                name="Benchmark Werkzeugbau GmbH",
                vat_id="DE123456789",
                settings={"seller": SELLER},
            )
            .returning(organizations.c.id)
        ).scalar_one()
    _seed(engine, org_id, args.n)
    root = Path(tempfile.mkdtemp(prefix="ip-bench-documents-"))
    store = LocalFiles(str(root))
    renderer = DocumentRenderer(workers=args.workers)
    t0 = time.perf_counter()
    pool = renderer._start()
    problems = pool.wait_ready()
    warm_up = time.perf_counter() - t0
    queue: dict = {}
    try:
        workers_before = processes_cpu(pool.process_ids())
        t0 = time.perf_counter()
        if args.through_queue:
            documents, queue = _documents_job(engine, system, store, slug, org_id, renderer)
        else:
            documents = generate_documents(
                engine, store, find_organization(system, slug), builder=renderer
            )
        document_seconds = time.perf_counter() - t0
        worker_cpu = cpu_spent(workers_before, processes_cpu(pool.process_ids()))
    finally:
        renderer.close()
    with SmtpSinkProcess() as sink:  # the server in a process of its own, as a real one is
        mailer = Smtp(port=sink.port, sender="rechnung@bench.example")
        t0 = time.perf_counter()
        _warm_up_sending(engine, mailer)
        email_warm_up = time.perf_counter() - t0
        t0 = time.perf_counter()
        if args.through_queue:
            sent, sending = _communications_job(engine, system, store, slug, org_id, mailer)
            queue.update(sending)
        else:
            sent = send_invoice_emails(
                engine, store, mailer, find_organization(system, slug), max_per_second=100_000
            )
        email_seconds = time.perf_counter() - t0
    arrived = sink.counts()
    limit = render_limit(engine, system, org_id, args.workers)
    keep = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="ip-bench-sample-"))
    keep.mkdir(parents=True, exist_ok=True)
    sample = None
    if documents.paths:
        sample = keep / Path(documents.paths[0]).name
        shutil.copyfile(documents.paths[0], sample)
    shutil.rmtree(root, ignore_errors=True)
    result = {
        "scenario": "documents",
        "database": engine.dialect.name,
        "organization": slug,
        "workers": args.workers,
        "worker_warm_up_seconds": round(warm_up, 3),
        "worker_problems": problems,
        "documents": documents.generated,
        "failed": len(documents.failed),
        "seconds": round(document_seconds, 3),
        "documents_per_s": round(documents.generated / document_seconds, 1)
        if document_seconds
        else None,
        "sample_pdf": str(sample) if sample else None,
        "emails": sent.sent,
        "email_seconds": round(email_seconds, 3),
        "email_warm_up_seconds": round(email_warm_up, 3),
        "emails_per_s": round(sent.sent / email_seconds, 1) if email_seconds else None,
        "messages_received": sum(arrived.values()),
        "duplicates_sent": sum(count - 1 for count in arrived.values() if count > 1),
        **queue,
    }
    per_document = _ms_each(worker_cpu, documents.generated)
    per_page = _ms_each(limit["worker_cpu"], limit["rendered"])
    result.update(
        worker_cpu_ms_per_document=per_document,
        limit_worker_cpu_ms_per_page=per_page,
        cpu_fraction_of_limit=round(per_page / per_document, 3)
        if per_page and per_document
        else None,
    )
    return limit_fields(
        result,
        "documents_per_s",
        per_second(limit["rendered"], limit["seconds"]),
        LIMIT_METHOD.format(workers=args.workers),
        limit_seconds=round(limit["seconds"], 3),
        limit_rendered=limit["rendered"],
        limit_failed=limit["failed"],
        database_name=limit["database"],
        limit_database=limit["database"],
    )


def _ms_each(seconds: float | None, count: int) -> float | None:
    return round(seconds * 1000 / count, 2) if seconds is not None and count else None


def _warm_up_sending(engine, mailer, connections: int = 2) -> None:
    """Before the e-mails' clock, as a long-running sender and server have it: a session with the
    SMTP server per sending connection (the server's first connections), and database
    connections in the pool for the run's lock and reads and each sending connection. Nothing is
    sent and no row written; the sending (at most once, a commit per message) is timed whole."""
    from contextlib import ExitStack

    from sqlalchemy import text

    with ExitStack() as held:
        for _ in range(connections):
            held.enter_context(mailer.session()).ehlo()
        for _ in range(connections + 2):
            held.enter_context(engine.connect()).execute(text("SELECT 1"))


LIMIT_METHOD = (
    "the same invoices' pages rendered alone (layout, fonts, QR code: render_pdf, or "
    "render_plain_pdf for a plain PDF invoice) from the same sources read from the same database, "
    "in {workers} warm worker processes, without writing the CII, embedding it or reading the "
    "document back; no files stored, no rows written (e-mails have no limit of their own)"
)


def render_in_worker(data: bytes, filename: str, **_options) -> int:
    """Worker entry (SafeParser target) of the limit: render one pickled source's page, nothing
    else; returns the PDF's size."""
    import pickle

    from invoice_pipelines.documents.domain.payment_qr import payment_qr
    from invoice_pipelines.documents.domain.render import render_pdf, render_plain_pdf

    source = pickle.loads(data)  # noqa: S301 - written by this bench's own parent process
    invoice, extras = source.invoice, source.extras
    common = {
        "language": source.language,
        "payment_terms": extras.get("payment_terms"),
        "service_date": extras.get("delivery_date"),
        "qr": payment_qr(source),
    }
    if getattr(source, "document_format", "facturx") == "facturx":
        return len(render_pdf(invoice, **common))
    seller = invoice.seller_address
    return len(
        render_plain_pdf(
            invoice,
            seller_country=seller.country_code if seller else None,
            seller_tax_number=extras.get("seller_tax_number"),
            **common,
        )
    )


def render_limit(engine, system, org_id: int, workers: int) -> dict:
    """Render every invoice of the organization in warm render-only workers: seconds, pages
    rendered, failures and the database the sources came from."""
    import pickle

    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
    from invoice_pipelines.documents.domain.formats import choose_formats
    from invoice_pipelines.documents.domain.pipeline import DEFAULT_BATCH
    from invoice_pipelines.documents.domain.sources import load_sources
    from invoice_pipelines.intake.domain.workers import SafeParser
    from invoice_pipelines_devtools.bench.limit import current_database

    org = find_organization(system, org_id)
    ids = _invoice_ids(engine, org_id)
    items: list[tuple[bytes, str]] = []
    with tenant_transaction(engine, org_id) as conn:
        database = current_database(conn)
        for first in range(0, len(ids), DEFAULT_BATCH):
            chunk = ids[first : first + DEFAULT_BATCH]
            sources = choose_formats(conn, org, load_sources(conn, org, chunk))
            items += [(pickle.dumps(s), s.filename) for s in sources.values()]
    with SafeParser(
        workers=workers,
        warm=False,
        target="invoice_pipelines_devtools.bench.documents:render_in_worker",
    ) as pool:
        pool.wait_ready()
        pool.parse_many(items[:workers])  # one page per worker first: fonts cut, modules loaded
        before = processes_cpu(pool.process_ids())
        started = time.perf_counter()
        sizes = pool.parse_many(items)
        seconds = time.perf_counter() - started
        worker_cpu = cpu_spent(before, processes_cpu(pool.process_ids()))
    rendered = sum(1 for size in sizes if isinstance(size, int))
    return {
        "seconds": seconds,
        "rendered": rendered,
        "failed": len(sizes) - rendered,
        "database": database,
        "worker_cpu": worker_cpu,
    }


def _invoice_ids(engine, org_id: int) -> list[int]:
    from sqlalchemy import select

    from invoice_pipelines.db.tables import sales_invoices
    from invoice_pipelines.db.tenancy import tenant_transaction

    with tenant_transaction(engine, org_id) as conn:
        return list(
            conn.execute(
                select(sales_invoices.c.id)
                .where(sales_invoices.c.organization_id == org_id)
                .order_by(sales_invoices.c.id)
            ).scalars()
        )


def _documents_job(engine, system, store, slug: str, org_id: int, renderer):
    """The documents as one documents job with a combined PDF; a summary like generate_documents'."""
    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.documents.domain.batch import (
        DOCUMENTS_KIND,
        combined_pdf_of,
        documents_work,
        run_invoice_job,
    )
    from invoice_pipelines.documents.domain.pipeline import DocumentsSummary
    from invoice_pipelines.queue.domain.items import enqueue_invoice_job

    job_id = enqueue_invoice_job(
        engine,
        find_organization(system, slug),
        DOCUMENTS_KIND,
        _invoice_ids(engine, org_id),
        combined_pdf=True,
    )
    job = run_invoice_job(
        engine, job_id, documents_work(engine, store, builder=renderer), system=system, store=store
    )
    combined = combined_pdf_of(engine, job) or {}
    summary = DocumentsSummary(slug, requested=job.total_count, generated=job.successful_count)
    summary.failed = {e["sales_invoice_id"]: [e] for e in job.errors}
    summary.paths = [_first_pdf(store)] if job.successful_count else []
    return summary, {
        "documents_job": job.id,
        "documents_job_status": job.status,
        "combined_pdf_pages": combined.get("pages"),
        "combined_pdf_bytes": combined.get("size_bytes"),
        "combined_pdf_seconds": combined.get("seconds"),
    }


def _first_pdf(store) -> str:
    return str(next(p for p in Path(store.root).rglob("*.pdf") if "batches" not in p.parts))


def _communications_job(engine, system, store, slug: str, org_id: int, mailer):
    from dataclasses import replace
    from types import SimpleNamespace

    from invoice_pipelines.db.tenancy import find_organization
    from invoice_pipelines.delivery.domain.batch import COMMUNICATIONS_KIND, communications_work
    from invoice_pipelines.delivery.domain.pipeline import DeliverySummary
    from invoice_pipelines.documents.domain.batch import DOCUMENTS_KIND, run_invoice_job
    from invoice_pipelines.queue.domain.items import enqueue_invoice_job
    from invoice_pipelines.queue.domain.kinds import chunk_work
    from invoice_pipelines.resources.messaging.channels import MailTransport

    job_id = enqueue_invoice_job(
        engine, find_organization(system, slug), COMMUNICATIONS_KIND, _invoice_ids(engine, org_id)
    )
    # the queue's communications chunk (documents first), sending without a pace limit
    kind = replace(
        COMMUNICATIONS_KIND,
        runs=replace(
            COMMUNICATIONS_KIND.runs,
            work=lambda engine, resources, run_id: communications_work(
                engine, lambda name: MailTransport(mailer), store=store, max_per_second=100_000
            ),
        ),
    )
    kinds = {DOCUMENTS_KIND.name: DOCUMENTS_KIND, kind.name: kind}
    work = chunk_work(engine, kind, kinds, SimpleNamespace(document_store=store), None)
    job = run_invoice_job(engine, job_id, work, system=system)
    return DeliverySummary(slug, requested=job.total_count, sent=job.successful_count), {
        "communications_job": job.id,
        "communications_job_status": job.status,
        "communications_failed": job.failed_count,
    }
