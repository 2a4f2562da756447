"""The commands every kind of batch job shares: `batch-status`, `batch-list`, `batch-cancel`,
`batch-retry` and `batch-run` (a queued job of any kind the queue runs itself, processed here
with a progress bar), the exit codes, who asks, and how an area's command queues a job over
invoices (`queue_invoice_job`). Each is an adapter over the queue's domain (queue/domain/); what
they print of a job is queue/commands/job_text.py's. queue/commands/cli.py adds the commands'
parsers, queue/area.py's table names each function here (the console script imports this module
when one runs); the kinds they meet are every area's, handed over as
`args.resources.batch_kinds` (`areas.kinds`); nothing here imports an area."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from contextlib import closing

from invoice_pipelines.queue.commands.job_text import (
    ProgressBar,
    format_job,
    format_job_list,
    no_jobs,
    print_queued,
)
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.job_kind import JobKind, RunSettings
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


def exit_code(job: BatchJob) -> int:
    return EXIT_OK if job.status == "completed" else EXIT_FAILURES


def refused(command: str, exc: Exception) -> int:
    """A request the queue refused: its one sentence on stderr, the bad request's exit code."""
    print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
    return EXIT_BAD_REQUEST


def batch_status(args: argparse.Namespace) -> int:
    """Print one job: status, counts, timing, the first failed items."""
    try:
        job = get_batch_job(args.resources.system_database, args.job_id)
    except UnknownBatchJob as exc:
        return refused("batch-status", exc)
    failures = (
        job_item_outcomes(args.resources.database, job, limit=10) if job.failed_count else None
    )
    if getattr(args, "json", False):
        print(json.dumps(job.to_json_dict(), default=str))
    else:
        print(format_job(job, args.resources.batch_kinds, failures))
    return EXIT_OK


def batch_cancel(args: argparse.Namespace) -> int:
    """Cancel a job (a processing job stops at its next chunk boundary)."""
    resources = args.resources
    try:
        job = cancel_batch_job(
            resources.database,
            args.job_id,
            system=resources.system_database,
            cancelled_by=who(args),
        )
    except UnknownBatchJob as exc:
        return refused("batch-cancel", exc)
    print(format_job(job, resources.batch_kinds))
    return EXIT_OK


def batch_retry(args: argparse.Namespace) -> int:
    """Queue a new job over exactly the failed items of a finished job; prints the new job id."""
    resources = args.resources
    try:
        new_id = retry_failed(
            resources.database, args.job_id, resources.batch_kinds,
            system=resources.system_database, created_by=who(args),
        )  # fmt: skip
    except (UnknownBatchJob, BatchRequestError) as exc:
        return refused("batch-retry", exc)
    if new_id is None:
        print(f"batch job {args.job_id} has no failed items", file=sys.stderr)
    else:
        print(new_id)
    return EXIT_OK


def batch_list(args: argparse.Namespace) -> int:
    """Recent jobs, most recent first: of one organization or all, optionally in one status."""
    resources = args.resources
    try:
        jobs = list_batch_jobs(
            resources.database, args.organization, system=resources.system_database,
            status=args.status, limit=args.limit,
        )  # fmt: skip
    except BatchRequestError as exc:
        return refused("batch-list", exc)
    if getattr(args, "json", False):
        print(json.dumps([job.to_json_dict() for job in jobs], default=str))
    else:
        print(format_job_list(jobs) if jobs else no_jobs(args.status, args.org))
    return EXIT_OK


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
        job, kind = runnable_here(resources, job_id, command)
    except (UnknownBatchJob, BatchRequestError) as exc:
        return refused(command, exc)
    bar = ProgressBar(unit=kind.reading.unit, done=kind.reading.done)
    settings = RunSettings(chunk_size or kind.runs.default_chunk_size, runner, bar.update)
    try:
        with closing(bar):
            job = run_job(engine, job, resources.batch_kinds, resources, settings)
    except Exception as exc:
        if not refusing(kind, exc, job):
            raise
        return refused(command, exc)
    print(job_done(engine, job, resources.batch_kinds, kind))
    return exit_code(job)


def refusing(kind: JobKind, exc: Exception, job: BatchJob) -> bool:
    """A request the queue refuses, or an exception the job's kind counts as a refusal (not a
    crash: one sentence, no traceback)."""
    known = isinstance(exc, UnknownBatchJob | BatchRequestError)
    return known or refusal(kind, exc, job) is not None


def runnable_here(resources: EnvResources, job_id: int, command: str) -> tuple[BatchJob, JobKind]:
    """The job and its kind, when its kind is one the queue runs itself (`batch-run`); else
    BatchRequestError naming what runs it."""
    job = get_batch_job(resources.system_database, job_id)
    kind = resources.batch_kinds.described(job.kind)
    if kind is None or kind.own_job is not None:
        runs_it = f" (batch-invoice --wait, or {kind.own_job.job_name})" if kind else ""
        raise BatchRequestError(
            f"batch job {job_id} is a {job.kind} job, which {command} does not run{runs_it}"
        )
    return job, kind


def job_done(engine, job: BatchJob, kinds: Kinds, kind: JobKind) -> str:
    """A job run here, as it ended: its summary, its first failed items, what its kind reports."""
    failures = job_item_outcomes(engine, job, limit=10) if job.failed_count else None
    lines = [format_job(job, kinds, failures)]
    lines += kind.reading.report(engine, job) if kind.reading.report else []
    if job.status == "pending":
        lines.append(f"  batch job {job.id} waits for the invoicing job it follows to finish")
    return "\n".join(lines)


def run_batch_list(args: argparse.Namespace) -> int:
    """`batch-list` (an unknown --org is the console script's one sentence, before it)."""
    return batch_list(args)


def run_batch_run(args: argparse.Namespace) -> int:
    """`batch-run`: process a queued job of a kind the queue runs itself, here, with a progress
    bar."""
    resources = args.resources
    return run_here(
        resources.database, args.job_id, args.chunk_size, local_runner_name(), "batch-run",
        resources,
    )  # fmt: skip


def queue_invoice_job(args: argparse.Namespace, kind: str, command: str, **options) -> int:
    """Queue a job of `kind` over the invoices `--invoices` names and print its id; with --wait
    run it here, with a progress bar (`batch-documents`, `batch-send`)."""
    engine, resources = args.resources.database, args.resources
    runner = local_runner_name() if args.wait else None
    try:
        job_id = enqueue_invoice_job(
            engine, args.organization, resources.batch_kinds[kind], args.invoices,
            created_by=who(args), runner=runner, **options,
        )  # fmt: skip
    except BatchRequestError as exc:
        return refused(command, exc)
    return queued_or_run_here(engine, job_id, args, runner, command)
