"""One export: an organization's month in one direction, as CSV and DATEV files plus database rows.

`run_export` is what the export assets, the CLI and the benchmark call:

1. The organization's settings are checked first; bad settings stop it with one sentence before
   anything is read or written.
2. In one transaction, holding the organization's export lock: the month's invoices are read
   (one query per kind of row), partners get their accounts, each invoice becomes its bookings or
   a skip reason. On PostgreSQL, when a new version is likely, the database records it from the
   start in a savepoint (kept once the plan skips nothing and the items and status changes
   number what was read; for incoming invoices right after the snapshot, while a second
   connection in the same snapshot reads the invoices and the accounts given so far: the
   month's new suppliers are numbered from those rows and their accounts written once the
   recording is done, in the same transaction).
3. If nothing waits in VALIDATED and the month books exactly what its latest version booked,
   nothing is written (idempotent), as long as that version's files are still there. When they are
   gone (removed by archive retention, `exports.purged_at`, or missing from the store) the same
   bookings are written again as version N+1, whose notes say so; a version found without its
   files is marked `purge_result = 'missing'`. Otherwise version N+1 is written: the `exports` row
   and the skipped items; then, at the same time, the database records the booked items (one INSERT ...
   SELECT) and moves the booked incoming invoices VALIDATED -> EXPORTED while this thread renders
   and writes the DATEV files and the invoices CSV, and (PostgreSQL) a second connection writes
   the lines CSV by COPY in the export's own snapshot (`pg_export_snapshot`: exactly the rows the
   export read); on SQLite the lines CSV follows on the same connection. Files get new names and
   never overwrite. If anything fails, the transaction rolls back, and the files
   of that version number, which no row refers to, are replaced by the next attempt; a
   concurrent change of one of the month's documents makes the export start again (3 attempts).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.core.export_files import file_keys
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.incoming_status import StaleDocument
from invoice_pipelines.db.locks import Lock, session_lock
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.exports.domain import lines_beside
from invoice_pipelines.exports.domain.accounts import (
    assign_accounts,
    write_accounts,
)
from invoice_pipelines.exports.domain.beside import beside_or_here, read_beside, start_beside
from invoice_pipelines.exports.domain.documents import (
    DocumentStores,
    DocumentUnreadable,
    linked,
    plan_package,
)
from invoice_pipelines.exports.domain.export_settings import enabled_directions, load_settings
from invoice_pipelines.exports.domain.files import discard
from invoice_pipelines.exports.domain.fingerprints import same_before_packages, same_month
from invoice_pipelines.exports.domain.job import Job, check_period
from invoice_pipelines.exports.domain.payments import link_payments, load_payments, plan_payments
from invoice_pipelines.exports.domain.plan import plan
from invoice_pipelines.exports.domain.reads import (
    attach_vat_rows,
    in_review_in_month,
    load_invoices,
    vat_rows_query,
)
from invoice_pipelines.exports.domain.rendering import render
from invoice_pipelines.exports.domain.result import Clock, ExportResult
from invoice_pipelines.exports.domain.versions import (
    files_gone,
    items_before,
    items_by_invoice,
    items_query,
    latest_version,
    record_early,
)
from invoice_pipelines.exports.domain.writing import write_version
from invoice_pipelines.resources.files.files import Files

log = logging.getLogger(__name__)


def run_export(
    engine: Engine,
    store: Files,
    org: Organization,
    period: str,
    direction: str,
    *,
    close_month: bool | None = None,
    run_id: str | None = None,
    requested_by: str = "dagster",
    provisional: bool = False,
    documents: DocumentStores | None = None,
) -> ExportResult:
    """Export one organization's month in one direction (a new version when it changed).

    `provisional`: the month is not over yet (the running month): marked so in its file names,
    its DATEV header and its notes, and never closed; its next export once the month is over is
    a new version. Schedules and backfills export a month once it is over (the month partitions,
    exports/partitions.py); the command refuses the running month without --provisional.

    `documents`: where the invoices' documents are (upload and document store); given, the
    version carries a DATEV document package and its bookings Beleglinks (exports/domain/documents.py)."""
    check_period(period)
    if direction not in enabled_directions(org):
        result = ExportResult(org.slug, direction, period)
        result.disabled = True
        return result
    settings = load_settings(org)
    closed = settings.close_months if close_month is None else close_month
    # an unfinished month is never locked (Festschreibung)
    job = Job(
        settings, period, direction, closed and not provisional, run_id, requested_by, provisional,
        documents,
    )  # fmt: skip
    attempt = 1
    while True:
        try:
            with _bulk_allocation():
                return _export(engine, store, job)
        except DocumentUnreadable as exc:
            # once per document at most: the next attempt leaves it out and says why
            log.warning(
                "export %s %s %s: %s; again without it", settings.slug, period, direction, exc
            )
            if exc.invoice_id in job.unreadable:
                raise
            job.unreadable[exc.invoice_id] = exc.reason
        except (StaleDocument, DBAPIError) as exc:
            retryable = isinstance(exc, StaleDocument) or getattr(
                getattr(exc, "orig", None), "pgcode", None
            ) in ("40001", "40P01")
            if not retryable or attempt == ATTEMPTS:
                raise
            log.warning(
                "export %s %s %s: attempt %d met a concurrent change (%s); again",
                settings.slug,
                period,
                direction,
                attempt,
                exc,
            )
            attempt += 1


ATTEMPTS = 3


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """No cyclic garbage collection while an export builds its rows: it allocates hundreds of
    thousands of small acyclic objects, and each collection pass would scan all of them again
    (measured: a third of the export's time). Restored afterwards, whatever happens."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _export(engine: Engine, store: Files, job: Job) -> ExportResult:
    settings, period, direction = job.settings, job.period, job.direction
    result = ExportResult(
        settings.slug, direction, period, closed=job.closed, provisional=job.provisional
    )
    header = job.header
    clock = Clock(result.seconds)
    with (
        # one export writer per organization, waited for before the snapshot begins: the export
        # then sees the accounts the writer before it gave (two runs of one organization's months
        # met on the partner accounts' unique key when the lock came after the snapshot)
        session_lock(engine, Lock.EXPORT, settings.organization_id, wait=True),
        tenant_transaction(engine, settings.organization_id, write=True, snapshot=True) as conn,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="export-record") as pool,
    ):
        latest = latest_version(conn, settings.organization_id, direction, period)
        snapshot = lines_beside.export_snapshot(conn)
        if direction == "incoming":
            # the month's supplier invoices that wait for a person, in the export's snapshot
            result.in_review = in_review_in_month(conn, settings.organization_id, period)
        version = (latest.version if latest is not None else 0) + 1
        keys = file_keys(settings.slug, period, direction, version, provisional=job.provisional)
        early_lines, beside = start_beside(conn, engine, store, pool, job, snapshot, latest, keys)
        vat_rows = beside.vat_rows if beside is not None else None
        # incoming, a new version likely: the invoices and the accounts given so far come from
        # the connection beside
        invoices_beside = beside is not None and beside.invoices is not None
        early = None
        new_accounts: list[dict] = []  # numbered here, written once the recording is done
        try:
            before = None  # the latest version's items, for the new version's notes
            if invoices_beside:
                # incoming, a new version likely (documents of the month wait in VALIDATED): the
                # database records the version (in a savepoint) from the snapshot on, while the
                # connection beside reads the invoices and the accounts given so far, and this
                # thread numbers the new suppliers' accounts and plans; the counts are checked
                # before the savepoint is kept, and the new accounts are written after it
                early = record_early(conn, store, pool, job, version, keys)
                invoices, partners, new_accounts, early = read_beside(
                    conn, job, beside, early_lines, early
                )
            else:
                invoices = load_invoices(
                    conn,
                    settings.organization_id,
                    period,
                    direction,
                    with_vat_rows=vat_rows is None,
                )
            # sales: the month's payments (by their day) and what their discounts need
            payments = load_payments(conn, settings.organization_id, period, direction)
            if not invoices_beside:
                partners = assign_accounts(
                    conn, settings, direction, payments.with_invoices(invoices)
                )
                if early_lines is not None and invoices:
                    # a new version unless the plan skips an invoice: the database records it (in
                    # a savepoint) while this thread plans
                    before = items_before(conn, latest)
                    early = record_early(conn, store, pool, job, version, keys, invoices)
            if vat_rows is not None:
                rows = beside_or_here(
                    vat_rows,
                    early_lines,
                    early,
                    conn,
                    vat_rows_query(settings.organization_id, period, direction),
                )
                attach_vat_rows(invoices, rows)
            if beside is not None and beside.before is not None:
                # read beside after the VAT rows: only the version's notes need them
                before = items_by_invoice(
                    beside_or_here(beside.before, early_lines, early, conn, items_query(latest))
                )
            clock.lap("read")
            booked = unlinked = plan(settings, direction, period, invoices, partners, result)
            plan_payments(settings, period, payments, partners, result)
            package = None
            if job.documents is not None and booked:
                package = plan_package(
                    conn, settings.organization_id, period, direction, booked, job.unreadable
                )
                booked = linked(booked, package.links)
                result.payments = link_payments(result.payments, package.links)
                result.notes.update(package.notes)
            clock.lap("plan")
            if early is not None and result.skipped:
                # recorded as if nothing were skipped: undone, and recorded as it is below
                early.undo()
                early = None
            if latest is None and not invoices and not result.payments:
                result.empty = True
                return result
            validated = Status.VALIDATED.value
            pending = [inv for inv, _ in booked if inv.status == validated]
            rendered = None
            if not pending:
                # nothing waits to be exported: the month is unchanged if it books the same
                rendered = render(job, header, booked, partners, result)
                clock.lap("render")
                if latest is not None and (
                    same_month(rendered, booked, result, latest)
                    or (
                        package is not None
                        and bool(package.links)
                        and same_before_packages(job, header, unlinked, partners, result, latest)
                    )
                ):
                    if early is not None:
                        early.undo()  # (not reached: the month would have waited in VALIDATED)
                        early = None
                    # the month's new suppliers keep the accounts they were given, as when the
                    # accounts are given on this connection before the month is planned
                    write_accounts(conn, new_accounts)
                    new_accounts = []
                    gone = files_gone(conn, store, job, latest)
                    if gone is None:
                        result.unchanged = True
                        result.version = latest.version
                        result.export_id = latest.id
                        result.files = dict(latest.files or {})
                        result.closed = latest.closed
                        # the package is that version's: so is its count
                        result.documents_packed = (latest.notes or {}).get("documents_packed")
                        return result
                    result.rewritten = gone
            if early_lines is not None and result.skipped:
                discard(early_lines, store, keys["csv_lines"])
                early_lines = None
            files, export_id, notes = write_version(
                engine, conn, store, pool, job, snapshot, latest, before, version, keys,
                invoices, booked, pending, partners, rendered, early_lines, early, result, clock,
                package, new_accounts,
            )  # fmt: skip
            early_lines = early = None  # the version's own
        finally:
            if early is not None:
                wait([early.recording])
            if early_lines is not None:
                # no version written (empty or unchanged month, or a failure): not a file of it
                discard(early_lines, store, keys["csv_lines"])
    clock.lap("commit")
    result.version = version
    result.export_id = export_id
    result.files = files
    result.notes = notes
    return result
