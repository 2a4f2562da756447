"""The commands every kind of batch job shares, and what they print: `batch-status`, `batch-list`,
`batch-cancel`, `batch-retry` and `batch-run` (a queued job of any kind the queue runs itself,
processed here with a progress bar), the job as a person reads it (`format_job`), the exit codes,
who asks, the resources a command uses (`args.resources`), and how an area's command queues a job
over invoices (`queue_invoice_job`). queue/commands/cli.py adds the commands' parsers, queue/area.py's
table names each function here (the console script imports this module when one runs); the
kinds they meet are every area's, handed over as `args.resources.batch_kinds` (`areas.kinds`);
nothing here imports an area."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import TextIO

from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.job_kind import Reading, RunSettings, counted
from invoice_pipelines.queue.domain.jobs import (
    BatchJob,
    UnknownBatchJob,
    cancel_batch_job,
    get_batch_job,
    job_item_outcomes,
    list_batch_jobs,
    retry_failed,
)
from invoice_pipelines.queue.domain.kinds import refusal, run_job
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import BatchRequestError, local_runner_name
from invoice_pipelines.resources.for_commands import EnvResources

# exit codes: 0 done without failures, 1 finished with failed orders (or failed/cancelled), 2 bad request
EXIT_OK, EXIT_FAILURES, EXIT_BAD_REQUEST = 0, 1, 2


def who(args: argparse.Namespace) -> str:
    """Who asks, for the audit log: `--created-by`, else the user running the command."""
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


def exit_code(job: BatchJob) -> int:
    return EXIT_OK if job.status == "completed" else EXIT_FAILURES


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


def format_job(job: BatchJob, kinds: Kinds, failures: list[dict] | None = None) -> str:
    """A job as `batch-status` shows it, in its kind's words (`JobKind.reading`, its kind from
    `kinds`); a value the job does not have is left out, never `None`."""
    created = f"created at {job.created_at:%Y-%m-%d %H:%M:%S} UTC" + (
        f" by {job.created_by}" if job.created_by else ""
    )
    kind = kinds.described(job.kind)
    reading = kind.reading if kind else Reading()
    lines = [
        f"batch job {job.id} ({job.kind.replace('_', ' ')}) for {job.organization_slug}: {job.status}"
        + (" (cancel requested)" if job.cancel_requested and job.status == "processing" else ""),
        *reading.summarize(job, created),
    ]
    if job.started_at:
        timing = f"  started {job.started_at:%H:%M:%S} UTC"
        if job.duration_seconds is not None:
            rate = job.processed_count / job.duration_seconds if job.duration_seconds > 0 else 0
            timing += f", took {job.duration_seconds:,.2f}s ({rate:,.0f} {reading.unit}/s)"
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
            f"{job.processed_count:,}/{job.total_count:,}" if counted(job) else "-",
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


def batch_status(args: argparse.Namespace) -> int:
    """Print one job: status, counts, timing, the first failed items."""
    engine = args.resources.database
    try:
        job = get_batch_job(args.resources.system_database, args.job_id)
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines batch-status: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    failures = job_item_outcomes(engine, job, limit=10) if job.failed_count else None
    if getattr(args, "json", False):
        print(json.dumps(job.to_json_dict(), default=str))
    else:
        print(format_job(job, args.resources.batch_kinds, failures))
    return EXIT_OK


def batch_cancel(args: argparse.Namespace) -> int:
    """Cancel a job (a processing job stops at its next chunk boundary)."""
    engine = args.resources.database
    try:
        job = cancel_batch_job(
            engine, args.job_id, system=args.resources.system_database, cancelled_by=who(args)
        )
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines batch-cancel: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(format_job(job, args.resources.batch_kinds))
    return EXIT_OK


def batch_retry(args: argparse.Namespace) -> int:
    """Queue a new job over exactly the failed items of a finished job; prints the new job id."""
    engine = args.resources.database
    try:
        new_id = retry_failed(
            engine,
            args.job_id,
            args.resources.batch_kinds,
            system=args.resources.system_database,
            created_by=who(args),
        )
    except (UnknownBatchJob, BatchRequestError) as exc:
        print(f"invoice-pipelines batch-retry: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    if new_id is None:
        print(f"batch job {args.job_id} has no failed items", file=sys.stderr)
        return EXIT_OK
    print(new_id)
    return EXIT_OK


def batch_list(args: argparse.Namespace) -> int:
    """Recent jobs, most recent first: of one organization or all, optionally in one status."""
    engine = args.resources.database
    try:
        jobs = list_batch_jobs(
            engine,
            args.organization,
            system=args.resources.system_database,
            status=args.status,
            limit=args.limit,
        )
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


def print_queued(job_id: int, kind: str, kinds: Kinds) -> None:
    """What a queued documents, communications or credit notes job tells its user (stderr)."""
    known = kinds.described(kind)
    sensor = (known.queue_sensor if known else None) or "its sensor"
    print(
        f"batch job {job_id} queued; {sensor} starts it (or: invoice-pipelines "
        f"batch-run {job_id}). Follow it with: invoice-pipelines batch-status {job_id}",
        file=sys.stderr,
    )


def queued_or_run_here(engine, job_id: int, args, runner: str, command: str) -> int:
    """A job a command queued: its id on stdout; then, with `--wait`, the job run here
    (`run_here`), else where to follow it (`print_queued`)."""
    print(job_id, flush=True)
    if not args.wait:
        job = get_batch_job(args.resources.system_database, job_id)
        print_queued(job_id, job.kind, args.resources.batch_kinds)
        return EXIT_OK
    return run_here(engine, job_id, args.chunk_size, runner, command, args.resources)


def run_here(
    engine, job_id: int, chunk_size: int | None, runner: str, command: str, resources: EnvResources
) -> int:
    """Process a queued job of a kind the queue runs itself, here, with a progress bar; its
    summary, its failed items and what its kind reports (`batch-run`, `--wait`). `resources` are
    the command's (`args.resources`)."""
    try:
        job = get_batch_job(resources.system_database, job_id)
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    kinds: Kinds = resources.batch_kinds
    kind = kinds.described(job.kind)
    if kind is None or kind.own_job is not None:
        print(
            f"invoice-pipelines {command}: batch job {job_id} is a {job.kind} job, which "
            f"{command} does not run"
            + (f" (batch-invoice --wait, or {kind.own_job.job_name})" if kind else ""),
            file=sys.stderr,
        )
        return EXIT_BAD_REQUEST
    bar = ProgressBar(unit=kind.reading.unit, done=kind.reading.done)
    settings = RunSettings(chunk_size or kind.runs.default_chunk_size, runner, bar.update)
    try:
        job = run_job(engine, job, kinds, resources, settings)
    except (UnknownBatchJob, BatchRequestError) as exc:
        print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    except Exception as exc:
        if refusal(kind, exc, job) is None:
            raise
        print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    finally:
        bar.close()
    failures = job_item_outcomes(engine, job, limit=10) if job.failed_count else None
    print(format_job(job, kinds, failures))
    for line in kind.reading.report(engine, job) if kind.reading.report else []:
        print(line)
    if job.status == "pending":
        print(f"  batch job {job.id} waits for the invoicing job it follows to finish")
    return exit_code(job)


def run_batch_list(args: argparse.Namespace) -> int:
    """`batch-list` (an unknown --org is the console script's one sentence, before it)."""
    return batch_list(args)


def run_batch_run(args: argparse.Namespace) -> int:
    """`batch-run`: process a queued job of a kind the queue runs itself, here, with a progress
    bar."""
    return run_here(
        args.resources.database,
        args.job_id,
        args.chunk_size,
        local_runner_name(),
        "batch-run",
        args.resources,
    )


def queue_invoice_job(args: argparse.Namespace, kind: str, command: str, **options) -> int:
    """Queue a job of `kind` over the invoices `--invoices` names and print its id; with --wait
    run it here, with a progress bar (`batch-documents`, `batch-send`)."""
    engine = args.resources.database
    organization = args.organization
    runner = local_runner_name() if args.wait else None
    try:
        job_id = enqueue_invoice_job(
            engine,
            organization,
            args.resources.batch_kinds[kind],
            args.invoices,
            created_by=who(args),
            runner=runner,
            **options,
        )
    except BatchRequestError as exc:
        print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    return queued_or_run_here(engine, job_id, args, runner, command)
