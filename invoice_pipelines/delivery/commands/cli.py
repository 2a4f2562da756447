"""The parsers of `invoice-pipelines send-invoices`, `batch-send` and `invoices list` (a
customer's invoices by name), with those of delivery's `peppol` verbs (delivery/commands/cli_peppol.py):
argparse alone, so `--help` and a usage error import no SQLAlchemy and none of the delivery's
work. What each does is named by delivery/area.py's table (with its help): `send-invoices` and
`batch-send` in delivery/commands/run.py, `invoices list` in delivery/commands/invoice_listing.py, `peppol
lookup`, `participant` and `send` in delivery/commands/peppol_commands.py."""

from __future__ import annotations

from invoice_pipelines.cli_args import id_list, positive_int, positive_number
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL
from invoice_pipelines.delivery.commands.cli_peppol import add_peppol_commands
from invoice_pipelines.queue.commands.cli import queue_options


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

    p = sub.add_parser("batch-send")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids, e.g. 1,2")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.add_argument("--resend", action="store_true", help="send again what was sent before")
    queue_options(p)

    add_peppol_commands(sub)
    _add_invoices_command(sub)


# the states `invoices list --delivery` takes: the newest delivery's, or none (db/tables.py's
# DELIVERY_STATUSES; written here so `--help` imports no SQLAlchemy)
DELIVERY_STATES = ("not-sent", "sending", "sent", "failed", "unknown")
INVOICE_STATUSES = ("open", "partially_paid", "paid", "cancelled")


def _add_invoices_command(sub) -> None:
    invoices = sub.add_parser("invoices")
    invoices.set_defaults(parser=invoices)
    verbs = invoices.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "list", help="a customer's invoices, newest first: number, date, total, delivery state"
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--customer", required=True, help="a part of the customer's name (any case), or its number"
    )
    p.add_argument("--status", choices=INVOICE_STATUSES, help="the invoice's status")
    p.add_argument("--delivery", choices=DELIVERY_STATES, help="the newest delivery's state")
    p.add_argument("--limit", type=positive_int, default=50, help="the newest N (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object per invoice")
