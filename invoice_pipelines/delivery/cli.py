"""`invoice-pipelines send-invoices`: the function the delivery asset calls, from the command line
(JSON summary on the last line); `batch-send`: a communications job of the batch jobs queue
(`batch-documents` is the documents area's, `batch-run` the queue's); `peppol lookup` and
`peppol send` (delivery/cli_peppol.py). Each command's help is in delivery/area.py."""

from __future__ import annotations

import argparse
import json

from invoice_pipelines.cli_args import id_list, positive_int, positive_number
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL
from invoice_pipelines.delivery.cli_peppol import VERBS as PEPPOL_VERBS
from invoice_pipelines.delivery.cli_peppol import add_peppol_commands
from invoice_pipelines.queue.cli import queue_options


def add_commands(sub) -> None:
    p = sub.add_parser("send-invoices")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--invoices",
        type=id_list,
        default=[],
        help="sales invoice ids (history too); default: all never sent but history",
    )
    p.add_argument("--retry-failed", action="store_true", help="send failed deliveries again")
    p.add_argument("--resend", action="store_true", help="send the given invoices again")
    p.add_argument(
        "--per-second", type=positive_number, default=50.0, help="messages per second at most"
    )
    p.add_argument("--connections", type=positive_int, default=2, help="connections side by side")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.set_defaults(func=run_send)

    p = sub.add_parser("batch-send")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids, e.g. 1,2")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.add_argument("--resend", action="store_true", help="send again what was sent before")
    queue_options(p)
    p.set_defaults(func=run_batch_send)

    add_peppol_commands(sub, run_peppol_command)


def run_send(args: argparse.Namespace) -> int:
    from invoice_pipelines.core.channels import PEPPOL
    from invoice_pipelines.delivery.pipeline import AlreadySending, send_invoices
    from invoice_pipelines.resources.channels import open_channel

    if args.resend and not args.invoices:
        print("invoice-pipelines: --resend needs --invoices")
        return 2
    resources = args.resources  # the runs' resources by their names, as commands have them
    channel = open_channel(args.channel, resources)
    # over e-mail, the invoices of customers on Peppol go over Peppol (delivery/peppol.py)
    peppol = open_channel(PEPPOL, resources) if channel.carries_files else None
    try:
        summary = send_invoices(
            resources.database,
            resources.document_store,
            channel,
            args.org,
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
    from invoice_pipelines.core.batch_kinds import KindName
    from invoice_pipelines.queue.commands import queue_invoice_job

    return queue_invoice_job(
        args, KindName.COMMUNICATIONS, "batch-send", channel=args.channel, resend=args.resend
    )


def run_peppol_command(args: argparse.Namespace) -> int:
    args.parser.print_usage()
    print(f"invoice-pipelines peppol: name one of {PEPPOL_VERBS}")
    return 2
