"""One export: an organization's month in one direction, as CSV and DATEV files plus database rows.

`run_export` is what the export assets, the CLI and the benchmark call:

1. The organization's settings are checked first; bad settings stop it with one sentence before
   anything is read or written.
2. In one transaction, holding the organization's export lock: the month's invoices are read
   (one query per kind of row), partners get their accounts, each invoice becomes its bookings or
   a skip reason.
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
import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property, lru_cache

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.core.datev import Booking, BookingLines, Header
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.totals import implied_vat_category
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import audit_log, export_items, exports
from invoice_pipelines.db.tenancy import (
    resolve_organization,
    scope_to_organization,
    tenant_transaction,
)
from invoice_pipelines.exports.accounts import assign_accounts
from invoice_pipelines.exports.bookings import BookingRules, InvoiceRecord, Skip
from invoice_pipelines.exports.csv import INVOICE_COLUMNS, LINE_COLUMNS, query_file, rows_file
from invoice_pipelines.exports.datev import bookings_file, partners_file
from invoice_pipelines.exports.export_settings import (
    ExportSettings,
    ExportSettingsError,
    enabled_directions,
    load_settings,
)
from invoice_pipelines.exports.reads import (
    attach_vat_rows,
    booked_incoming,
    booked_lines_query,
    insert_booked_items,
    load_invoices,
    month_bounds,
    sales_in_month,
    validated_in_month,
    vat_rows_query,
)
from invoice_pipelines.intake.incoming_invoices import StaleDocument, change_status_where
from invoice_pipelines.resources.file_stores import FileStore
from invoice_pipelines.settings import env

log = logging.getLogger(__name__)

PREVIEW_ROWS = 5


@dataclass
class ExportResult:
    organization: str
    direction: str
    period: str
    version: int | None = None
    export_id: int | None = None
    unchanged: bool = False
    # the month is unchanged but the files of its latest version were gone: written again as a new
    # version (the sentence says why)
    rewritten: str | None = None
    empty: bool = False  # nothing to export and never exported: no files, no row
    disabled: bool = False
    closed: bool = False
    # the running month, exported before it is over (INVOICE_PIPELINES_EXPORT_RUNNING_MONTH)
    provisional: bool = False
    files: dict[str, str] = field(default_factory=dict)
    invoice_count: int = 0
    booking_count: int = 0
    skipped: list[tuple[int, str | None, str]] = field(default_factory=list)
    # currency -> [net, tax, gross] of the exported invoices
    totals: dict[str, list[Decimal]] = field(default_factory=dict)
    preview: list[Booking] = field(default_factory=list)
    notes: dict = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # by phase: read, plan, write, ...

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


class _Clock:
    """Seconds per phase of an export, for metadata and the benchmark."""

    def __init__(self, into: dict[str, float]) -> None:
        self.into = into
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.into[phase] = round(self.into.get(phase, 0.0) + now - self.last, 4)
        self.last = now


def check_period(period: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ExportSettingsError(f"the month {period!r} is not YYYY-MM")
    return period


RUNNING_MONTH_SETTING = "INVOICE_PIPELINES_EXPORT_RUNNING_MONTH"
RUNNING_MONTH_MODES = ("closed", "provisional")


def running_month_mode() -> str:
    """closed (the default) or provisional: whether the running month may be exported."""
    mode = (env(RUNNING_MONTH_SETTING) or "closed").strip().lower()
    if mode not in RUNNING_MONTH_MODES:
        raise ExportSettingsError(
            f"{RUNNING_MONTH_SETTING}={mode!r} is not one of {', '.join(RUNNING_MONTH_MODES)}"
        )
    return mode


def month_state(period: str, today: date | None = None) -> str:
    """ "over", "running" or "future": where a month YYYY-MM stands on `today` (UTC, as the
    month partitions count)."""
    today = today or datetime.now(UTC).date()
    running = f"{today:%Y-%m}"
    if period < running:
        return "over"
    return "running" if period == running else "future"


def file_keys(
    slug: str, period: str, direction: str, version: int, *, provisional: bool = False
) -> dict[str, str]:
    stem = f"{direction}_{period}_v{version}"
    if provisional:
        stem = f"{stem}_provisional"
    folder = f"{slug}/{period}"
    return {
        "datev": f"{folder}/EXTF_Buchungsstapel_{stem}.csv",
        "datev_partners": f"{folder}/EXTF_Debitoren_Kreditoren_{stem}.csv",
        "csv": f"{folder}/invoices_{stem}.csv",
        "csv_lines": f"{folder}/invoice_lines_{stem}.csv",
    }


def _breakdown_text(invoice: InvoiceRecord, *, as_printed_before: bool = False) -> str:
    """The invoices CSV's vat_breakdown, "S 19: 100.00 + 19.00; ..." (category rate: basis +
    VAT). A row whose document named no category (text PDFs and scans state rates, not codes)
    gets the one its rate implies, S above 0, as it is booked; only such invoices are booked. The
    CSV printed "?" there before: `as_printed_before` gives that text, for the fingerprint."""
    return "; ".join(
        [
            f"{t.category or ('?' if as_printed_before else implied_vat_category(None, t.rate))} "
            f"{_rate_text(t.rate)}: {_plain_decimal(t.basis)} + {_plain_decimal(t.amount)}"
            for t in invoice.taxes
        ]
    )


def _rate_text(rate: Decimal | None) -> str:
    """format(rate.normalize(), "f"), "" for None; a month has a few rates, each formatted once
    (a zero is not cached: 0 and -0 are equal keys but print differently)."""
    if rate is None:
        return ""
    return _nonzero_rate_text(rate) if rate else format(rate.normalize(), "f")


@lru_cache(maxsize=256, typed=True)
def _nonzero_rate_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def _plain_decimal(value: Decimal | None) -> str:
    """format(value, "f"), "" for None: str() where it gives the same (no E notation)."""
    if value is None:
        return ""
    if type(value) is Decimal:
        text = str(value)
        if "E" not in text:
            return text
    return format(value, "f")


def run_export(
    engine: Engine,
    store: FileStore,
    organization: str | int,
    period: str,
    direction: str,
    *,
    close_month: bool | None = None,
    run_id: str | None = None,
    requested_by: str = "dagster",
    provisional: bool = False,
) -> ExportResult:
    """Export one organization's month in one direction (a new version when it changed).

    `provisional`: the month is not over yet (the running month): marked so in its file names,
    its DATEV header and its notes, and never closed; its next export once the month is over is
    a new version. Schedules and backfills export a month once it is over (the month partitions,
    exports/defs.py); the command refuses the running month without --provisional."""
    check_period(period)
    org = resolve_organization(engine, organization)
    if direction not in enabled_directions(org):
        result = ExportResult(org["slug"], direction, period)
        result.disabled = True
        return result
    settings = load_settings(org)
    closed = settings.close_months if close_month is None else close_month
    # an unfinished month is never locked (Festschreibung)
    job = _Job(
        settings, period, direction, closed and not provisional, run_id, requested_by, provisional
    )
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _bulk_allocation():
                return _export(engine, store, job)
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
    raise AssertionError("unreachable")


ATTEMPTS = 3


@dataclass(frozen=True)
class _Job:
    settings: ExportSettings
    period: str
    direction: str
    closed: bool
    run_id: str | None
    requested_by: str
    provisional: bool = False

    @property
    def header(self) -> Header:
        start, end = month_bounds(self.period)
        header = self.settings.header(start, end - timedelta(days=1), closed=self.closed)
        if self.provisional:
            # in the file itself too: the tax advisor's DATEV shows the batch's Bezeichnung
            header = replace(header, description=f"vorlaeufig {header.description}")
        return header


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


def _export(engine: Engine, store: FileStore, job: _Job) -> ExportResult:
    settings, period, direction = job.settings, job.period, job.direction
    result = ExportResult(
        settings.slug, direction, period, closed=job.closed, provisional=job.provisional
    )
    header = job.header
    clock = _Clock(result.seconds)
    with (
        tenant_transaction(engine, settings.organization_id, write=True, snapshot=True) as conn,
        ThreadPoolExecutor(max_workers=2, thread_name_prefix="export-record") as pool,
    ):
        xact_lock(conn, Lock.EXPORT, settings.organization_id)
        latest = _latest_version(conn, settings.organization_id, direction, period)
        snapshot = _export_snapshot(conn)
        version = (latest.version if latest is not None else 0) + 1
        keys = file_keys(settings.slug, period, direction, version, provisional=job.provisional)
        # On PostgreSQL the lines file is written by a second connection in the export's own
        # snapshot (PostgreSQL's exported snapshot: the same rows, whatever commits meanwhile),
        # from the start when a new version is likely (documents of the month wait in VALIDATED;
        # sales invoices: the month was never exported and has some), while this connection
        # reads and plans: the lines of every invoice of the month. Should the plan skip an
        # invoice, it is written again without them; should no version be written after all, it
        # is removed.
        # That connection first reads the month's VAT rows for this one (the same snapshot).
        early_lines = vat_rows = None
        if snapshot is not None and _new_version_likely(
            conn, settings.organization_id, period, direction, latest
        ):
            _remove_leftover(store, keys["csv_lines"])
            vat_rows = Future()
            early_lines = pool.submit(
                _write_lines_beside,
                engine,
                snapshot,
                settings.organization_id,
                store,
                keys["csv_lines"],
                booked_lines_query(settings.organization_id, period, direction, skipped=()),
                first=_read_into(
                    vat_rows, vat_rows_query(settings.organization_id, period, direction)
                ),
            )
        early = None
        try:
            invoices = load_invoices(
                conn, settings.organization_id, period, direction, with_vat_rows=vat_rows is None
            )
            partners = assign_accounts(conn, settings, direction, invoices)
            before = None  # the latest version's items, for the new version's notes
            if early_lines is not None and invoices:
                # a new version unless the plan skips an invoice: the database records it (in a
                # savepoint) while this thread plans
                before = _items_before(conn, latest)
                early = _record_early(conn, store, pool, job, version, keys, invoices)
            if vat_rows is not None:
                rows = _rows_beside(vat_rows, early_lines)
                if rows is None:
                    # the connection beside failed before it read them: on this one, once free
                    if early is not None:
                        wait([early.recording])
                        early.recording.result()
                    rows = conn.execute(
                        vat_rows_query(settings.organization_id, period, direction)
                    ).all()
                attach_vat_rows(invoices, rows)
            clock.lap("read")
            booked = _plan(settings, direction, period, invoices, partners, result)
            clock.lap("plan")
            if early is not None and result.skipped:
                # recorded as if nothing were skipped: undone, and recorded as it is below
                early.undo()
                early = None
            if latest is None and not invoices:
                result.empty = True
                return result
            validated = Status.VALIDATED.value
            pending = [inv for inv, _ in booked if inv.status == validated]
            rendered = None
            if not pending:
                # nothing waits to be exported: the month is unchanged if it books the same
                rendered = _render(job, header, booked, partners, result)
                clock.lap("render")
                if latest is not None and _same_month(rendered, booked, result, latest):
                    if early is not None:
                        early.undo()  # (not reached: the month would have waited in VALIDATED)
                        early = None
                    gone = _files_gone(conn, store, job, latest)
                    if gone is None:
                        result.unchanged = True
                        result.version = latest.version
                        result.export_id = latest.id
                        result.files = dict(latest.files or {})
                        result.closed = latest.closed
                        return result
                    result.rewritten = gone
            if early_lines is not None and result.skipped:
                _discard(early_lines, store, keys["csv_lines"])
                early_lines = None
            files, export_id, notes = _write_version(
                engine, conn, store, pool, job, snapshot, latest, before, version, keys,
                invoices, booked, pending, partners, rendered, early_lines, early, result, clock,
            )  # fmt: skip
            early_lines = early = None  # the version's own
        finally:
            if early is not None:
                wait([early.recording])
            if early_lines is not None:
                # no version written (empty or unchanged month, or a failure): not a file of it
                _discard(early_lines, store, keys["csv_lines"])
    clock.lap("commit")
    result.version = version
    result.export_id = export_id
    result.files = files
    result.notes = notes
    return result


@dataclass
class _EarlyRecord:
    """A version recorded before its plan was known (`_record_early`)."""

    savepoint: object
    export_id: int
    recording: object  # the Future of the items and status changes

    def undo(self) -> None:
        wait([self.recording])
        self.savepoint.rollback()


def _record_early(conn, store, pool, job: _Job, version, keys, invoices) -> _EarlyRecord:
    """In a savepoint, the `exports` row of the new version (what the plan decides is set when
    the files are written) and, on another thread, an item for every invoice of the month and
    VALIDATED -> EXPORTED, as if the plan skipped nothing: only then is it the version's."""
    savepoint = conn.begin_nested()
    export_id = _insert_export(
        conn, store, job, version, keys, _export_values(job, invoices, ExportResult("", "", ""), {})
    )
    validated = sum(1 for inv in invoices if inv.status == Status.VALIDATED.value)
    recording = pool.submit(_record, conn, job, export_id, len(invoices), validated)
    return _EarlyRecord(savepoint, export_id, recording)


