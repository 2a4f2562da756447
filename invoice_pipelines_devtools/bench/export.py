"""Benchmark: one organization-month of N validated supplier invoices exported to CSV and DATEV.

Seeds a fresh organization with N VALIDATED incoming invoices in one month (about 40 suppliers,
one or two VAT rates and three lines per invoice, written in bulk: seeding is not measured), then
times `run_export` exactly as the export asset runs it: set-based reads, account assignment,
bookings, streamed files, export items, VALIDATED -> EXPORTED. A second export of the unchanged
month is timed too (it must write nothing). The files are kept; their paths are in the JSON.

Beside the wall time the JSON states the CPU the export used (`cpu_seconds`: this process and,
on a PostgreSQL server on this machine, its database's backends) and the limit's, and
`fraction_at_perfect_overlap`: the limit's seconds against the export's CPU spread perfectly over
this machine's cores, the highest fraction of the limit this work can reach here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import uuid
from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines_devtools.bench.cpu import Spent, backend_pids, measured

PERIOD = "2026-10"
LIMIT_METHOD = (
    "the same organization-month's rows the export reads (its invoices with their partner "
    "columns, their VAT rows, the booked lines) written to three CSV files by {how}, on the same "
    "database right after the export, in one transaction of the organization's"
)
SUPPLIERS = 40
BATCH = 10_000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--n", type=positive_int, default=20_000, help="validated invoices to export"
    )
    parser.add_argument(
        "--out", default="", help="export store folder (default INVOICE_PIPELINES_EXPORT_DIR)"
    )


def _seed(engine, org_id: int, n: int) -> None:
    from sqlalchemy import insert, select

    from invoice_pipelines.db.tables import (
        incoming_invoice_lines,
        incoming_invoice_taxes,
        incoming_invoices,
    )
    from invoice_pipelines.db.tenancy import tenant_transaction

    d = Decimal
    for start in range(0, n, BATCH):
        count = min(BATCH, n - start)
        docs, taxes, lines = [], [], []
        for i in range(start, start + count):
            supplier = i % SUPPLIERS
            net19 = d(100 + i % 900) + d(i % 100) / 100
            net7 = d(20 + i % 50) if i % 3 == 0 else d(0)
            tax19 = (net19 * d("0.19")).quantize(d("0.01"))
            tax7 = (net7 * d("0.07")).quantize(d("0.01"))
            number = f"LF-{supplier:03d}-{i:07d}"
            docs.append(
                {
                    "organization_id": org_id,
                    "status": "VALIDATED",
                    "processing_version": 2,
                    "format": "cii",
                    "content_hash": hashlib.sha256(f"{org_id}-{i}".encode()).hexdigest(),
                    "invoice_number": number,
                    "invoice_number_key": number.lower(),
                    "type_code": "381" if i % 50 == 0 else "380",
                    "seller_name": f"Lieferant {supplier:03d} GmbH & Co. KG",
                    "seller_vat_id": f"DE{100000000 + supplier}",
                    "issue_date": date(2026, 10, 1 + i % 31),
                    "due_date": date(2026, 11, 1 + i % 30),
                    "currency": "EUR",
                    "net_total": net19 + net7,
                    "tax_total": tax19 + tax7,
                    "gross_total": net19 + net7 + tax19 + tax7,
                    "amount_due": net19 + net7 + tax19 + tax7,
                }
            )
        if start:
            # each batch on a new database session: a session keeps the plan of a foreign key's
            # check from its first use, and this database has no statistics, so the plan made
            # while the table was nearly empty (a scan of it) served every later row: 20,000
            # invoices took 34 s instead of 11 (the VALIDATED set's check on incoming_invoices,
            # 1 ms a row by the end). The last batch's session stays in the pool, as before
            engine.dispose()
        with tenant_transaction(engine, org_id, write=True) as conn:
            conn.execute(insert(incoming_invoices), docs)
            ids = conn.execute(
                select(incoming_invoices.c.id, incoming_invoices.c.net_total)
                .where(incoming_invoices.c.organization_id == org_id)
                .order_by(incoming_invoices.c.id)
                .offset(start)
                .limit(count)
            ).all()
            for offset, (doc_id, _) in enumerate(ids):
                i = start + offset
                net19 = d(100 + i % 900) + d(i % 100) / 100
                net7 = d(20 + i % 50) if i % 3 == 0 else d(0)
                rates = [("19.00", net19)] + ([("7.00", net7)] if net7 else [])
                for rate, net in rates:
                    taxes.append(
                        {
                            "organization_id": org_id,
                            "incoming_invoice_id": doc_id,
                            "vat_category": "S",
                            "vat_rate": d(rate),
                            "basis": net,
                            "amount": (net * d(rate) / 100).quantize(d("0.01")),
                        }
                    )
                for no in range(1, 4):
                    lines.append(
                        {
                            "organization_id": org_id,
                            "incoming_invoice_id": doc_id,
                            "line_no": no,
                            "description": f"Artikel {no} für Auftrag {i}",
                            "quantity": d(no),
                            "unit_code": "C62",
                            "unit_price": d("10.00"),
                            "net_amount": d(no) * d("10.00"),
                            "vat_category": "S",
                            "vat_rate": d("19.00"),
                        }
                    )
            conn.execute(insert(incoming_invoice_taxes), taxes)
            conn.execute(insert(incoming_invoice_lines), lines)


def run(args: argparse.Namespace) -> dict:
    from sqlalchemy import func, select

    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import incoming_invoices, organizations
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines_devtools.bench.limit import limit_fields

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    slug = f"bench-export-{uuid.uuid4().hex[:8]}"
    with system_transaction(engine, write=True) as conn:
        org_id = conn.execute(
            organizations.insert()
            .values(
                slug=slug,
                name="Benchmark export",
                datev_berater_nr=29098,
                datev_mandant_nr=55003,
                datev_chart="SKR03",
            )
            .returning(organizations.c.id)
        ).scalar_one()
    t0 = time.perf_counter()
    _seed(engine, org_id, args.n)
    seed_seconds = time.perf_counter() - t0
    store = LocalFiles(args.out)

    with _monitor(engine) as backends:
        with measured(backends) as cpu:
            t0 = time.perf_counter()
            result = run_export(
                engine,
                store,
                find_organization(engine, slug),
                PERIOD,
                "incoming",
                requested_by="bench",
            )
            seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = run_export(
            engine, store, find_organization(engine, slug), PERIOD, "incoming", requested_by="bench"
        )
        unchanged_seconds = time.perf_counter() - t0
        with measured(backends) as limit_cpu:
            limit_seconds, limit_bytes, limit_database = copy_limit(
                engine, org_id, result.export_id
            )
    with tenant_transaction(engine, org_id) as conn:
        exported = conn.execute(
            select(func.count()).where(
                incoming_invoices.c.organization_id == org_id,
                incoming_invoices.c.status == "EXPORTED",
            )
        ).scalar_one()
    how = "COPY (SELECT ...) TO STDOUT" if engine.dialect.name == "postgresql" else "csv.writer"
    out = {
        "scenario": "export",
        "database": engine.dialect.name,
        "organization": slug,
        "period": PERIOD,
        "invoices": result.invoice_count,
        "bookings": result.booking_count,
        "skipped": result.skipped_count,
        "exported_status": exported,
        "seconds": round(seconds, 3),
        "invoices_per_s": round(result.invoice_count / seconds, 1) if seconds else None,
        "seconds_by_phase": result.seconds,
        "unchanged_rerun_seconds": round(unchanged_seconds, 3),
        "rerun_unchanged": again.unchanged,
        "seed_seconds": round(seed_seconds, 3),
        "datev_file": result.files.get("datev"),
        "csv_file": result.files.get("csv"),
        "csv_lines_file": result.files.get("csv_lines"),
        "datev_partners_file": result.files.get("datev_partners"),
        **cpu_fields(cpu, limit_cpu, limit_seconds),
    }
    return limit_fields(
        out,
        "invoices_per_s",
        result.invoice_count / limit_seconds if limit_seconds else None,
        LIMIT_METHOD.format(how=how),
        limit_seconds=round(limit_seconds, 3),
        limit_bytes=limit_bytes,
        database_name=limit_database,
        limit_database=limit_database,
    )


@contextmanager
def _monitor(engine):
    """A function listing the database's backends (PostgreSQL), on a connection of its own that
    it leaves out; None on SQLite, whose work is the bench's own process."""
    if engine.dialect.name != "postgresql":
        yield None
        return
    with engine.connect() as conn:
        yield lambda: backend_pids(conn)


