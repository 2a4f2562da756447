"""The exports area's requests as actions (issue 87): `export`, one organization's month in the
directions asked for, as `invoice-pipelines export` asks it (the export assets run each partition's
export themselves, exports/assets.py), and `reopen`, EXPORTED supplier invoices back to VALIDATED
(a correction), which the launchpad's `reopen_exported_invoices` op (exports/jobs.py) and
`invoice-pipelines export-reopen` (exports/commands/run.py) both call. Each takes the work's parts,
the `Organization` and the request, and returns the outcome or raises `Refused` with the sentence a
person reads."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Engine

from invoice_pipelines.core.export_months import month_state
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.exports.domain.corrections import reopen_exported
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.exports.domain.export_settings import DIRECTIONS, ExportSettingsError
from invoice_pipelines.exports.domain.figures import totals_text
from invoice_pipelines.exports.domain.job import RUNNING_MONTH_SETTING, check_period
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.exports.domain.result import ExportResult
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.resources.dagster_instance.dagster_ui import Report
from invoice_pipelines.resources.files.files import Files


@dataclass(frozen=True)
class ExportParts:
    """What an export works with: the runtime engine, the export store, where the invoices'
    documents are, and whoever asked (`report`: each direction's outcome, as it is done)."""

    engine: Engine
    export_store: Files
    documents: DocumentStores
    report: Report


@dataclass(frozen=True)
class MonthExport:
    """A month a person asks to export: `month` (YYYY-MM), `direction` ("incoming", "sales" or
    "both"), `close_month` (None: the organization's setting), `running_month` (the running
    month may be exported, as provisional) and who asked (the audit log)."""

    month: str
    direction: str = "both"
    close_month: bool | None = None
    running_month: bool = False
    requested_by: str = "cli"


class MonthNotExportable(Refused):
    """The month asked for cannot be exported: no YYYY-MM month, not begun, or the running
    month without leave to export it as provisional; nothing was exported."""


def export(parts: ExportParts, org: Organization, request: MonthExport) -> list[ExportResult]:
    """Export `org`'s month in each direction asked for, one after the other, each one's outcome
    reported (`outcome`, one JSON line) as it is done; their results. `MonthNotExportable` before
    any export; `Refused` with a direction's settings error (the directions before it are done)."""
    provisional = _provisional(request)
    directions = DIRECTIONS if request.direction == "both" else (request.direction,)
    results = []
    for direction in directions:
        try:
            result = run_export(
                parts.engine,
                parts.export_store,
                org,
                request.month,
                direction,
                close_month=request.close_month,
                requested_by=request.requested_by,
                provisional=provisional,
                documents=parts.documents,
            )
        except ExportSettingsError as exc:
            raise Refused([f"{direction} export refused: {exc}"]) from None
        parts.report.say(json.dumps(outcome(direction, result)))
        results.append(result)
    return results


def _provisional(request: MonthExport) -> bool:
    """Whether the month is exported as provisional (the running month, when allowed);
    `MonthNotExportable` for a month that cannot be exported now."""
    try:
        state = month_state(check_period(request.month))
    except ExportSettingsError as exc:
        raise MonthNotExportable([str(exc)]) from None
    if state == "future":
        raise MonthNotExportable([f"the month {request.month} has not begun"])
    if state == "running" and not request.running_month:
        raise MonthNotExportable(
            [
                f"{request.month} is the running month; a month is exported once it is over "
                "(--provisional exports it as provisional, as "
                f"{RUNNING_MONTH_SETTING}=provisional lets schedules and backfills)"
            ]
        )
    return state == "running"


def outcome(direction: str, result: ExportResult) -> dict:
    """One direction's export as the command shows it."""
    return {
        "direction": direction,
        "month": result.period,
        "version": result.version,
        "unchanged": result.unchanged,
        "rewritten": result.rewritten,
        "empty": result.empty,
        "disabled": result.disabled,
        "provisional": result.provisional,
        "invoices": result.invoice_count,
        "bookings": result.booking_count,
        "skipped": [{"id": i, "number": n, "reason": r} for i, n, r in result.skipped],
        "totals": totals_text(result.totals),
        "files": result.files,
        "notes": result.notes,
    }


@dataclass(frozen=True)
class Reopen:
    """EXPORTED supplier invoices a person asks to correct, why (the audit log) and who asked."""

    document_ids: Sequence[int]
    reason: str
    requested_by: str


@dataclass(frozen=True)
class Reopened:
    """What a reopening did: the documents back to VALIDATED, and the others with why not."""

    reopened: list[int]
    refused: dict[int, str]


def reopen(engine: Engine, org: Organization, request: Reopen) -> Reopened:
    """Move `org`'s EXPORTED documents of `request` back to VALIDATED (audited one row each):
    the next export of their month writes a new version that names them. `Refused` without a
    document or a reason, nothing changed; a document that is not EXPORTED stays as it is
    (`Reopened.refused` says why)."""
    if not request.document_ids:
        raise Refused(["Name at least one document to reopen (document_ids)."])
    if not request.reason.strip():
        raise Refused(["Say why the documents are reopened (reason)."])
    reopened, refused = reopen_exported(
        engine,
        org.id,
        request.document_ids,
        reason=request.reason,
        requested_by=request.requested_by,
    )
    return Reopened(reopened, refused)