def _record(conn, job: _Job, export_id: int, booked: int, pending: int) -> None:
    """The booked items (every invoice of the month the export did not record as skipped) and
    the status changes: database work only."""
    settings, period, direction = job.settings, job.period, job.direction
    inserted = conn.execute(
        insert_booked_items(settings.organization_id, period, direction, export_id)
    ).rowcount
    if inserted < 0:
        # psycopg 3 under SQLAlchemy 2.1 reports no row count for an INSERT: count them
        inserted = conn.execute(
            select(func.count())
            .select_from(export_items)
            .where(export_items.c.export_id == export_id, export_items.c.status == "exported")
        ).scalar_one()
    if inserted != booked:
        raise RuntimeError(f"export {export_id}: {inserted} items recorded for {booked} invoices")
    if direction == "incoming":
        change_status_where(
            conn,
            settings.organization_id,
            booked_incoming(settings.organization_id, period, export_id),
            Status.VALIDATED,
            Status.EXPORTED,
            pending,
        )


def _write_version(
    engine, conn, store, pool, job: _Job, snapshot, latest, before, version, keys, invoices,
    booked, pending, partners, rendered, early_lines, early, result: ExportResult, clock: _Clock,
):  # fmt: skip
    """Version `version` of the month: its `exports` row and items, the status changes and its
    files. `early_lines`: the lines file being written already (no invoice skipped), or None;
    `early`: the row and items being recorded already (nothing skipped), or None.
    (files, export id, notes)"""
    settings, period, direction = job.settings, job.period, job.direction
    header = job.header
    if before is None:
        before = _items_before(conn, latest)
    notes = {**result.notes, **_version_notes(latest, before, booked)}
    if result.rewritten:
        # not a correction: the same bookings, written again because the files were gone
        notes["rewrites_version"] = latest.version
        notes["rewritten_because"] = result.rewritten
        notes["warning"] = (
            f"version {version} books exactly what version {latest.version} booked: import "
            f"it into DATEV only where version {latest.version} was never imported"
        )
    for kind, key in keys.items():
        # a file of this version number that no export row refers to is a leftover of an
        # attempt that did not commit (the lock is held: nobody else writes this version)
        if not (kind == "csv_lines" and early_lines is not None):
            _remove_leftover(store, key)
    values = _export_values(job, booked, result, notes)
    if early is not None:
        export_id, recording = early.export_id, early.recording
    else:
        export_id = _insert_export(conn, store, job, version, keys, values)
        _insert_skipped_items(conn, job, export_id, invoices, result)
        # The database records while this thread renders and writes the files that need no
        # database (the driver releases the GIL while a statement runs; nothing else uses the
        # connection meanwhile).
        recording = pool.submit(_record, conn, job, export_id, len(booked), len(pending))
    # On PostgreSQL the lines file is written at the same time (or was already) by a second
    # connection in the export's snapshot; the skipped invoices are named to it, as it cannot
    # see the items this transaction recorded.
    lines_query = booked_lines_query(
        settings.organization_id,
        period,
        direction,
        export_id,
        skipped=[invoice_id for invoice_id, _, _ in result.skipped] if snapshot else None,
    )
    lines = early_lines
    if lines is None and snapshot is not None:
        lines = pool.submit(
            _write_lines_beside,
            engine,
            snapshot,
            settings.organization_id,
            store,
            keys["csv_lines"],
            lines_query,
        )
    try:
        if rendered is None:
            rendered = _render(job, header, booked, partners, result)
        files = {
            "datev": store.write(
                keys["datev"], bookings_file(header, rendered.bookings, settings.encoding)
            ),
            "datev_partners": store.write(
                keys["datev_partners"],
                partners_file(header, _partner_rows(booked, partners), settings.encoding),
            ),
            # the same bytes the fingerprint hashes
            "csv": store.write(keys["csv"], rendered.csv),
        }
    finally:
        wait([recording] if lines is None else [recording, lines])
    recording.result()
    if early is not None:
        early.savepoint.commit()  # the version's: RELEASE SAVEPOINT
    clock.lap("record_and_write")
    if lines is not None:
        try:
            files["csv_lines"] = lines.result()
        except DBAPIError as exc:
            # the second connection failed (none to be had, or it broke): write the file on
            # this connection after all, as without one
            log.warning("export %s: the lines file beside it failed (%s); again", export_id, exc)
            lines = None
            _remove_leftover(store, keys["csv_lines"])
    if lines is None:
        # SQLite: the lines file follows the recorded items, on this connection
        files["csv_lines"] = query_file(conn, store, keys["csv_lines"], lines_query, LINE_COLUMNS)
    clock.lap("write_lines")
    conn.execute(
        update(exports)
        .where(exports.c.id == export_id)
        .values(
            fingerprint=_version_fingerprint(rendered, booked, result),
            **{**values, "booking_count": len(rendered.bookings)},
        )
    )
    conn.execute(
        insert(audit_log).values(
            organization_id=settings.organization_id,
            created_by=job.requested_by,
            action="export",
            entity_type="export",
            entity_id=str(export_id),
            details={
                "direction": direction,
                "period": period,
                "version": version,
                "invoices": len(booked),
                "skipped": len(result.skipped),
                "dagster_run_id": job.run_id,
            },
        )
    )
    return files, export_id, notes