def cpu_fields(cpu: Spent, limit_cpu: Spent, limit_seconds: float) -> dict:
    """The export's CPU and the limit's, and what the export's CPU allows at best: spread
    perfectly over this machine's cores (no waiting, nothing else running), the export would take
    its CPU / cores seconds, so `fraction_at_perfect_overlap` = the limit's seconds / that is the
    highest `fraction_of_limit` this work can reach here."""
    cores = os.cpu_count() or 1
    # from the figures as printed, so that a reader gets the same quotients from the JSON
    spent, limit_spent = cpu.as_dict(), limit_cpu.as_dict()
    total, limit_total = spent["total"], limit_spent["total"]
    limit_seconds = round(limit_seconds, 3)
    return {
        "cpu_seconds": spent,
        "limit_cpu_seconds": limit_spent,
        "cores": cores,
        "cpu_fraction_of_limit": (
            round(limit_total / total, 3) if total and limit_total is not None else None
        ),
        "fraction_at_perfect_overlap": (
            round(limit_seconds / (total / cores), 3) if total and limit_seconds else None
        ),
    }


def copy_limit(engine, org_id: int, export_id: int | None) -> tuple[float, int, str]:
    """(seconds, bytes written, database) for the month's invoices, VAT rows and booked lines
    copied to files the cheapest way the database has."""
    import shutil
    import tempfile
    from pathlib import Path

    from sqlalchemy import select

    from invoice_pipelines.core.export_months import month_bounds
    from invoice_pipelines.db.incoming_months import EXPORTABLE
    from invoice_pipelines.db.tables import incoming_invoice_taxes, incoming_invoices
    from invoice_pipelines.db.tenancy import tenant_transaction
    from invoice_pipelines.exports.domain.reads import booked_lines_query
    from invoice_pipelines_devtools.bench.limit import copy_query, current_database

    t, taxes = incoming_invoices.c, incoming_invoice_taxes.c
    start, end = month_bounds(PERIOD)
    month = (
        t.organization_id == org_id,
        t.status.in_(EXPORTABLE),
        t.issue_date >= start,
        t.issue_date < end,
    )
    invoices = (
        select(
            t.id,
            t.invoice_number,
            t.type_code,
            t.issue_date,
            t.due_date,
            t.currency,
            t.net_total,
            t.tax_total,
            t.gross_total,
            t.seller_name,
            t.seller_vat_id,
            t.status,
            t.processing_version,
            t.service_date,
        )  # fmt: skip
        .where(*month)
        .order_by(t.issue_date, t.id)
    )
    vat_rows = (
        select(
            taxes.incoming_invoice_id, taxes.vat_category, taxes.vat_rate, taxes.basis, taxes.amount
        )
        .join(incoming_invoices, t.id == taxes.incoming_invoice_id)
        .where(*month)
        .order_by(taxes.id)
    )
    queries = [invoices, vat_rows]
    if export_id is not None:
        queries.append(booked_lines_query(org_id, PERIOD, "incoming", export_id))
    folder = Path(tempfile.mkdtemp(prefix="ip-bench-export-limit-"))
    try:
        with tenant_transaction(engine, org_id, snapshot=True) as conn:
            database = current_database(conn)
            started = time.perf_counter()
            size = sum(
                copy_query(conn, query, folder / f"{n}.csv") for n, query in enumerate(queries)
            )
            seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return seconds, size, database
