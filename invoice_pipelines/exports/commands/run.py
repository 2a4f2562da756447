"""What `invoice-pipelines export` and `export-reopen` do: the functions the export assets
call. Their parsers are exports/commands/cli.py's; exports/area.py's table names each function here, and
the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.export_months import month_state
from invoice_pipelines.exports.domain.corrections import reopen_exported
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.exports.domain.export_settings import DIRECTIONS, ExportSettingsError
from invoice_pipelines.exports.domain.figures import totals_text
from invoice_pipelines.exports.domain.job import RUNNING_MONTH_SETTING, check_period
from invoice_pipelines.exports.domain.pipeline import run_export


def run_export_command(args: argparse.Namespace) -> int:
    resources = args.resources  # the plain stores the runs' resources wrap: the same files
    engine = resources.database
    store = resources.export_store
    documents = DocumentStores(resources.upload_store, resources.document_store)
    directions = DIRECTIONS if args.direction == "both" else (args.direction,)
    try:
        state = month_state(check_period(args.month))
    except ExportSettingsError as exc:
        print(f"invoice-pipelines export: {exc}")
        return 2
    if state == "future":
        print(f"invoice-pipelines export: the month {args.month} has not begun")
        return 2
    if state == "running" and not args.provisional:
        print(
            f"invoice-pipelines export: {args.month} is the running month; a month is exported "
            "once it is over (--provisional exports it as provisional, as "
            f"{RUNNING_MONTH_SETTING}=provisional lets schedules and backfills)"
        )
        return 2
    code = 0
    for direction in directions:
        try:
            result = run_export(
                engine,
                store,
                args.organization,
                args.month,
                direction,
                close_month=True if args.close_month else None,
                requested_by="cli",
                provisional=state == "running",
                documents=documents,
            )
        except ExportSettingsError as exc:
            print(f"invoice-pipelines: {direction} export refused: {exc}")
            return 2
        print(
            json.dumps(
                {
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
            )
        )
        if result.skipped:
            code = 1
    return code


def run_reopen_command(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = args.organization
    ids = args.documents
    reopened, refused = reopen_exported(engine, org.id, ids, reason=args.reason, requested_by="cli")
    print(json.dumps({"reopened": reopened, "refused": {str(k): v for k, v in refused.items()}}))
    return 0 if reopened and not refused else 1
