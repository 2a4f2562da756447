"""Billing's commands: `invoice-pipelines batch-invoice` / `batch-status` / `batch-list` (and
cancel / retry): the queue from a shell; `credit-note`: a credit note for one sales invoice;
`batch-credit-notes`: many, through the queue."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from invoice_pipelines.billing.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    process_batch_job,
)
from invoice_pipelines.cli_args import day, non_negative_int, positive_int
from invoice_pipelines.core.channels import DELIVERY_CHANNELS
from invoice_pipelines.db.tables import BATCH_JOB_STATUSES
from invoice_pipelines.queue.jobs import (
    BatchJob,
    UnknownBatchJob,
    cancel_batch_job,
    follow_up_of,
    get_batch_job,
    job_item_outcomes,
    list_batch_jobs,
    retry_failed,
)
from invoice_pipelines.queue.requests import (
    CREDIT_NOTES,
    DOCUMENTS,
    INVOICE_KINDS,
    BatchRequestError,
    enqueue_customer_lines,
    enqueue_sales_orders,
    follow_up_options,
    local_runner_name,
    parse_order_ids,
)

# exit codes: 0 done without failures, 1 finished with failed orders (or failed/cancelled), 2 bad request
EXIT_OK, EXIT_FAILURES, EXIT_BAD_REQUEST = 0, 1, 2


def _engine():  # an Engine
    from invoice_pipelines.db.engine import make_engine

    return make_engine()


def _who(args: argparse.Namespace) -> str:
    return getattr(args, "created_by", None) or getpass.getuser()


class ProgressBar:
    """One line on stderr, redrawn per chunk on a terminal; a line per 10 % otherwise."""

    def __init__(
        self,
        stream: TextIO | None = None,
        width: int = 30,
        unit: str = "orders",
        done: str = "invoiced",
    ) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.unit, self.done = unit, done
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self.last_decile = -1

    def update(self, job: BatchJob) -> None:
        total = max(job.total_count, 1)
        share = min(job.processed_count / total, 1.0)
        filled = int(share * self.width)
        elapsed = time.monotonic() - self.started
        rate = job.processed_count / elapsed if elapsed > 0 else 0.0
        remaining = (job.total_count - job.processed_count) / rate if rate > 0 else None
        eta = (
            f" ETA {remaining:,.0f}s"
            if remaining is not None and job.processed_count < job.total_count
            else ""
        )
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {job.processed_count:,}/{job.total_count:,} {self.unit} "
            f"({share:.0%}) {job.successful_count:,} {self.done}, {job.failed_count:,} failed, "
            f"{job.skipped_count:,} skipped, {rate:,.0f}/s{eta}"
        )
        if self.tty:
            self.stream.write("\r" + line.ljust(110))
        elif int(share * 10) != self.last_decile:
            self.last_decile = int(share * 10)
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _exit_code(job: BatchJob) -> int:
    return EXIT_OK if job.status == "completed" else EXIT_FAILURES


def _counted(job: BatchJob) -> bool:
    """A job's orders are counted when it starts (an `all_reviewed` request names none)."""
    return job.status != "pending" or job.total_count > 0


def _failed_item(f: dict) -> str:
    payload = f["payload"] if isinstance(f["payload"], dict) else {}
    order = f["sales_order_id"] or payload.get("sales_order_id")
    customer = f["customer_id"] or payload.get("customer_id")
    invoice = f.get("sales_invoice_id") if not order and not customer else None
    what = (
        f"order {order}"
        if order
        else f"customer {customer}"
        if customer
        else f"invoice {payload['invoice_number']}"  # a credit note of a credit_notes job
        if payload.get("invoice_number")
        else f"invoice {invoice}"
        if invoice
        else "item"
    )
    reason = ": ".join(str(part) for part in (f["error_code"], f["error_message"]) if part)
    return f"    #{f['position']} {what}: {reason or 'failed (no reason recorded)'}"


