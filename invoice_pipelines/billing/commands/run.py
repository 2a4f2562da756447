"""What billing's commands do: `invoice-pipelines batch-invoice`: invoicing through the queue from a shell
(`batch-status` and the other commands every kind shares are the queue's, queue/commands/run.py);
`credit-note`: a credit note for one sales invoice; `batch-credit-notes`: many, through the
queue; `customer-skonto`: a customer's own early-payment discount steps. Their parsers are
billing/commands/cli.py's; billing/area.py's table names each function here, and the console script
imports this module only when one of them runs. An unknown --org raises `UnknownOrganization`,
which the console script answers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from invoice_pipelines.billing.domain.credit_note_jobs import enqueue_credit_notes
from invoice_pipelines.billing.domain.credit_notes import (
    CreditNoteRefused,
    issue_credit_note,
    parse_amounts,
    parse_lines,
)
from invoice_pipelines.billing.domain.customer_terms import UnknownCustomer, set_customer_skonto
from invoice_pipelines.billing.domain.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    process_batch_job,
)
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    enqueue_sales_orders,
    follow_up_options,
)
from invoice_pipelines.core.skonto import SkontoError
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.queue.commands.job_text import ProgressBar, format_job
from invoice_pipelines.queue.commands.run import (
    EXIT_BAD_REQUEST,
    EXIT_OK,
    exit_code,
    queued_or_run_here,
    who,
)
from invoice_pipelines.queue.domain.jobs import (
    BatchJob,
    follow_up_of,
    job_item_outcomes,
)
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import (
    BatchRequestError,
    local_runner_name,
    parse_order_ids,
)


def run_batch_invoice(args: argparse.Namespace) -> int:
    """Enqueue a job and print its id at once; with --wait process it here with a progress bar."""
    workers = getattr(args, "workers", None) or DEFAULT_WORKERS
    if not 1 <= workers <= MAX_WORKERS:
        print(
            f"invoice-pipelines batch-invoice: --workers must be between 1 and {MAX_WORKERS}",
            file=sys.stderr,
        )
        return EXIT_BAD_REQUEST
    engine = args.resources.database
    organization = writable(args.organization)
    runner = local_runner_name() if args.wait else None
    common = {
        "invoice_date": args.invoice_date,
        "due_days": args.due_days,
        "created_by": who(args),
        "runner": runner,
    }
    try:
        common["options"] = follow_up_options(
            getattr(args, "generate_pdf", False),
            getattr(args, "send_immediately", False),
            getattr(args, "channel", None),
        )
        if getattr(args, "customer_lines", None):
            entries = json.loads(Path(args.customer_lines).read_text())
            job_id = enqueue_customer_lines(engine, organization, entries, **common)
        elif args.orders:
            job_id = enqueue_sales_orders(
                engine, organization, order_ids=parse_order_ids(args.orders), **common
            )
        else:
            job_id = enqueue_sales_orders(
                engine, organization, all_reviewed=True, up_to=args.up_to, **common
            )
    except (BatchRequestError, OSError, json.JSONDecodeError) as exc:
        print(f"invoice-pipelines batch-invoice: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(job_id, flush=True)
    if not args.wait:
        print(
            f"batch job {job_id} queued; the batch jobs sensor starts it. "
            f"Follow it with: invoice-pipelines batch-status {job_id}",
            file=sys.stderr,
        )
        return EXIT_OK
    bar = ProgressBar()
    try:
        job = process_batch_job(
            engine,
            job_id,
            system=args.resources.system_database,
            chunk_size=getattr(args, "chunk_size", None) or DEFAULT_CHUNK_SIZE,
            runner=runner,
            on_progress=bar.update,
            workers=workers,
        )
    finally:
        bar.close()
    kinds = args.resources.batch_kinds
    failures = job_item_outcomes(engine, job, limit=10) if job.failed_count else None
    print(format_job(job, kinds, failures))
    _print_follow_up(engine, job, kinds)
    return exit_code(job)


def _print_follow_up(engine, job: BatchJob, kinds: Kinds) -> None:
    """Where the documents or sending an invoicing job asked for stand (queued with it)."""
    follow_up = follow_up_of(engine, job, kinds)
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
    engine = args.resources.database
    organization = writable(args.organization)
    try:
        note = issue_credit_note(
            engine,
            organization,
            args.invoice,
            reason=args.reason,
            lines=parse_lines(args.lines),
            amounts=parse_amounts(getattr(args, "amounts", None)),
            issue_date=args.date,
            created_by=who(args),
        )
    except CreditNoteRefused as exc:
        print(f"invoice-pipelines credit-note: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(json.dumps(note.to_json_dict()))
    return EXIT_OK
