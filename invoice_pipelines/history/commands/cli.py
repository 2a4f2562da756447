"""The parser of `invoice-pipelines history import`: argparse alone, so `--help` imports no
SQLAlchemy and none of the import's work. What it does is in history/commands/run.py, named by
history/area.py's table (with its help)."""

from __future__ import annotations

from pathlib import Path


def add_commands(sub) -> None:
    history = sub.add_parser("history")
    history.set_defaults(parser=history)
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
