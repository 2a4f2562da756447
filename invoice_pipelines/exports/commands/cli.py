"""The parsers of `invoice-pipelines export` and `export-reopen`: argparse and the export's
directions alone, so `--help` imports no SQLAlchemy and none of the export's work. What each
command does is in exports/commands/run.py, named by exports/area.py's table (with each help)."""

from __future__ import annotations

from invoice_pipelines.cli_args import id_list
from invoice_pipelines.exports.domain.export_settings import DIRECTIONS


def add_commands(sub) -> None:
    p = sub.add_parser("export")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--month", required=True, help="YYYY-MM")
    p.add_argument("--direction", choices=[*DIRECTIONS, "both"], default="both")
    p.add_argument("--close-month", action="store_true", help="Festschreibung: lock the month")
    p.add_argument(
        "--provisional",
        action="store_true",
        help="allow the running month, exported as provisional (a month is exported once it is "
        "over; its next export after that is the final version)",
    )
    p = sub.add_parser("export-reopen")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--documents", type=id_list, required=True, help="incoming invoice ids, e.g. 12,13"
    )
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
