"""What the queue's commands print of a job: the progress bar a job run here draws, a job as a
person reads it (`format_job`, `batch-status`), a list of jobs (`format_job_list`,
`batch-list`) and what a queued job tells its user (`print_queued`). Words only: the commands
(queue/commands/run.py) fetch and change the jobs."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from invoice_pipelines.queue.domain.job_kind import Reading, counted
from invoice_pipelines.queue.domain.jobs import BatchJob
from invoice_pipelines.queue.domain.known_kinds import Kinds


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


def no_jobs(status: str | None, org: str | None) -> str:
    """What `batch-list` says when no job fits: "no failed batch jobs for acme"."""
    scope = " ".join(part for part in (status, "batch jobs", f"for {org}" if org else "") if part)
    return f"no {scope}"


def print_queued(job_id: int, kind: str, kinds: Kinds) -> None:
    """What a queued documents, communications or credit notes job tells its user (stderr)."""
    known = kinds.described(kind)
    sensor = (known.queue_sensor if known else None) or "its sensor"
    print(
        f"batch job {job_id} queued; {sensor} starts it (or: invoice-pipelines "
        f"batch-run {job_id}). Follow it with: invoice-pipelines batch-status {job_id}",
        file=sys.stderr,
    )
