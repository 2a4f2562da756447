"""`invoice-pipelines history import`: an organization's past invoices from CSV files and
e-invoices (history/importing.py). Each refused row or file is one line `file:line: why`; the
last line is the report as JSON; the exit code is 1 when anything was refused."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from invoice_pipelines.core.text import terminal_text


def add_commands(sub) -> None:
    history = sub.add_parser("history")
    history.set_defaults(func=run_history_command, parser=history)
    verbs = history.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "import",
        help="import past invoices (history: exported in their months, never sent or dunned)",
    )
    p.add_argument("--org", "--organization", dest="org", required=True, help="slug or id")
    p.add_argument(
        "--sales", action="append", default=[], type=Path, metavar="FILE.csv",
        help="sales invoices, one row per invoice and VAT rate (repeat for more files)",
    )  # fmt: skip
    p.add_argument(
        "--supplier", action="append", default=[], type=Path, metavar="FILE.csv",
        help="supplier invoices, one row per invoice and VAT rate (repeat for more files)",
    )  # fmt: skip
    p.add_argument(
        "--einvoices", action="append", default=[], type=Path, metavar="DIR",
        help="a folder of Factur-X/ZUGFeRD PDFs and XRechnung CII/UBL XML (repeat for more)",
    )  # fmt: skip
    p.add_argument("--by", required=True, help="who imports (recorded as the invoices' origin)")
    p.set_defaults(func=run_import_command)


def run_history_command(args: argparse.Namespace) -> int:
    args.parser.print_usage()
    print("invoice-pipelines history: name one of import")
    return 2


def run_import_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.history.importing import import_history

    engine = args.resources.database
    organization = resolve_organization(engine, args.org)  # an unknown one: one sentence
    if not (args.sales or args.supplier or args.einvoices):
        print("invoice-pipelines history import: name --sales, --supplier or --einvoices")
        return 2
    report = import_history(
        engine,
        organization["id"],
        sales=args.sales,
        supplier=args.supplier,
        einvoices=args.einvoices,
        by=args.by,
    )
    for refusal in report.refused:
        print(terminal_text(f"refused {refusal}"))
    for warning in report.warnings:
        print(terminal_text(f"warning {warning}"))
    print(json.dumps(report.to_json_dict()))
    return 1 if report.refused else 0
