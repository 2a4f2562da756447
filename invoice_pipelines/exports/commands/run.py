"""What `invoice-pipelines export` and `export-reopen` do: adapters over the exports' actions
(exports/domain/actions.py; `reopen` is the launchpad's reopen job's too), each direction's outcome
one JSON line on the terminal (resources/dagster_instance/dagster_ui.py `Terminal`). Their parsers
are exports/commands/cli.py's; exports/area.py's table names each function here, and the console
script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.exports.domain import actions
from invoice_pipelines.exports.domain.actions import ExportParts, MonthExport, MonthNotExportable
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.resources.dagster_instance.dagster_ui import Terminal


def run_export_command(args: argparse.Namespace) -> int:
    close = True if args.close_month else None  # not given: the organization's setting
    request = MonthExport(args.month, args.direction, close, running_month=args.provisional)
    try:
        results = actions.export(_parts(args), args.organization, request)
    except MonthNotExportable as exc:
        print(f"invoice-pipelines export: {exc}")
        return 2
    except Refused as exc:
        print(f"invoice-pipelines: {exc}")
        return 2
    return 1 if any(result.skipped for result in results) else 0


def _parts(args: argparse.Namespace) -> ExportParts:
    resources = args.resources  # the plain stores the runs' resources wrap: the same files
    documents = DocumentStores(resources.upload_store, resources.document_store)
    return ExportParts(resources.database, resources.export_store, documents, Terminal())


def run_reopen_command(args: argparse.Namespace) -> int:
    # refused (no document, no reason): cli.py says the sentence, exit code 2
    request = actions.Reopen(args.documents, args.reason, requested_by="cli")
    done = actions.reopen(args.resources.database, args.organization, request)
    refused = {str(k): v for k, v in done.refused.items()}
    print(json.dumps({"reopened": done.reopened, "refused": refused}))
    return 0 if done.reopened and not done.refused else 1
