"""What `invoice-pipelines overdue`, `dunning-block`, `customer-kind` and `dunning-base-rate`
do: the functions the dunning asset and the block job call, and the settings of the German rules.
Their parsers are overdue/commands/cli.py's; overdue/area.py's table names each function here, and the
console script imports this module only when one of them runs.

The commands take the engine the `database` resource gives the runs, built without Dagster
(`args.resources.database`); `overdue` writes its letters with the `letter_writer` (the
documents area's) and sends through the delivery channels' resources and the document store: the
resources the console script gives every command by the runs' names (`args.resources`, from the
same table definitions.py binds for the runs), as a run would. An unknown --org raises
`UnknownOrganization`, which the console script answers."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.core.dunning import DunningSettingsError
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.overdue.domain.actions import as_of_option, dun, succeeded
from invoice_pipelines.overdue.domain.pipeline import (
    set_base_rate,
    set_customer_kind,
    set_dunning_block,
)
from invoice_pipelines.overdue.domain.scheduling import AsOfError


def run_overdue_command(args: argparse.Namespace) -> int:
    try:
        on = as_of_option(args.as_of)
    except AsOfError as exc:
        print(f"invoice-pipelines overdue: {exc}", file=sys.stderr)
        return 2
    org = args.organization if args.dry_run else writable(args.organization)
    summary = dun(args.resources.database, args.resources, org, on=on, dry_run=args.dry_run)
    print(json.dumps(summary))
    return 0 if succeeded(summary) else 1


def run_block_command(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    changed, unknown = set_dunning_block(
        engine,
        org.id,
        customer_ids=args.customers or (),
        invoice_ids=args.invoices or (),
        blocked=not args.lift,
        reason=args.reason,
        requested_by=args.created_by,
    )
    print(json.dumps({"changed": changed, "not_found": unknown, "blocked": not args.lift}))
    return 0 if changed else 1


def run_kind_command(args: argparse.Namespace) -> int:
    engine = args.resources.database
    org = writable(args.organization)
    changed, unknown = set_customer_kind(
        engine,
        org.id,
        args.customers,
        None if args.kind == "auto" else args.kind,
        requested_by=args.created_by,
    )
    print(json.dumps({"changed": changed, "not_found": unknown, "kind": args.kind}))
    return 0 if changed else 1


def run_base_rate_command(args: argparse.Namespace) -> int:
    writable(args.organization)
    try:
        rates = set_base_rate(
            args.resources.system_database, args.organization, args.valid_from, args.percent
        )
    except DunningSettingsError as exc:
        print(f"invoice-pipelines: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"organization": args.org, "base_rates": rates}))
    return 0