def _new_version_likely(conn, organization_id: int, period: str, direction: str, latest) -> bool:
    """Whether the export will most likely write a new version (only the plan can tell): incoming
    documents of the month wait in VALIDATED, or a month of sales invoices was never exported."""
    if direction == "incoming":
        waiting = validated_in_month(organization_id, period)
    elif latest is None:
        waiting = sales_in_month(organization_id, period)
    else:
        return False
    return conn.execute(select(waiting.exists())).scalar_one()


def _remove_leftover(store: FileStore, key: str) -> None:
    if store.exists(key):
        store.remove(key)


def _discard(lines, store: FileStore, key: str) -> None:
    """Wait for a lines file being written that no version is to have, and remove it."""
    wait([lines])
    _remove_leftover(store, key)


def _export_snapshot(conn) -> str | None:
    """PostgreSQL: the id under which a second connection can see exactly what this REPEATABLE
    READ transaction sees (valid while it is open); None elsewhere."""
    if conn.dialect.name != "postgresql":
        return None
    return conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()


_BREAKDOWN = INVOICE_COLUMNS.index("vat_breakdown")

SORT_MEMORY = "64MB"  # work_mem of the transaction that writes the lines file

_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def _read_into(future: Future, query):
    """For `_write_lines_beside(first=...)`: the rows of `query` into `future`."""

    def read(conn) -> None:
        try:
            future.set_result(conn.execute(query).all())
        except BaseException as exc:
            future.set_exception(exc)
            raise

    return read


