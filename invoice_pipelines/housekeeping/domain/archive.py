"""Archive retention: remove archived uploads and export files whose retention period is over.

The rules (what may go when) are in `retention.py`; this module finds the candidates (one query
per kind for a whole batch of organizations says which have anything old enough; only those are
read, with range reads per organization), removes their files from the stores and marks their
rows (`purged_at`, `purge_result`), keeping the rows and content hashes for the audit trail.

- An upload's original goes only when its incoming invoice is done (EXPORTED) and every date of
  it (uploaded, invoice date, last status change, i.e. booked) is before the cutoff; an invoice
  still in work (UPLOADED .. VALIDATED) keeps its file whatever its age, and so does a FAILED one:
  it waits for someone to retry it, and a retry reads the original again (a FAILED invoice was
  never booked, so nothing of it is in an export either).
  A duplicate upload follows the invoice it duplicates.
- An export version's files go when the month and the day it was written are both before the
  cutoff of the organization's `exports_years`.
- Each class keeps its own period (`core/retention.py`: the uploads are booking documents, 8 years;
  the export files books, 10 years), and an organization under a legal hold keeps everything. The
  outcome says per class what was removed and what was kept and why (`classes`).
- The file is removed first, then the row is marked: a crash in between leaves a row whose file is
  gone, which the next run records as `missing`. A file already missing is recorded the same way,
  never an error; a file the store fails to remove is reported and its row stays unmarked for the
  next run. Marked rows are never looked at again, so a second run does nothing.
- Each organization is its own unit: refused settings or a failure are reported for it and the
  others go on. Every organization where something happened gets one `audit_log` row per run.
- It runs as the system login (system transactions on the system engine) from its first read to
  its audit row: marking a record purged is a rewrite the runtime login never makes.
"""

from __future__ import annotations

from calendar import monthrange
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Engine, select, update

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.export_files import file_keys
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.retention import (
    HOLDS,
    RecordClass,
    RetentionSettings,
    RetentionSettingsError,
    kept_through,
    retention_settings,
)
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import (
    exports,
    incoming_invoices,
    uploads,
)
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.housekeeping.domain.retention import (
    LEGAL_MINIMUM_YEARS,
    Cutoff,
    cutoff,
    last_retained_year,
    may_remove,
)
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads

# an incoming invoice in one of these states is finished with; any other state is work in progress
# (FAILED included: it can be retried, and the retry needs the original)
DONE = (Status.EXPORTED.value,)
CHUNK = 500  # rows marked per transaction
ID_CHUNK = 5000  # ids per IN list (SQLite allows 32,766 variables per statement)
AUDIT_ACTION = "archive_retention"
# what a run counts of each organization, in the order its audit entry and the run's metadata
# name them (OrganizationOutcome's fields)
COUNTED = (
    "uploads_removed",
    "uploads_missing",
    "uploads_kept_in_work",
    "uploads_kept_failed",
    "exports_removed",
    "exports_missing",
    "files_removed",
)


