"""What billing's commands do: `invoice-pipelines batch-invoice`: invoicing through the queue from a shell
(`batch-status` and the other commands every kind shares are the queue's, queue/commands/run.py);
`credit-note`: a credit note for one sales invoice; `batch-credit-notes`: many, through the
queue; `customer-skonto`: a customer's own early-payment discount steps. `batch-invoice` and
`credit-note` are adapters over billing/domain/actions.py (the credit note's is the launchpad's
op's too): they read the options, hand them over, and print the outcome. Their parsers are
billing/commands/cli.py's; billing/area.py's table names each function here, and the console script
imports this module only when one of them runs. An unknown --org raises `UnknownOrganization`,
which the console script answers."""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import closing
from pathlib import Path

from invoice_pipelines.billing.domain import actions
from invoice_pipelines.billing.domain.credit_note_jobs import enqueue_credit_notes
from invoice_pipelines.billing.domain.credit_notes import CreditNoteRefused
from invoice_pipelines.billing.domain.customer_terms import UnknownCustomer, set_customer_skonto
from invoice_pipelines.core.skonto import SkontoError
from invoice_pipelines.lib.read_only import Refused, writable
from invoice_pipelines.queue.commands.job_text import ProgressBar, format_job
from invoice_pipelines.queue.commands.run import (
    EXIT_BAD_REQUEST,
    EXIT_OK,
    exit_code,
    queued_or_run_here,
    refused,
    who,
)
from invoice_pipelines.queue.domain.jobs import BatchJob
from invoice_pipelines.queue.domain.requests import BatchRequestError, local_runner_name


def run_batch_invoice(args: argparse.Namespace) -> int:
    """Enqueue a job and print its id at once; with --wait process it here with a progress bar."""
    runner = local_runner_name() if args.wait else None
    try:
        workers = actions.invoicing_workers(getattr(args, "workers", None), what="--workers")
        org = writable(args.organization)  # refused as the console script would refuse it
        job_id = actions.queue_invoicing(
            args.resources.database, org, **_invoicing(args), created_by=who(args), runner=runner
        )
    except Refused as exc:
        return refused("batch-invoice", exc)
    print(job_id, flush=True)
    if not args.wait:
        return _queued(job_id)
    return _invoiced_here(args, job_id, runner, workers)


def _invoicing(args: argparse.Namespace) -> dict:
    """The request `batch-invoice`'s options make (`actions.queue_invoicing`'s keywords)."""
    return {
        "orders": args.orders,
        "customer_lines": getattr(args, "customer_lines", None),
        "up_to": args.up_to,
        "invoice_date": args.invoice_date,
        "due_days": args.due_days,
        "follow_ups": (
            getattr(args, "generate_pdf", False),
            getattr(args, "send_immediately", False),
            getattr(args, "channel", None),
        ),
    }


def _queued(job_id: int) -> int:
    print(
        f"batch job {job_id} queued; the batch jobs sensor starts it. "
        f"Follow it with: invoice-pipelines batch-status {job_id}",
        file=sys.stderr,
    )
    return EXIT_OK


def _invoiced_here(args: argparse.Namespace, job_id: int, runner: str | None, workers: int) -> int:
    """The job processed here with a progress bar; its summary, the first failed items and
    where what it asked for after its invoices stands."""
    resources = args.resources
    with closing(ProgressBar()) as bar:
        done = actions.invoice_queued(
            resources.database,
            job_id,
            system=resources.system_database,
            kinds=resources.batch_kinds,
            chunk_size=getattr(args, "chunk_size", None),
            workers=workers,
            runner=runner,
            on_progress=bar.update,
        )
    print(format_job(done.job, resources.batch_kinds, done.failures))
    _print_follow_up(done.follow_up)
    return exit_code(done.job)


def _print_follow_up(follow_up: BatchJob | None) -> None:
    """Where the documents or sending an invoicing job asked for stand (queued with it)."""
    if follow_up is not None:
        print(
            f"  then: {follow_up.kind} job {follow_up.id} ({follow_up.status}); the sensor starts "
            f"it, or: invoice-pipelines batch-run {follow_up.id}"
        )


def run_batch_credit_notes(args: argparse.Namespace) -> int:
    """Queue a credit_notes job from a JSON file and print its id; with --wait issue them here."""
    engine = args.resources.database
    organization = writable(args.organization)
    runner = local_runner_name() if args.wait else None
    try:
        items = json.loads(Path(args.items).read_text())
        job_id = enqueue_credit_notes(
            engine, organization, items, issue_date=args.date, created_by=who(args), runner=runner
        )
    except (BatchRequestError, OSError, json.JSONDecodeError) as exc:
        print(f"invoice-pipelines batch-credit-notes: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    return queued_or_run_here(engine, job_id, args, runner, "batch-credit-notes")


def run_customer_skonto(args: argparse.Namespace) -> int:
    """Store the customer's steps; print them as JSON (null: the organization's default)."""
    engine = args.resources.database
    organization = writable(args.organization)
    try:
        stored = set_customer_skonto(
            engine, organization.id, args.customer, args.steps, requested_by=who(args)
        )
    except (SkontoError, UnknownCustomer) as exc:
        print(f"invoice-pipelines customer-skonto: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(json.dumps({"customer": args.customer, "skonto": stored}))
    return EXIT_OK


def run_credit_note(args: argparse.Namespace) -> int:
    """Issue the credit note; print it as JSON (number, amounts, the invoice it corrects)."""
    organization = writable(args.organization)
    try:
        note = actions.credit_note(
            args.resources.database, organization, args.invoice, **_credit(args), by=who(args)
        )
    except CreditNoteRefused as exc:
        print(f"invoice-pipelines credit-note: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(json.dumps(note.to_json_dict()))
    return EXIT_OK


def _credit(args: argparse.Namespace) -> dict:
    """The credit `credit-note`'s options ask for (`actions.credit_note`'s keywords)."""
    return {
        "reason": args.reason,
        "lines": args.lines,
        "amounts": getattr(args, "amounts", None),
        "issue_date": args.date,
    }