def _rows_beside(rows: Future, beside: Future):
    """The rows the connection beside read, or None when it failed before it had them."""
    wait([rows, beside], return_when=FIRST_COMPLETED)
    if rows.done() and rows.exception() is None:
        return rows.result()
    return None


def _write_lines_beside(
    engine: Engine,
    snapshot: str,
    organization_id: int,
    store: FileStore,
    key: str,
    query,
    *,
    first: Callable | None = None,
) -> str:
    """The lines file by COPY on a connection of its own, in the export's snapshot (read only;
    the export's transaction stays open until this returns). `first(conn)` runs before, in the
    same transaction."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # the first statement of the transaction: it then sees the export's snapshot
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            # the month's lines sorted in memory, not in temporary files (4MB by default: a
            # month of 20,000 invoices and 60,000 lines needs about 10MB)
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
            scope_to_organization(conn, organization_id)
            if first is not None:
                first(conn)
            return query_file(conn, store, key, query, LINE_COLUMNS)


def _latest_version(conn, organization_id: int, direction: str, period: str):
    e = exports.c
    return conn.execute(
        select(
            e.id, e.version, e.fingerprint, e.files, e.closed, e.purged_at, e.purge_result, e.notes
        )
        .where(e.organization_id == organization_id, e.direction == direction, e.period == period)
        .order_by(e.version.desc())
        .limit(1)
    ).first()


def _files_gone(conn, store: FileStore, job: _Job, latest) -> str | None:
    """Why the latest version's files cannot be handed out again, or None when all are there.

    A version whose files are missing without a record of it is marked `missing` (as housekeeping
    marks a version it found without files), so its row no longer claims files that are gone.
    """
    if latest.purged_at is not None:
        when = latest.purged_at.date().isoformat()
        if latest.purge_result == "missing":
            return f"the files of version {latest.version} were found missing on {when}"
        return f"the files of version {latest.version} were removed by archive retention on {when}"
    recorded = set(latest.files or {})
    provisional = bool((latest.notes or {}).get("provisional"))
    keys = file_keys(
        job.settings.slug, job.period, job.direction, latest.version, provisional=provisional
    )
    missing = sorted(
        kind for kind, key in keys.items() if kind in recorded and not store.exists(key)
    )
    if not missing:
        return None
    now = datetime.now(UTC)
    conn.execute(
        update(exports)
        .where(exports.c.id == latest.id, exports.c.purged_at.is_(None))
        .values(purged_at=now, purge_result="missing")
    )
    return (
        f"the files of version {latest.version} were missing on {now.date().isoformat()} "
        f"({', '.join(missing)})"
    )


Booked = list[tuple[InvoiceRecord, list[Booking]]]


def _plan(settings, direction, period, invoices, partners, result: ExportResult) -> Booked:
    """Each invoice's bookings, or its skip reason in `result`; counts, sums and preview."""
    rules = BookingRules(settings, direction, period)
    booked: Booked = []
    for invoice in invoices:
        key = invoice.partner_key
        if key is None:
            who = "supplier" if direction == "incoming" else "customer"
            outcome: list[Booking] | Skip = Skip(invoice, f"{who} unknown: no name or VAT id")
        else:
            outcome = rules.plan(invoice, partners[key].account)
        if isinstance(outcome, Skip):
            result.skipped.append((invoice.id, invoice.number, outcome.reason))
        else:
            booked.append((invoice, outcome))
    if rules.cleaned:
        result.notes["cleaned_vat_ids"] = rules.cleaned
    result.invoice_count = len(booked)
    result.booking_count = sum(len(bookings) for _, bookings in booked)
    for _, bookings in booked:
        if len(result.preview) >= PREVIEW_ROWS:
            break
        result.preview.extend(bookings[: PREVIEW_ROWS - len(result.preview)])
    for inv, _ in booked:
        sums = result.totals.setdefault(inv.currency, [ZERO, ZERO, ZERO])
        sums[0] += inv.net_total or ZERO
        sums[1] += inv.tax_total or ZERO
        sums[2] += inv.gross_total or ZERO
    return booked