def format_job(job: BatchJob, failures: list[dict] | None = None) -> str:
    """A job as `batch-status` shows it; a value the job does not have is left out, never `None`."""
    invoice_date = (
        f"invoice date {job.invoice_date}"
        if job.invoice_date
        else "invoice date: the day it runs (organization's time zone)"
    )
    created = f"created at {job.created_at:%Y-%m-%d %H:%M:%S} UTC" + (
        f" by {job.created_by}" if job.created_by else ""
    )
    lines = [
        f"batch job {job.id} ({job.kind.replace('_', ' ')}) for {job.organization_slug}: {job.status}"
        + (" (cancel requested)" if job.cancel_requested and job.status == "processing" else ""),
        (
            f"  orders: {job.total_count:,} requested, {job.processed_count:,} processed, "
            f"{job.successful_count:,} invoiced, {job.failed_count:,} failed, "
            f"{job.skipped_count:,} skipped (already invoiced)"
            if _counted(job)
            else "  orders: counted when the job starts"
        ),
        f"  {invoice_date}, due after {job.due_days} days; {created}",
    ]
    unit = "orders"
    if job.kind in INVOICE_KINDS:  # documents or communications: items are sales invoices
        unit = "invoices"
        done = "written" if job.kind == DOCUMENTS else "sent"
        lines[1:3] = [
            f"  invoices: {job.total_count:,} requested, {job.processed_count:,} processed, "
            f"{job.successful_count:,} {done}, {job.failed_count:,} failed, "
            f"{job.skipped_count:,} skipped"
            if _counted(job)
            else "  invoices: counted when the job starts",
            f"  {created}",
        ]
    elif job.kind == CREDIT_NOTES:
        unit = "credit notes"
        day = (
            f"dated {job.invoice_date} unless an item gives its date"
            if job.invoice_date
            else "dated the day they are issued unless an item gives its date"
        )
        lines[1:3] = [
            f"  credit notes: {job.total_count:,} requested, {job.processed_count:,} processed, "
            f"{job.successful_count:,} issued, {job.failed_count:,} refused",
            f"  {day}; {created}",
        ]
    if job.started_at:
        timing = f"  started {job.started_at:%H:%M:%S} UTC"
        if job.duration_seconds is not None:
            rate = job.processed_count / job.duration_seconds if job.duration_seconds > 0 else 0
            timing += f", took {job.duration_seconds:,.2f}s ({rate:,.0f} {unit}/s)"
        elif job.estimated_duration_seconds is not None:
            timing += f", estimated {job.estimated_duration_seconds:,.1f}s in total"
        lines.append(timing)
    if job.retry_of_job_id:
        lines.append(f"  retry of batch job {job.retry_of_job_id}")
    if job.failure_reason:
        lines.append(f"  reason: {job.failure_reason}")
    if failures:
        lines.append(f"  failed items (first {len(failures)}):")
        lines.extend(_failed_item(f) for f in failures)
        if job.failed_count > len(failures):
            lines.append(f"    ... and {job.failed_count - len(failures):,} more")
    if job.failed_count and job.done:
        lines.append(f"  retry the failed items: invoice-pipelines batch-retry {job.id}")
    return "\n".join(lines)


LIST_COLUMNS = ("id", "organization", "status", "kind", "orders", "invoiced", "failed", "created")


