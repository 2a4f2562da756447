"""What `invoice-pipelines send-invoices` and `batch-send` do. `send-invoices`: the function the
delivery asset calls, from the command line (JSON summary on the last line); `batch-send`: a
communications job of the batch jobs queue (`batch-documents` is the documents area's,
`batch-run` the queue's). Their parsers are delivery/commands/cli.py's; delivery/area.py's table names
each function here, and the console script imports this module only when one of them runs."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.delivery.domain.actions import send
from invoice_pipelines.delivery.domain.pipeline import AlreadySending
from invoice_pipelines.queue.commands.run import queue_invoice_job


def run_send(args: argparse.Namespace) -> int:
    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    try:
        summary = send(
            args.resources, args.channel, args.organization, args.invoices or None,
            retry_failed=args.retry_failed, resend=args.resend, max_per_second=args.per_second,
            connections=args.connections, requested_by="cli",
        )  # fmt: skip
    except AlreadySending as exc:
        print(f"invoice-pipelines send-invoices: {exc}; try again when it has finished")
        return 2
    print(json.dumps(summary.as_line()))
    return 0 if summary.settled else 1


def run_batch_send(args: argparse.Namespace) -> int:
    return queue_invoice_job(
        args, KindName.COMMUNICATIONS, "batch-send", channel=args.channel, resend=args.resend
    )