@dataclass
class _Rendered:
    """What a version writes, rendered: the DATEV data rows and the invoices CSV's rows, with the
    export's settings that shape them (`head`)."""

    head: tuple  # adviser, client, chart, account length, fiscal year, currency, closed, encoding
    bookings: list[str]  # DATEV data rows
    invoices: list[tuple]  # rows of the invoices CSV

    @cached_property
    def csv(self) -> list[bytes]:
        """The invoices CSV's bytes: the file written and what the fingerprint hashes."""
        return list(rows_file(INVOICE_COLUMNS, self.invoices))

    @cached_property
    def bookings_text(self) -> bytes:
        """The DATEV data rows as one run of UTF-8 (one update per kind of row gives the digest
        of one update per row), for either fingerprint."""
        return "".join(self.bookings).encode("utf-8")

    def fingerprint(self, result: ExportResult) -> str:
        """What the export books and lists, and the settings that shape it: the settings, the
        DATEV data rows, the invoices CSV's bytes and the skipped invoices."""
        digest = hashlib.sha256(FINGERPRINT_VERSION)
        digest.update(repr(self.head).encode())
        digest.update(self.bookings_text)
        for block in self.csv:
            digest.update(block)
        return _fingerprint(digest, result)


# What a version's fingerprint hashes: its settings, the DATEV data rows and the invoices CSV's
# bytes as written (before this, the CSV's rows as Python values: `_legacy_fingerprint`).
FINGERPRINT_VERSION = b"invoice_pipelines export fingerprint 2\n"