def format_job_list(jobs: list[BatchJob]) -> str:
    """Jobs as `batch-list` shows them: one line each, most recent first, aligned columns."""
    rows = [
        (
            str(job.id),
            job.organization_slug,
            job.status + (" (cancel requested)" if job.cancel_requested and not job.done else ""),
            job.kind.replace("_", " "),
            f"{job.processed_count:,}/{job.total_count:,}" if _counted(job) else "-",
            f"{job.successful_count:,}",
            f"{job.failed_count:,}",
            f"{job.created_at:%Y-%m-%d %H:%M} UTC",
        )
        for job in jobs
    ]
    widths = [max(len(r[i]) for r in [LIST_COLUMNS, *rows]) for i in range(len(LIST_COLUMNS))]
    numeric = {0, 4, 5, 6}
    return "\n".join(
        "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [LIST_COLUMNS, *rows]
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
    engine = _engine()
    runner = local_runner_name() if args.wait else None
    common = {
        "invoice_date": args.invoice_date,
        "due_days": args.due_days,
        "created_by": _who(args),
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
            job_id = enqueue_customer_lines(engine, args.org, entries, **common)
        elif args.orders:
            job_id = enqueue_sales_orders(
                engine, args.org, order_ids=parse_order_ids(args.orders), **common
            )
        else:
            job_id = enqueue_sales_orders(
                engine, args.org, all_reviewed=True, up_to=args.up_to, **common
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
    print(format_job(job, job_item_outcomes(engine, job, limit=10) if job.failed_count else None))
    _print_follow_up(engine, job)
    return _exit_code(job)


def _print_follow_up(engine, job: BatchJob) -> None:
    """Where the documents or sending an invoicing job asked for stand (queued with it)."""
    follow_up = follow_up_of(engine, job)
    if follow_up is not None:
        print(
            f"  then: {follow_up.kind} job {follow_up.id} ({follow_up.status}); the sensor starts "
            f"it, or: invoice-pipelines batch-run {follow_up.id}"
        )


def run_batch_status(args: argparse.Namespace) -> int:
    """Print one job: status, counts, timing, the first failed items."""
    engine = _engine()
    try:
        job = get_batch_job(engine, args.job_id)
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines batch-status: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    failures = job_item_outcomes(engine, job, limit=10) if job.failed_count else None
    if getattr(args, "json", False):
        print(json.dumps(job.to_json_dict(), default=str))
    else:
        print(format_job(job, failures))
    return EXIT_OK


def run_batch_cancel(args: argparse.Namespace) -> int:
    """Cancel a job (a processing job stops at its next chunk boundary)."""
    engine = _engine()
    try:
        job = cancel_batch_job(engine, args.job_id, cancelled_by=_who(args))
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines batch-cancel: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(format_job(job))
    return EXIT_OK


def run_batch_retry(args: argparse.Namespace) -> int:
    """Queue a new job over exactly the failed items of a finished job; prints the new job id."""
    engine = _engine()
    try:
        new_id = retry_failed(engine, args.job_id, created_by=_who(args))
    except (UnknownBatchJob, BatchRequestError) as exc:
        print(f"invoice-pipelines batch-retry: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    if new_id is None:
        print(f"batch job {args.job_id} has no failed items", file=sys.stderr)
        return EXIT_OK
    print(new_id)
    return EXIT_OK


def run_batch_list(args: argparse.Namespace) -> int:
    """Recent jobs, most recent first: of one organization or all, optionally in one status."""
    engine = _engine()
    try:
        jobs = list_batch_jobs(engine, args.org, status=args.status, limit=args.limit)
    except BatchRequestError as exc:
        print(f"invoice-pipelines batch-list: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    if getattr(args, "json", False):
        print(json.dumps([job.to_json_dict() for job in jobs], default=str))
    elif not jobs:
        scope = " ".join(
            part
            for part in (
                args.status,
                "batch jobs",
                f"for {args.org}" if args.org else "",
            )
            if part
        )
        print(f"no {scope}")
    else:
        print(format_job_list(jobs))
    return EXIT_OK


def print_queued(job_id: int) -> None:
    """What a queued documents, communications or credit notes job tells its user (stderr)."""
    print(
        f"batch job {job_id} queued; invoice_batch_jobs_sensor starts it (or: invoice-pipelines "
        f"batch-run {job_id}). Follow it with: invoice-pipelines batch-status {job_id}",
        file=sys.stderr,
    )


def run_batch_credit_notes(args: argparse.Namespace) -> int:
    """Queue a credit_notes job from a JSON file and print its id; with --wait issue them here."""
    from invoice_pipelines.billing.credit_note_jobs import enqueue_credit_notes

    engine = _engine()
    runner = local_runner_name() if args.wait else None
    try:
        items = json.loads(Path(args.items).read_text())
        job_id = enqueue_credit_notes(
            engine, args.org, items, issue_date=args.date, created_by=_who(args), runner=runner
        )
    except (BatchRequestError, OSError, json.JSONDecodeError) as exc:
        print(f"invoice-pipelines batch-credit-notes: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(job_id, flush=True)
    if not args.wait:
        print_queued(job_id)
        return EXIT_OK
    return process_credit_notes(engine, job_id, args.chunk_size, runner)


def process_credit_notes(engine, job_id: int, chunk_size: int | None, runner: str) -> int:
    """Issue a credit_notes job's credit notes here with a progress bar; its summary, the
    refused items and the credit notes issued (`batch-credit-notes --wait`, `batch-run`)."""
    from invoice_pipelines.billing.credit_note_jobs import (
        DEFAULT_CHUNK_SIZE as CREDIT_NOTE_CHUNK,
    )
    from invoice_pipelines.billing.credit_note_jobs import (
        issued_credit_notes,
        run_credit_note_job,
    )

    bar = ProgressBar(unit="credit notes", done="issued")
    try:
        job = run_credit_note_job(
            engine,
            job_id,
            chunk_size=chunk_size or CREDIT_NOTE_CHUNK,
            runner=runner,
            on_progress=bar.update,
        )
    finally:
        bar.close()
    print(format_job(job, job_item_outcomes(engine, job, limit=10) if job.failed_count else None))
    issued = issued_credit_notes(engine, job, limit=10)
    if issued:
        print(f"  issued (first {len(issued)}):")
    for note in issued:
        print(
            f"    #{note['position']} {note['credit_note']} for invoice {note['invoice']}: "
            f"{note['gross_total']}"
        )
    return _exit_code(job)


def add_commands(sub) -> None:
    p = sub.add_parser("batch-invoice", help="enqueue a batch invoicing job")
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

    p = sub.add_parser("batch-status", help="show a batch job")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_batch_status)

    p = sub.add_parser("batch-list", help="list recent batch jobs, most recent first")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--status", choices=BATCH_JOB_STATUSES, help="only jobs in this status")
    p.add_argument(
        "--limit", type=positive_int, default=20, help="at most this many jobs (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=run_batch_list)

    p = sub.add_parser("batch-cancel", help="cancel a pending or processing batch job")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_batch_cancel)

    p = sub.add_parser("batch-retry", help="new batch job over exactly the failed orders of a job")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_batch_retry)

    p = sub.add_parser(
        "batch-credit-notes",
        help="queue credit notes for many sales invoices (a JSON file of items), each issued once",
    )
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
    p = sub.add_parser(
        "credit-note",
        help="issue a credit note (type 381) for a sales invoice: in full, given lines, or a net "
        "amount per VAT rate",
    )
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


def run_credit_note(args: argparse.Namespace) -> int:
    """Issue the credit note; print it as JSON (number, amounts, the invoice it corrects)."""
    from invoice_pipelines.billing.credit_notes import (
        CreditNoteRefused,
        issue_credit_note,
        parse_amounts,
        parse_lines,
    )
    from invoice_pipelines.db.tenancy import UnknownOrganization, resolve_organization

    engine = _engine()
    try:
        organization = resolve_organization(engine, args.org)
        note = issue_credit_note(
            engine,
            organization,
            args.invoice,
            reason=args.reason,
            lines=parse_lines(args.lines),
            amounts=parse_amounts(getattr(args, "amounts", None)),
            issue_date=args.date,
            created_by=_who(args),
        )
    except UnknownOrganization:
        print(
            f"invoice-pipelines credit-note: there is no organization {args.org!r}", file=sys.stderr
        )
        return EXIT_BAD_REQUEST
    except CreditNoteRefused as exc:
        print(f"invoice-pipelines credit-note: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(json.dumps(note.to_json_dict()))
    return EXIT_OK
