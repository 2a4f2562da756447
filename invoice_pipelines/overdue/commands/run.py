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
from datetime import date

from invoice_pipelines.core.dunning import DunningSettingsError
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.overdue.domain.letter import write_letters
from invoice_pipelines.overdue.domain.notice_sending import send_notices_over
from invoice_pipelines.overdue.domain.pipeline import (
    run_overdue,
    set_base_rate,
    set_customer_kind,
    set_dunning_block,
)
from invoice_pipelines.overdue.domain.scheduling import AsOfError, check_as_of_day


def run_overdue_command(args: argparse.Namespace) -> int:
    try:
        on = date.fromisoformat(args.as_of) if args.as_of else None
    except ValueError:
        print(f"invoice-pipelines: --as-of must be YYYY-MM-DD, got {args.as_of!r}", file=sys.stderr)
        return 2
    try:
        if on is not None:
            check_as_of_day(on, what="--as-of")
    except AsOfError as exc:
        print(f"invoice-pipelines overdue: {exc}", file=sys.stderr)
        return 2
    engine = args.resources.database
    if not args.dry_run:
        writable(args.organization)
    result = run_overdue(engine, args.organization, on=on, dry_run=args.dry_run, requested_by="cli")
    delivery = {}
    if result.status != "FAILED" and not result.dry_run:
        # the letter writer is the documents area's, which this area does not import: the
        # console script's resources give it, as definitions.py gives it to the runs
        resources = args.resources  # the channels' resources, the document store, the writer
        store = resources.document_store
        letters = write_letters(engine, resources.letter_writer, store, args.organization)
        sent = send_notices_over(engine, resources, store, args.organization)
        delivery = {
            "letters_written": [
                {k: w[k] for k in ("notice_id", "path", "size_bytes", "pages")}
                for w in letters.written
            ],
            "letters_failed": {str(k): v for k, v in letters.failed.items()},
            "notices_sent": sent.sent,
            "notices_send_failed": {str(k): v for k, v in sent.failed.items()},
            "notices_send_postponed": {str(k): v for k, v in sent.postponed.items()},
            "notices_send_unknown": sent.unknown,
            "notices_withdrawn": {str(k): v for k, v in sent.withdrawn.items()},
        }
    print(
        json.dumps(
            {
                "organization": result.organization,
                "as_of": str(result.as_of or ""),
                "status": result.status,
                "dry_run": result.dry_run,
                "scanned": result.scanned,
                "notices_created": result.notices_created,
                "notices_by_level": dict(result.created_by_level),
                "fees_charged": f"{result.fees:.2f}",
                "interest_charged": f"{result.interest:.2f}",
                "errors": result.errors[:20],
                "seconds": round(result.seconds, 3),
                "fee_invoice_batch_job": result.fee_invoice_job_id,
                "notices_fee_invoiced": result.notices_invoiced,
                **delivery,
            }
        )
    )
    return 0 if result.status in ("SUCCESS", "PARTIAL") else 1


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
