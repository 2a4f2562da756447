"""What `invoice-pipelines send-invoices` and `batch-send` do. `send-invoices`: the function the
delivery asset calls, from the command line (JSON summary on the last line); `batch-send`: a
communications job of the batch jobs queue (`batch-documents` is the documents area's,
`batch-run` the queue's). Their parsers are delivery/commands/cli.py's; delivery/area.py's table names
each function here, and the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.core.channels import PEPPOL
from invoice_pipelines.delivery.domain.pipeline import AlreadySending, send_invoices
from invoice_pipelines.queue.commands.run import queue_invoice_job
from invoice_pipelines.resources.messaging.channels import open_channel


def run_send(args: argparse.Namespace) -> int:
    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    resources = args.resources  # the runs' resources by their names, as commands have them
    channel = open_channel(args.channel, resources)
    # over e-mail, the invoices of customers on Peppol go over Peppol (delivery/domain/peppol.py)
    peppol = open_channel(PEPPOL, resources) if channel.carries_files else None
    try:
        summary = send_invoices(
            resources.database,
            resources.document_store,
            channel,
            args.organization,
            args.invoices or None,
            retry_failed=args.retry_failed,
            resend=args.resend,
            max_per_second=args.per_second,
            connections=args.connections,
            requested_by="cli",
            peppol=peppol,
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
                "sent_by_channel": summary.by_channel,
                "not_over_peppol": {str(k): v for k, v in summary.fallbacks.items()},
            }
        )
    )
    return 1 if summary.failed or summary.unknown else 0


def run_batch_send(args: argparse.Namespace) -> int:
    return queue_invoice_job(
        args, KindName.COMMUNICATIONS, "batch-send", channel=args.channel, resend=args.resend
    )