def _fingerprint(digest, result: ExportResult) -> str:
    digest.update("".join([repr(skipped) for skipped in result.skipped]).encode("utf-8"))
    return digest.hexdigest()


def _version_fingerprint(rendered: _Rendered, booked: Booked, result) -> str:
    """The fingerprint a new version is written with. (`booked` is what the earlier formula
    needs too: tests write a version as the code before did by putting `_legacy_fingerprint`
    here.)"""
    return rendered.fingerprint(result)


def _render(job: _Job, header: Header, booked: Booked, partners, result) -> _Rendered:
    encoding = job.settings.encoding
    line = BookingLines(encoding).line
    bookings = [line(b) for _, rows in booked for b in rows]
    invoices = [
        (
            inv.id,
            inv.number,
            inv.type_code,
            inv.issue_date,
            inv.due_date,
            partners[inv.partner_key].account,
            inv.partner_name,
            inv.partner_vat_id,
            inv.currency,
            inv.net_total,
            inv.tax_total,
            inv.gross_total,
            _breakdown_text(inv),
            inv.corrects_number,
        )
        for inv, _ in booked
    ]
    head = (
        header.adviser_number,
        header.client_number,
        header.chart,
        header.account_length,
        header.fiscal_year_start,
        header.currency,
        job.closed,
        encoding,
    )
    return _Rendered(head, bookings, invoices)


