"""`invoice-pipelines housekeeping`: archive retention by hand, the function the job calls."""

from __future__ import annotations

import argparse
import json
import sys


def add_commands(sub) -> None:
    p = sub.add_parser("housekeeping")
    p.add_argument(
        "--org",
        action="append",
        default=None,
        help="organization slug or id (repeatable); default: every organization",
    )
    p.add_argument("--dry-run", action="store_true", help="count what is due, remove nothing")
    p.set_defaults(func=run_housekeeping_command)


def run_housekeeping_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.housekeeping.archive import purge_archives

    # the plain stores the runs' resources wrap: the same files, without Dagster
    resources = args.resources
    outcomes = purge_archives(
        resources.database,
        resources.upload_store,
        resources.export_store,
        args.org,
        dry_run=args.dry_run,
        requested_by="cli",
    )
    for outcome in outcomes:
        print(json.dumps(outcome.as_dict(), ensure_ascii=False))
        if outcome.refused:
            print(f"invoice-pipelines housekeeping: {outcome.refused}", file=sys.stderr)
    return 1 if any(o.refused or o.errors for o in outcomes) else 0
