"""What `invoice-pipelines housekeeping` does: archive retention by hand, the function the job
calls. Its parser is housekeeping/commands/cli.py's; housekeeping/area.py's table names
`run_housekeeping_command`, and the console script imports this module only when it runs."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.housekeeping.domain.archive import purge_archives


def run_housekeeping_command(args: argparse.Namespace) -> int:
    # the plain stores the runs' resources wrap: the same files, without Dagster
    resources = args.resources
    # the organizations of the --org options (all of them without one), found once by cli.py
    found, unknown = args.organizations
    outcomes = purge_archives(
        resources.database, resources.system_database, resources.upload_store,
        resources.export_store, found, unknown=unknown, dry_run=args.dry_run, requested_by="cli",
    )  # fmt: skip
    for outcome in outcomes:
        print(json.dumps(outcome.as_dict(), ensure_ascii=False))
        if outcome.refused:
            print(f"invoice-pipelines housekeeping: {outcome.refused}", file=sys.stderr)
    return 1 if any(o.refused or o.errors for o in outcomes) else 0