@dataclass
class OrganizationOutcome:
    slug: str
    organization_id: int | None = None
    uploads_years: int | None = None
    exports_years: int | None = None
    uploads_removed: int = 0
    uploads_missing: int = 0
    uploads_kept_in_work: int = 0  # past the cutoff, but their invoice is not done yet
    uploads_kept_failed: int = 0  # of those, invoices that FAILED and wait for a retry
    exports_removed: int = 0  # export versions whose files were removed
    exports_missing: int = 0
    files_removed: int = 0
    refused: str | None = None
    errors: list[str] = field(default_factory=list)
    dry_run: bool = False
    legal_hold: bool = False
    today: date | None = None  # the organization's day the rules were applied on

    @property
    def changed(self) -> int:
        return (
            self.uploads_removed
            + self.uploads_missing
            + self.exports_removed
            + self.exports_missing
        )

    def as_dict(self) -> dict:
        return {
            "organization": self.slug,
            "uploads_years": self.uploads_years,
            "exports_years": self.exports_years,
            **{name: getattr(self, name) for name in COUNTED},
            "refused": self.refused,
            "errors": self.errors[:20],
            "dry_run": self.dry_run,
            "legal_hold": self.legal_hold,
            "classes": self.classes(),
        }

    def sentence(self) -> str:
        """What was done (or is due, in a dry run) for the organization, in one line; "" when
        nothing was."""
        if not (self.changed or self.uploads_kept_in_work):
            return ""
        verb = "due (dry run)" if self.dry_run else "removed"
        return (
            f"{self.slug}: uploads {verb} {self.uploads_removed}, already missing "
            f"{self.uploads_missing}, kept in work {self.uploads_kept_in_work}; export versions "
            f"{verb} {self.exports_removed}, already missing {self.exports_missing}"
        )

    def problems(self) -> list[str]:
        """Why the organization was refused, and what failed for it."""
        return ([self.refused] if self.refused else []) + self.errors

    def classes(self) -> dict[str, dict]:
        """Per class of record: what it holds, its period, what went and what was kept and why."""
        if self.today is None or self.refused:
            return {}
        return {
            RecordClass.BOOKING_DOCUMENT.value: self._class(
                RecordClass.BOOKING_DOCUMENT,
                "the originals of received invoices (uploads)",
                self.uploads_years,
                self.uploads_removed,
                self._in_work(),
            ),
            RecordClass.BOOK.value: self._class(
                RecordClass.BOOK,
                "the DATEV and CSV files of each export version",
                self.exports_years,
                self.exports_removed,
                "",
            ),
        }

    def _in_work(self) -> str:
        if not self.uploads_kept_in_work:
            return ""
        return (
            f"; {self.uploads_kept_in_work} original(s) past the period kept because their "
            f"invoice is not booked yet ({self.uploads_kept_failed} FAILED, waiting for a retry)"
        )

    def _class(self, record_class, files: str, years, removed: int, more: str) -> dict:
        first_kept = last_retained_year(self.today, years) + 1
        if self.legal_hold:
            kept = "everything: the organization is under a legal hold"
        else:
            kept = (
                f"everything of {first_kept} and later ({years} years from the end of the "
                f"calendar year: the records of {first_kept} are kept through "
                f"{kept_through(record_class, first_kept, years).isoformat()}){more}"
            )
        return {
            "holds": HOLDS[record_class],
            "files": files,
            "years": years,
            "removed": removed,
            "kept": kept,
        }


def purge_archives(
    engine: Engine,
    system: Engine,
    upload_store: Uploads,
    export_store: Files,
    organizations_: Iterable[Organization],
    *,
    unknown: Iterable[str] = (),
    dry_run: bool = False,
    run_id: str | None = None,
    requested_by: str = "housekeeping",
) -> list[OrganizationOutcome]:
    """Apply archive retention to the organizations (the entry point finds them by the names
    asked, `db/tenancy.find_organizations`: all of them when none is named, deactivated ones
    included, as their archives age like the others); each of `unknown`, a name that is no
    organization, is an outcome refused.

    There is deliberately no "as of" date: the clock is the real one, so no run can remove anything
    before its time. `system`: the system engine, which finds the organizations and which of them
    have anything old enough, and does all of the work: retention reads, marks and audits as the
    system login, never in a tenant transaction (the runtime login does not rewrite records).
    `engine`, the runtime engine, is no longer used (kept for the callers).
    """
    now = datetime.now(UTC)
    outcomes = []
    found = [(org, OrganizationOutcome(org.slug, org.id)) for org in organizations_]
    found += [
        (None, OrganizationOutcome(name, refused=f"There is no organization {name!r}."))
        for name in unknown
    ]
    busy = _with_old_rows(system, [org.id for org, _ in found if org is not None], now)
    for org, outcome in found:
        outcome.dry_run = dry_run
        outcomes.append(outcome)
        if org is None:
            continue
        try:
            settings = _settings(org, outcome, now)
            # under a legal hold nothing goes; with nothing old enough anywhere, nothing is read
            if settings.legal_hold or org.id not in busy:
                continue
            _purge_organization(system, upload_store, export_store, org, outcome, now, dry_run)
        except RetentionSettingsError as exc:
            outcome.refused = str(exc)
        except Exception as exc:  # one organization's failure never stops the others
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
        if (outcome.changed or outcome.refused or outcome.errors) and not dry_run:
            try:
                _audit(system, org.id, outcome, now, run_id, requested_by)
            except Exception as exc:
                outcome.errors.append(f"audit log not written: {type(exc).__name__}: {exc}")
    return outcomes