def _same_month(rendered: _Rendered, booked: Booked, result, latest) -> bool:
    """Whether the latest version books and lists what `rendered` does: the same fingerprint,
    or, for a version written before the fingerprint hashed the files' bytes, the same one
    worked out the way it was then. A provisional version (of a month not over yet) and a
    final one are never the same: the month's first export once it is over is a new version."""
    if bool((latest.notes or {}).get("provisional")) != result.provisional:
        return False
    if latest.fingerprint == rendered.fingerprint(result):
        return True
    return latest.fingerprint == _legacy_fingerprint(rendered, booked, result)


def _legacy_fingerprint(rendered: _Rendered, booked: Booked, result) -> str:
    """The fingerprint as versions written before it hashed the files' bytes have it: the
    invoices CSV's rows as Python values (repr) instead of its bytes."""
    digest = hashlib.sha256(repr(rendered.head).encode())
    digest.update(rendered.bookings_text)
    # without the reference when there is none: a month exported before credit notes carried one
    # keeps its fingerprint, so materializing it again writes no new version; so does a month
    # whose text PDFs and scans were listed with "?" for their VAT category
    fingerprinted = [
        row[:_BREAKDOWN] + (_breakdown_text(inv, as_printed_before=True),) + row[_BREAKDOWN + 1 :]
        if any(not t.category for t in inv.taxes)
        else row
        for row, (inv, _) in zip(rendered.invoices, booked, strict=True)
    ]
    digest.update(
        "".join([repr(row if row[-1] is not None else row[:-1]) for row in fingerprinted]).encode(
            "utf-8"
        )
    )
    return _fingerprint(digest, result)


def _export_values(job: _Job, booked, result: ExportResult, notes) -> dict:
    """The columns of an `exports` row that the plan decides."""
    sums = result.totals.get(job.settings.currency, [ZERO, ZERO, ZERO])
    return {
        "invoice_count": len(booked),
        "booking_count": result.booking_count,
        "skipped_count": len(result.skipped),
        "net_total": sums[0],
        "tax_total": sums[1],
        "gross_total": sums[2],
        "notes": {
            **notes,
            **({"provisional": True} if job.provisional else {}),
            "totals_by_currency": {
                cur: [format(v, "f") for v in values] for cur, values in result.totals.items()
            },
        },
    }


