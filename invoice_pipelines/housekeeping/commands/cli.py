"""The parser of `invoice-pipelines housekeeping`: argparse alone, so `--help` imports none of
the retention's work. What it does is in housekeeping/commands/run.py, named by
housekeeping/area.py's table (with its help)."""

from __future__ import annotations


def add_commands(sub) -> None:
    p = sub.add_parser("housekeeping")
    p.add_argument(
        "--org",
        action="append",
        default=None,
        help="organization slug or id (repeatable); default: every organization",
    )
    p.add_argument("--dry-run", action="store_true", help="count what is due, remove nothing")
