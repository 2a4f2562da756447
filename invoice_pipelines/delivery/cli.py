"""`invoice-pipelines send-invoices`: the function the delivery asset calls, from the command line
(JSON summary on the last line); `batch-documents`, `batch-send` and `batch-run`: documents and
communications jobs of the batch jobs queue, and any queued job of a kind the queue runs itself
(`queue.commands.run_here`; `documents` itself is in documents/cli.py, which registers the
documents kind)."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.cli_args import id_list, positive_int, positive_number
from invoice_pipelines.cli_commands import help_of
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL
from invoice_pipelines.delivery.kind import COMMUNICATIONS
from invoice_pipelines.queue.kinds import register


def add_commands(sub) -> None:
    register(COMMUNICATIONS, _communications_kind)  # batch-run sends queued communications
    p = sub.add_parser("send-invoices", help=help_of("send-invoices"))
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--invoices", type=id_list, default=[], help="sales invoice ids; default: all never sent"
    )
    p.add_argument("--retry-failed", action="store_true", help="send failed deliveries again")
    p.add_argument("--resend", action="store_true", help="send the given invoices again")
    p.add_argument(
        "--per-second", type=positive_number, default=50.0, help="messages per second at most"
    )
    p.add_argument("--connections", type=positive_int, default=2, help="connections side by side")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.set_defaults(func=run_send)

    p = sub.add_parser("batch-documents", help=help_of("batch-documents"))
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids in print order, e.g. 3,1,2")
    p.add_argument("--combined-pdf", action="store_true", help="also one PDF of them all")
    _queue_options(p)
    p.set_defaults(func=run_batch_documents)
    p = sub.add_parser("batch-send", help=help_of("batch-send"))
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids, e.g. 1,2")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.add_argument("--resend", action="store_true", help="send again what was sent before")
    _queue_options(p)
    p.set_defaults(func=run_batch_send)
    p = sub.add_parser(
        "batch-run",
        help=help_of("batch-run"),
    )
    p.add_argument("job_id", type=positive_int)
    p.add_argument("--chunk-size", type=positive_int, default=200, help="invoices per chunk")
    p.set_defaults(func=run_batch_run)


def _queue_options(p) -> None:
    p.add_argument("--created-by", default=None, help="who asks (audit log); default: you")
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=positive_int, default=200, help="invoices per chunk with --wait"
    )


def run_send(args: argparse.Namespace) -> int:
    from invoice_pipelines.delivery.pipeline import AlreadySending, send_invoices
    from invoice_pipelines.queue.commands import EnvResources, command_engine
    from invoice_pipelines.resources.channels import open_channel

    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    resources = EnvResources()
    try:
        summary = send_invoices(
            command_engine(),
            resources.document_store,
            open_channel(args.channel, resources),
            args.org,
            args.invoices or None,
            retry_failed=args.retry_failed,
            resend=args.resend,
            max_per_second=args.per_second,
            connections=args.connections,
            requested_by="cli",
        )
    except AlreadySending as exc:
        print(f"invoice-pipelines send-invoices: {exc}; try again when it has finished")
        return 2
    print(
        json.dumps(
            {
                "sent": summary.sent,
                "failed": {str(k): v for k, v in summary.failed.items()},
                "unknown": {str(k): v for k, v in summary.unknown.items()},
                "skipped": {str(k): v for k, v in summary.skipped.items()},
                "retries": summary.retries,
            }
        )
    )
    return 1 if summary.failed or summary.unknown else 0


def run_batch_documents(args: argparse.Namespace) -> int:
    return _enqueue_and_maybe_run(args, "documents", combined_pdf=args.combined_pdf)


def run_batch_send(args: argparse.Namespace) -> int:
    return _enqueue_and_maybe_run(args, "communications", channel=args.channel, resend=args.resend)


def _enqueue_and_maybe_run(args: argparse.Namespace, kind: str, **options) -> int:
    import sys

    from invoice_pipelines.queue.commands import (
        EXIT_BAD_REQUEST,
        EXIT_OK,
        command_engine,
        print_queued,
        run_here,
        who,
    )
    from invoice_pipelines.queue.items import enqueue_invoice_job
    from invoice_pipelines.queue.requests import BatchRequestError, local_runner_name

    command = f"batch-{'documents' if kind == 'documents' else 'send'}"
    engine = command_engine()
    runner = local_runner_name() if args.wait else None
    try:
        job_id = enqueue_invoice_job(
            engine,
            args.org,
            kind,
            args.invoices,
            created_by=who(args),
            runner=runner,
            **options,
        )
    except BatchRequestError as exc:
        print(f"invoice-pipelines {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    print(job_id, flush=True)
    if not args.wait:
        print_queued(job_id)
        return EXIT_OK
    return run_here(engine, job_id, args.chunk_size, runner, command)


def run_batch_run(args: argparse.Namespace) -> int:
    from invoice_pipelines.queue.commands import command_engine, run_here
    from invoice_pipelines.queue.requests import local_runner_name

    return run_here(
        command_engine(), args.job_id, args.chunk_size, local_runner_name(), "batch-run"
    )


def _communications_kind():
    from invoice_pipelines.delivery.batch import COMMUNICATIONS_KIND

    return COMMUNICATIONS_KIND
