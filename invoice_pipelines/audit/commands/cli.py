"""The parsers of the tax-audit commands: argparse alone, so `--help` imports none of their
work. What each does is in audit/commands/run.py, named by audit/area.py's table (with each help)."""

from __future__ import annotations


def add_commands(sub) -> None:
    p = sub.add_parser("audit-export")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--year", required=True, type=int, help="fiscal year, YYYY")
    p.add_argument("--out", required=True, help="a new (or empty) folder for the carrier")
    p = sub.add_parser("audit-verify")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--year", type=int, default=None, help="only the files stored in this year (default: all)"
    )