def _with_old_rows(system: Engine, org_ids: list[int], now: datetime) -> set[int]:
    """The organizations that have any unmarked upload or export older than the latest cutoff any
    of them can have (the legal minimum, in the westernmost time zone): one query per kind for a
    whole batch, so the many organizations with nothing due cost no transaction of their own."""
    if not org_ids:
        return set()
    bound = datetime(now.year + 1 - LEGAL_MINIMUM_YEARS, 1, 2, tzinfo=UTC)
    busy: set[int] = set()
    with system_transaction(system) as conn:
        for table in (uploads, exports):
            for chunk in chunked(org_ids, ID_CHUNK):
                busy.update(
                    conn.scalars(
                        select(table.c.organization_id)
                        .where(
                            table.c.organization_id.in_(chunk),
                            table.c.purged_at.is_(None),
                            table.c.created_at < bound,
                        )
                        .distinct()
                    )
                )
    return busy


def _today(now: datetime, timezone: str):
    try:
        return now.astimezone(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return now.astimezone(UTC).date()


def _settings(org, outcome: OrganizationOutcome, now: datetime) -> RetentionSettings:
    settings = retention_settings(org.slug, org.settings)
    outcome.uploads_years, outcome.exports_years = settings.uploads_years, settings.exports_years
    outcome.legal_hold, outcome.today = settings.legal_hold, _today(now, org.timezone)
    return settings


def _purge_organization(system, upload_store, export_store, org, outcome, now, dry_run) -> None:
    today = outcome.today
    _purge_uploads(
        system, upload_store, org, cutoff(today, outcome.uploads_years, org.timezone),
        outcome, now, dry_run,
    )  # fmt: skip
    _purge_exports(
        system, export_store, org, cutoff(today, outcome.exports_years, org.timezone),
        outcome, now, dry_run,
    )  # fmt: skip


def _purge_uploads(system, store, org, limit: Cutoff, outcome, now, dry_run) -> None:
    u, ii = uploads, incoming_invoices
    # two range reads joined here rather than a join in SQL: without fresh statistics (after a bulk
    # load) PostgreSQL planned the join as a loop over the organization's invoices per upload
    # (quadratic: 10,000 uploads took minutes); these two plans do not depend on statistics
    with system_transaction(system) as conn:
        old = conn.execute(
            select(u.c.id, u.c.storage_key, u.c.created_at, u.c.incoming_invoice_id)
            .where(
                u.c.organization_id == org.id,
                u.c.purged_at.is_(None),
                u.c.created_at < limit.instant,
            )
            .order_by(u.c.id)
        ).all()
        if not old:
            return
        wanted = sorted({row.incoming_invoice_id for row in old if row.incoming_invoice_id})
        invoices = {}
        for chunk in chunked(wanted, ID_CHUNK):
            for row in conn.execute(
                select(ii.c.id, ii.c.status, ii.c.issue_date, ii.c.status_changed_at).where(
                    ii.c.organization_id == org.id, ii.c.id.in_(chunk)
                )
            ):
                invoices[row.id] = row
    candidates = []
    for row in old:
        invoice = invoices.get(row.incoming_invoice_id)
        if invoice is None:
            continue  # no invoice to judge it by: kept
        if invoice.status not in DONE:
            outcome.uploads_kept_in_work += 1
            outcome.uploads_kept_failed += invoice.status == Status.FAILED.value
            continue
        candidates.append((row, invoice))
    # the rule decides on every date of the document: received, issued, last status change (booked)
    candidates = [
        row
        for row, invoice in candidates
        if may_remove([row.created_at, invoice.issue_date, invoice.status_changed_at], limit)
    ]
    if dry_run:
        outcome.uploads_removed = len(candidates)
        return

    def remove(row) -> str | None:
        try:
            gone = store.remove(row.storage_key)
        except Exception as exc:  # reported; the row stays for the next run
            outcome.errors.append(f"upload {row.id} ({row.storage_key}): {exc}")
            return None
        return "removed" if gone else "missing"

    for results in _removed_and_marked(system, org.id, uploads, candidates, remove, now):
        outcome.uploads_removed += len(results["removed"])
        outcome.uploads_missing += len(results["missing"])
        outcome.files_removed += len(results["removed"])


def _purge_exports(system, store, org, limit: Cutoff, outcome, now, dry_run) -> None:
    e = exports
    with system_transaction(system) as conn:
        candidates = conn.execute(
            select(
                e.c.id, e.c.direction, e.c.period, e.c.version, e.c.files, e.c.notes, e.c.created_at
            )
            .where(
                e.c.organization_id == org.id,
                e.c.purged_at.is_(None),
                e.c.created_at < limit.instant,
                e.c.period < f"{limit.day.year:04d}-01",
            )
            .order_by(e.c.id)
        ).all()
    candidates = [c for c in candidates if may_remove([c.created_at, _month_end(c.period)], limit)]
    if dry_run:
        outcome.exports_removed = len(candidates)
        return

    def remove(row) -> str | None:
        # a provisional version (the running month, exported on request) has files of its own
        provisional = bool((row.notes or {}).get("provisional"))
        keys = file_keys(org.slug, row.period, row.direction, row.version, provisional=provisional)
        recorded = set(row.files or {})
        removed = 0
        try:
            for kind, key in keys.items():
                if recorded and kind not in recorded:
                    continue
                if store.exists(key):
                    store.remove(key)
                    removed += 1
        except Exception as exc:
            outcome.errors.append(f"export {row.id} ({row.period} v{row.version}): {exc}")
            outcome.files_removed += removed
            return None
        outcome.files_removed += removed
        return "removed" if removed else "missing"

    for results in _removed_and_marked(system, org.id, exports, candidates, remove, now):
        outcome.exports_removed += len(results["removed"])
        outcome.exports_missing += len(results["missing"])


def _month_end(period: str) -> date:
    """The last day of a YYYY-MM month (the booking period's own date)."""
    year, month = int(period[:4]), int(period[5:7])
    return date(year, month, monthrange(year, month)[1])


def _removed_and_marked(
    system, organization_id: int, table, candidates: list, remove, now
) -> Iterator[dict[str, list[int]]]:
    """The candidates' files removed and their rows marked, CHUNK rows per transaction: each
    chunk's ids by result once they are marked (so the counts stay true if a later chunk fails).
    `remove(row)` removes one row's files: "removed", "missing" (none was there any more), or
    None where the store failed (it reports that; the row stays unmarked for the next run)."""
    for chunk in chunked(candidates, CHUNK):
        results: dict[str, list[int]] = {"removed": [], "missing": []}
        for row in chunk:
            result = remove(row)
            if result is not None:
                results[result].append(row.id)
        _mark(system, organization_id, table, results, now)
        yield results


def _mark(system, organization_id: int, table, results: dict[str, list[int]], now) -> None:
    with system_transaction(system, write=True) as conn:
        for result, ids in results.items():
            if ids:
                conn.execute(
                    update(table)
                    .where(
                        table.c.organization_id == organization_id,
                        table.c.id.in_(ids),
                        table.c.purged_at.is_(None),
                    )
                    .values(purged_at=now, purge_result=result)
                )


def _audit(system, organization_id: int, outcome, now, run_id, requested_by) -> None:
    with system_transaction(system, write=True) as conn:
        details = {**outcome.as_dict(), "run_id": run_id, "as_of": now.isoformat()}
        record_audit_entries(
            conn,
            organization_id,
            requested_by,
            AUDIT_ACTION,
            "organization",
            [organization_id],
            details,
        )
