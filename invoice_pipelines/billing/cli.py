"""Billing's commands: `invoice-pipelines batch-invoice`: invoicing through the queue from a shell
(`batch-status` and the other commands every kind shares are the queue's, queue/cli.py);
`credit-note`: a credit note for one sales invoice; `batch-credit-notes`: many, through the
queue; `customer-skonto`: a customer's own early-payment discount steps. Each command's help is
in billing/area.py; an unknown --org raises `UnknownOrganization`, which the console script
answers."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from invoice_pipelines.billing.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    process_batch_job,
)
from invoice_pipelines.billing.invoicing_kinds import (
    enqueue_customer_lines,
    enqueue_sales_orders,
    follow_up_options,
)
from invoice_pipelines.cli_args import day, non_negative_int, positive_int
from invoice_pipelines.core.channels import DELIVERY_CHANNELS
from invoice_pipelines.core.skonto import SkontoError
from invoice_pipelines.db.tenancy import resolve_organization
from invoice_pipelines.queue.commands import (
    EXIT_BAD_REQUEST,
    EXIT_OK,
    ProgressBar,
    exit_code,
    format_job,
    queued_or_run_here,
    who,
)
from invoice_pipelines.queue.jobs import (
    BatchJob,
    follow_up_of,
    job_item_outcomes,
)
from invoice_pipelines.queue.known_kinds import Kinds
from invoice_pipelines.queue.requests import (
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
    organization = resolve_organization(engine, args.org)["id"]
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
    from invoice_pipelines.billing.credit_note_jobs import enqueue_credit_notes

    engine = args.resources.database
    organization = resolve_organization(engine, args.org)["id"]
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


def add_commands(sub) -> None:
    p = sub.add_parser("batch-invoice")
    p.add_argument("--org", required=True, help="organization id or slug")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--orders", help="comma-separated sales order ids")
    group.add_argument("--all-reviewed", action="store_true", help="every reviewed order")
    group.add_argument(
        "--customer-lines",
        metavar="FILE.json",
        help="invoice customers directly: a JSON list of {customer, lines: [{item|description, "
        "quantity, unit_price, vat_rate}]}",
    )
    p.add_argument(
        "--up-to", help="with --all-reviewed: only orders dated up to this day (YYYY-MM-DD)"
    )
    p.add_argument(
        "--invoice-date", help="YYYY-MM-DD; default today in the organization's timezone"
    )
    p.add_argument(
        "--due-days",
        type=non_negative_int,
        default=None,
        help="default: the organization's payment terms",
    )
    p.add_argument("--created-by", default=None)
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=positive_int, default=5000, help="orders per transaction with --wait"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="with --wait on PostgreSQL: chunks in flight at once, one connection each",
    )
    p.add_argument(
        "--generate-pdf",
        action="store_true",
        help="then write the invoices' documents (a documents job queued with this one)",
    )
    p.add_argument(
        "--send-immediately",
        action="store_true",
        help="then send the invoices, once each (a communications job queued with this one)",
    )
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, help="with --send-immediately (email)")
    p.set_defaults(func=run_batch_invoice)

    p = sub.add_parser("batch-credit-notes")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--items",
        required=True,
        help='JSON file: a list of {"invoice_number": ..., "reason": ..., optionally "lines": '
        '"1:2,3:1" or "amounts": "19=100.00,7=20.00" (NET per VAT rate), "issue_date": '
        '"YYYY-MM-DD"}',
    )
    p.add_argument(
        "--date", help="YYYY-MM-DD of the items that give none; default: today (organization's)"
    )
    p.add_argument("--created-by", default=None, help="who asks (audit log); default: you")
    p.add_argument("--wait", action="store_true", help="issue them here, with progress")
    p.add_argument(
        "--chunk-size", type=positive_int, default=None, help="credit notes per progress step"
    )
    p.set_defaults(func=run_batch_credit_notes)
    p = sub.add_parser("credit-note")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoice", required=True, help="the invoice number, e.g. RE-2026-000042")
    p.add_argument(
        "--lines",
        help="invoice line:quantity to credit, e.g. 1:2,3:1; default: everything not yet credited",
    )
    p.add_argument(
        "--amounts",
        help="NET amount (before VAT; VAT is added at the rate) to credit per VAT rate of the "
        "invoice, e.g. 19=100.00,7=20.00 (a price reduction or goodwill credit without lines; "
        "CATEGORY:RATE=NET where one rate has two categories, e.g. AE:0=50.00)",
    )
    p.add_argument("--reason", required=True, help="why (on the credit note and in the audit log)")
    p.add_argument("--date", type=day, help="YYYY-MM-DD; default today")
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_credit_note)
    _add_customer_skonto(sub)


def _add_customer_skonto(sub) -> None:
    p = sub.add_parser("customer-skonto")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--customer", required=True, help="the customer number, e.g. K-1")
    p.add_argument(
        "--steps",
        required=True,
        help="days:percent per step, e.g. 10:2,20:1; 'none' for no discount; 'default' for the "
        "organization's",
    )
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_customer_skonto)


def run_customer_skonto(args: argparse.Namespace) -> int:
    """Store the customer's steps; print them as JSON (null: the organization's default)."""
    from invoice_pipelines.billing.customer_terms import UnknownCustomer, set_customer_skonto

    engine = args.resources.database
    organization = resolve_organization(engine, args.org)
    try:
        stored = set_customer_skonto(
            engine, organization["id"], args.customer, args.steps, requested_by=who(args)
        )
    except (SkontoError, UnknownCustomer) as exc:
        print(f"invoice-pipelines customer-skonto: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(json.dumps({"customer": args.customer, "skonto": stored}))
    return EXIT_OK


def run_credit_note(args: argparse.Namespace) -> int:
    """Issue the credit note; print it as JSON (number, amounts, the invoice it corrects)."""
    from invoice_pipelines.billing.credit_notes import (
        CreditNoteRefused,
        issue_credit_note,
        parse_amounts,
        parse_lines,
    )

    engine = args.resources.database
    organization = resolve_organization(engine, args.org)
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
