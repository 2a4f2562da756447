"""`invoice-pipelines send-invoices`: the function the delivery asset calls, from the command line
(JSON summary on the last line); `batch-documents`, `batch-send` and `batch-run`: documents and
communications jobs of the batch jobs queue, which share one runner (`documents` itself is in
documents/cli.py)."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.cli_args import id_list, positive_int, positive_number
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL


def add_commands(sub) -> None:
    p = sub.add_parser("send-invoices", help="e-mail invoices that have documents, at most once")
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

    p = sub.add_parser(
        "batch-documents", help="queue a documents job over invoices (optional combined PDF)"
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids in print order, e.g. 3,1,2")
    p.add_argument("--combined-pdf", action="store_true", help="also one PDF of them all")
    _queue_options(p)
    p.set_defaults(func=run_batch_documents)
    p = sub.add_parser("batch-send", help="queue a communications job: send invoices, once each")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids, e.g. 1,2")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.add_argument("--resend", action="store_true", help="send again what was sent before")
    _queue_options(p)
    p.set_defaults(func=run_batch_send)
    p = sub.add_parser(
        "batch-run",
        help="process a queued documents, communications or credit notes job here, with progress",
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
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.delivery.pipeline import AlreadySending, send_invoices
    from invoice_pipelines.resources.stores import file_store_from_env

    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    channel = _channel(args.channel)
    try:
        summary = send_invoices(
            make_engine(),
            file_store_from_env("documents"),
            channel,
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

    from invoice_pipelines.billing.cli import (
        EXIT_BAD_REQUEST,
        EXIT_OK,
        _engine,
        _who,
        print_queued,
    )
    from invoice_pipelines.queue.items import enqueue_invoice_job
    from invoice_pipelines.queue.requests import BatchRequestError, local_runner_name

    engine = _engine()
    runner = local_runner_name() if args.wait else None
    try:
        job_id = enqueue_invoice_job(
            engine,
            args.org,
            kind,
            args.invoices,
            created_by=_who(args),
            runner=runner,
            **options,
        )
    except BatchRequestError as exc:
        print(
            f"invoice-pipelines batch-{'documents' if kind == 'documents' else 'send'}: {exc}",
            file=sys.stderr,
        )
        return EXIT_BAD_REQUEST
    print(job_id, flush=True)
    if not args.wait:
        print_queued(job_id)
        return EXIT_OK
    return _process(engine, job_id, args.chunk_size, runner)


def run_batch_run(args: argparse.Namespace) -> int:
    from invoice_pipelines.billing.cli import _engine
    from invoice_pipelines.queue.requests import local_runner_name

    return _process(_engine(), args.job_id, args.chunk_size, local_runner_name())


def _process(engine, job_id: int, chunk_size: int, runner: str) -> int:
    import sys

    from invoice_pipelines.billing.cli import (
        EXIT_BAD_REQUEST,
        ProgressBar,
        _exit_code,
        format_job,
        process_credit_notes,
    )
    from invoice_pipelines.delivery.batch import communications_work
    from invoice_pipelines.delivery.pipeline import AlreadySending
    from invoice_pipelines.documents.batch import (
        combined_pdf_of,
        documents_work,
        run_invoice_job,
    )
    from invoice_pipelines.queue.jobs import UnknownBatchJob, get_batch_job, job_item_outcomes
    from invoice_pipelines.queue.requests import BatchRequestError
    from invoice_pipelines.resources.stores import file_store_from_env

    try:
        kind = get_batch_job(engine, job_id).kind
    except UnknownBatchJob as exc:
        print(f"invoice-pipelines batch-run: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    if kind == "credit_notes":
        return process_credit_notes(engine, job_id, chunk_size, runner)
    store = file_store_from_env("documents")
    bar = ProgressBar()
    try:
        work = (
            documents_work(engine, store, run_id=runner)
            if kind == "documents"
            else communications_work(engine, store, _channel, run_id=runner)
        )
        job = run_invoice_job(
            engine,
            job_id,
            work,
            store=store,
            chunk_size=chunk_size,
            runner=runner,
            on_progress=bar.update,
        )
    except (UnknownBatchJob, BatchRequestError, AlreadySending) as exc:
        print(f"invoice-pipelines batch-run: {exc}", file=sys.stderr)
        return EXIT_BAD_REQUEST
    finally:
        bar.close()
    print(format_job(job, job_item_outcomes(engine, job, limit=10) if job.failed_count else None))
    combined = combined_pdf_of(engine, job) if job.kind == "documents" else None
    if combined:
        print(
            f"  combined PDF: {combined['path']} ({combined['pages']} pages, "
            f"{combined['size_bytes']:,} bytes, {combined['invoices']} invoices"
            + (f", {combined['missing_count']} not in it" if combined["missing_count"] else "")
            + ")"
        )
    if job.status == "pending":
        print(f"  batch job {job.id} waits for the invoicing job it follows to finish")
    return _exit_code(job)


def _channel(name: str):
    from invoice_pipelines.delivery.pipeline import EmailChannel, TextChannel
    from invoice_pipelines.resources.mail import mailer_from_env
    from invoice_pipelines.resources.messaging import provider_from_env

    if name == "email":
        mailer = mailer_from_env()
        if not isinstance(mailer.password, str):  # an EnvVar outside Dagster: read it here
            mailer = mailer.model_copy(update={"password": mailer.password.get_value() or ""})
        return EmailChannel(mailer)
    provider = provider_from_env()
    if not isinstance(provider.token, str):
        provider = provider.model_copy(update={"token": provider.token.get_value() or ""})
    return TextChannel(provider, whatsapp=name == "whatsapp")
