"""The commands every kind of batch job shares: `batch-status`, `batch-list`, `batch-cancel`,
`batch-retry` and `batch-run` (a queued job of a kind the queue runs itself, processed here with a
progress bar); and how an area's command queues a job over invoices (`queue_invoice_job`). What they do and print is `queue/commands.py`; the kinds they meet are every
area's, handed to every command as `args.resources.batch_kinds` (`areas.kinds`)."""

from __future__ import annotations

import argparse

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.db.tables import BATCH_JOB_STATUSES


def add_commands(sub) -> None:
    p = sub.add_parser("batch-status")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_batch_status)

    p = sub.add_parser("batch-list")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--status", choices=BATCH_JOB_STATUSES, help="only jobs in this status")
    p.add_argument(
        "--limit", type=positive_int, default=20, help="at most this many jobs (default 20)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=run_batch_list)

    p = sub.add_parser("batch-cancel")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_batch_cancel)

    p = sub.add_parser("batch-retry")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--created-by", default=None)
    p.set_defaults(func=run_batch_retry)

    p = sub.add_parser("batch-run")
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--chunk-size", type=positive_int, default=200, help="invoices per chunk")
    p.set_defaults(func=run_batch_run)


def run_batch_status(args: argparse.Namespace) -> int:
    """Print one job: status, counts, timing, the first failed items."""
    from invoice_pipelines.queue.commands import batch_status

    return batch_status(args)


def run_batch_list(args: argparse.Namespace) -> int:
    """Recent jobs, most recent first: of one organization or all, optionally in one status."""
    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.queue.commands import batch_list

    if args.org is not None:  # an unknown one is the console script's one sentence
        resolve_organization(args.resources.database, args.org)
    return batch_list(args)


def run_batch_cancel(args: argparse.Namespace) -> int:
    """Cancel a job (a processing job stops at its next chunk boundary)."""
    from invoice_pipelines.queue.commands import batch_cancel

    return batch_cancel(args)


def run_batch_retry(args: argparse.Namespace) -> int:
    """Queue a new job over exactly the failed items of a finished job; prints the new job id."""
    from invoice_pipelines.queue.commands import batch_retry

    return batch_retry(args)


def run_batch_run(args: argparse.Namespace) -> int:
    """Process a queued job of a kind the queue runs itself, here, with a progress bar."""
    from invoice_pipelines.queue.commands import run_here
    from invoice_pipelines.queue.requests import local_runner_name

    return run_here(
        args.resources.database,
        args.job_id,
        args.chunk_size,
        local_runner_name(),
        "batch-run",
        args.resources,
    )


def queue_options(p) -> None:
    """The options of a command that queues a job over invoices (`batch-documents`,
    `batch-send`)."""
    p.add_argument("--created-by", default=None, help="who asks (audit log); default: you")
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=positive_int, default=200, help="invoices per chunk with --wait"
    )


def queue_invoice_job(args: argparse.Namespace, kind: str, command: str, **options) -> int:
    """Queue a job of `kind` over the invoices `--invoices` names and print its id; with --wait
    run it here, with a progress bar (`batch-documents`, `batch-send`)."""
    import sys

    from invoice_pipelines.db.tenancy import resolve_organization
    from invoice_pipelines.queue.commands import (
        EXIT_BAD_REQUEST,
        queued_or_run_here,
        who,
    )
    from invoice_pipelines.queue.items import enqueue_invoice_job
    from invoice_pipelines.queue.requests import BatchRequestError, local_runner_name

    engine = args.resources.database
    organization = resolve_organization(engine, args.org)["id"]
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
