"""The parsers of `invoice-pipelines send-invoices` and `batch-send`, with those of delivery's
`peppol` verbs (delivery/cli_peppol.py): argparse alone, so `--help` and a usage error import no
SQLAlchemy and none of the delivery's work. What each does is named by delivery/area.py's table
(with its help): `send-invoices` and `batch-send` in delivery/commands.py, `peppol lookup`,
`participant` and `send` in delivery/peppol_commands.py."""

from __future__ import annotations

from invoice_pipelines.cli_args import id_list, positive_int, positive_number
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL
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

    p = sub.add_parser("batch-send")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoices", required=True, help="sales invoice ids, e.g. 1,2")
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, default=EMAIL)
    p.add_argument("--resend", action="store_true", help="send again what was sent before")
    queue_options(p)

    add_peppol_commands(sub)