def _insert_export(conn, store, job: _Job, version, keys, values: dict) -> int:
    settings = job.settings
    return conn.execute(
        insert(exports)
        .values(
            organization_id=settings.organization_id,
            direction=job.direction,
            period=job.period,
            version=version,
            fingerprint="",  # set once the rows are rendered, in the same transaction
            files={kind: store.location(key) for kind, key in keys.items()},
            closed=job.closed,
            dagster_run_id=job.run_id,
            created_by=job.requested_by,
            **values,
        )
        .returning(exports.c.id)
    ).scalar_one()


def _insert_skipped_items(conn, job: _Job, export_id: int, invoices, result) -> None:
    """The skipped invoices one by one (few, each with its reason); the booked ones follow in one
    INSERT ... SELECT over the same month (the snapshot makes it the set that was read)."""
    if not result.skipped:
        return
    column = "incoming_invoice_id" if job.direction == "incoming" else "sales_invoice_id"
    by_id = {inv.id: inv for inv in invoices}
    conn.execute(
        insert(export_items),
        [
            {
                "organization_id": job.settings.organization_id,
                "export_id": export_id,
                column: invoice_id,
                "invoice_number": (number or None) and number[:128],
                "status": "skipped",
                "reason": reason,
                "document_version": by_id[invoice_id].version,
                "net_total": by_id[invoice_id].net_total,
                "tax_total": by_id[invoice_id].tax_total,
                "gross_total": by_id[invoice_id].gross_total,
            }
            for invoice_id, number, reason in result.skipped
        ],
    )


def _partner_rows(booked: Booked, partners) -> list[dict]:
    """The partner accounts the bookings use, with the address where one is known."""
    addresses = _addresses(booked)
    used = {inv.partner_key for inv, _ in booked}
    return [
        {
            "account": partners[key].account,
            "name": partners[key].name,
            "vat_id": partners[key].vat_id,
            "country": partners[key].country,
            **addresses.get(key, {}),
        }
        for key in sorted(used, key=lambda k: partners[k].account)
    ]


def _addresses(booked: list[tuple[InvoiceRecord, list[Booking]]]) -> dict[str, dict]:
    """partner key -> address (customers have one; suppliers' addresses are not stored)."""
    found: dict[str, dict] = {}
    for inv, _ in booked:
        if inv.street or inv.city:
            found.setdefault(
                inv.partner_key,
                {"street": inv.street, "postal_code": inv.postal_code, "city": inv.city},
            )
    return found


def _items_before(conn, latest) -> dict[int, str]:
    """invoice id -> status of its item in the latest version ({} when there is none)."""
    if latest is None:
        return {}
    items = export_items.c
    before: dict[int, str] = {}
    for incoming_id, sales_id, status in conn.execute(
        select(items.incoming_invoice_id, items.sales_invoice_id, items.status).where(
            items.export_id == latest.id
        )
    ):
        before[incoming_id or sales_id] = status
    return before


def _version_notes(latest, before: dict[int, str], booked) -> dict:
    """What changed since the latest version: corrected, new and removed invoices."""
    if latest is None:
        return {}
    now = {inv.id: inv for inv, _ in booked}
    corrected = sorted(
        (inv.number or str(inv.id))
        for inv in now.values()
        if before.get(inv.id) == "exported" and inv.status == Status.VALIDATED.value
    )
    added = sorted(i for i in now if before.get(i) != "exported")
    removed = sorted(i for i, status in before.items() if status == "exported" and i not in now)
    notes: dict = {"replaces_version": latest.version}
    if corrected:
        notes["corrected"] = corrected
    if added:
        notes["newly_booked"] = len(added)
    if removed:
        notes["no_longer_booked"] = removed
    if latest.closed:
        notes["warning"] = (
            f"version {latest.version} was exported with Festschreibung (month closed): its "
            "bookings are locked in DATEV and must be reversed there, not overwritten"
        )
    return notes


def totals_text(totals: dict[str, list[Decimal]]) -> dict[str, dict[str, str]]:
    """{currency: {net, tax, gross}} as exact decimal strings (metadata, JSON)."""
    return {
        currency: {
            "net": format(values[0], "f"),
            "tax": format(values[1], "f"),
            "gross": format(values[2], "f"),
        }
        for currency, values in sorted(totals.items())
    }


def skipped_by_reason(result: ExportResult) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for _, _, reason in result.skipped:
        counts[reason] += 1
    return dict(counts)
