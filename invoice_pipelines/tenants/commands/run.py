"""What the writing verbs of `invoice-pipelines organizations` do: add, change, suspend, resume,
offboard, each an adapter over the request's action (tenants/domain/actions.py, which the
launchpad's ops call too), audited with who (`--by`, else the login name) and why. The action says
what happened on the terminal, reports it to Dagster (resources/dagster_instance/dagster_ui.py `Terminal`) and
writes the partitions on the instance of DAGSTER_HOME (tenants/domain/partition_keys.py). Each
problem a person can correct is one line; the exit code is 1 when anything was refused. The
parsers are tenants/commands/cli.py's."""

from __future__ import annotations

import argparse
import getpass
import json
import time

from invoice_pipelines.core.organization_values import FIELDS
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.resources.dagster_instance.dagster_ui import Terminal
from invoice_pipelines.tenants.domain import actions
from invoice_pipelines.tenants.domain.actions import Parts
from invoice_pipelines.tenants.domain.offboarding import Stores
from invoice_pipelines.tenants.domain.partition_keys import sync_partitions


def who(args: argparse.Namespace) -> str:
    return (args.by or "").strip() or getpass.getuser()


def _parts(args: argparse.Namespace) -> Parts:
    """The actions' parts in a command: the terminal, the partitions of DAGSTER_HOME's instance."""
    resources = args.resources
    return Parts(resources.system_database, resources.upload_store, Terminal(), sync_partitions)


def _refused(problems: list[str]) -> int:
    for problem in problems:
        print(terminal_text(f"refused: {problem}"))
    return 1


def run_add(args: argparse.Namespace) -> int:
    started = time.monotonic()
    given = {name: getattr(args, name) for name in FIELDS if getattr(args, name) is not None}
    if args.csv and given:
        print("organizations add: give --csv FILE or the values by options, not both")
        return 2
    try:
        added = actions.add(_parts(args), csv=args.csv, values=given, by=who(args), where="options")
    except Refused as exc:
        return _refused(exc.problems)
    seconds = round(time.monotonic() - started, 3)
    counts = {"added": len(added.added), "unchanged": len(added.unchanged)}
    print(json.dumps({**counts, "seconds": seconds}))
    return 0


def run_change(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in FIELDS[1:] if getattr(args, name) is not None}
    if not given:
        print("organizations change: name a value to change (--name, --vat-id, ...)")
        return 2
    try:
        actions.change(_parts(args), args.organization, given, by=who(args), why=args.why)
    except Refused as exc:
        return _refused(exc.problems)
    return 0


def run_suspend(args: argparse.Namespace) -> int:
    try:
        actions.suspend(_parts(args), args.organization, reason=args.reason, by=who(args))
    except Refused as exc:
        return _refused(exc.problems)
    return 0


def run_resume(args: argparse.Namespace) -> int:
    try:
        actions.resume(_parts(args), args.organization, by=who(args))
    except Refused as exc:
        return _refused(exc.problems)
    return 0


def run_offboard(args: argparse.Namespace) -> int:
    resources = args.resources
    stores = Stores(resources.upload_store, resources.document_store, resources.export_store)
    try:
        actions.offboard(
            _parts(args),
            args.organization,
            database=resources.database,
            stores=stores,
            export_dir=args.export,
            delete=args.delete,
            by=who(args),
        )
    except Refused as exc:
        return _refused(exc.problems)
    return 0
