"""What `invoice-pipelines history import` does: an organization's past invoices from CSV files
and e-invoices (history/domain/importing.py). Each refused row or file is one line `file:line: why`; the
last line is the report as JSON; the exit code is 1 when anything was refused. Its parser is
history/commands/cli.py's; history/area.py's table names `run_history_command`, and the console script
imports this module only when the command runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.history.domain.importing import import_history
from invoice_pipelines.lib.read_only import writable


def run_history_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function (`import`), or its usage."""
    if args.verb == "import":
        return run_import_command(args)
    args.parser.print_usage()
    print("invoice-pipelines history: name one of import")
    return 2


def run_import_command(args: argparse.Namespace) -> int:
    engine = args.resources.database
    if not (args.sales or args.supplier or args.einvoices):
        print("invoice-pipelines history import: name --sales, --supplier or --einvoices")
        return 2
    report = import_history(
        engine, writable(args.organization), sales=args.sales, supplier=args.supplier,
        einvoices=args.einvoices, by=args.by,
    )  # fmt: skip
    for refusal in report.refused:
        print(terminal_text(f"refused {refusal}"))
    for warning in report.warnings:
        print(terminal_text(f"warning {warning}"))
    print(json.dumps(report.to_json_dict()))
    return 1 if report.refused else 0
