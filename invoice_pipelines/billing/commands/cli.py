"""The parsers of billing's commands, `batch-invoice`, `batch-credit-notes`, `credit-note` and
`customer-skonto`: argparse alone, so `--help` imports no SQLAlchemy and none of billing's work.
What each command does is in billing/commands/run.py, named by billing/area.py's table (with each
help)."""

from __future__ import annotations

from invoice_pipelines.cli_args import day, non_negative_int, positive_int
from invoice_pipelines.core.channels import DELIVERY_CHANNELS


def add_commands(sub) -> None:
    p = sub.add_parser("batch-invoice")
    p.add_argument("--org", required=True, help="organization id or slug")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--orders", help="comma-separated sales order ids")
    group.add_argument("--all-reviewed", action="store_true", help="every reviewed order")
    group.add_argument(
        "--customer-lines",
        metavar="FILE.json",
        help="invoice customers directly: a JSON list of {customer, lines: [{item|description, "
        "quantity, unit_price, vat_rate}]}",
    )
    p.add_argument(
        "--up-to", help="with --all-reviewed: only orders dated up to this day (YYYY-MM-DD)"
    )
    p.add_argument(
        "--invoice-date", help="YYYY-MM-DD; default today in the organization's timezone"
    )
    p.add_argument(
        "--due-days",
        type=non_negative_int,
        default=None,
        help="default: the organization's payment terms",
    )
    p.add_argument("--created-by", default=None)
    p.add_argument("--wait", action="store_true", help="process now and show progress until done")
    p.add_argument(
        "--chunk-size", type=positive_int, default=5000, help="orders per transaction with --wait"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="with --wait on PostgreSQL: chunks in flight at once, one connection each",
    )
    p.add_argument(
        "--generate-pdf",
        action="store_true",
        help="then write the invoices' documents (a documents job queued with this one)",
    )
    p.add_argument(
        "--send-immediately",
        action="store_true",
        help="then send the invoices, once each (a communications job queued with this one)",
    )
    p.add_argument("--channel", choices=DELIVERY_CHANNELS, help="with --send-immediately (email)")

    p = sub.add_parser("batch-credit-notes")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--items",
        required=True,
        help='JSON file: a list of {"invoice_number": ..., "reason": ..., optionally "lines": '
        '"1:2,3:1" or "amounts": "19=100.00,7=20.00" (NET per VAT rate), "issue_date": '
        '"YYYY-MM-DD"}',
    )
    p.add_argument(
        "--date", help="YYYY-MM-DD of the items that give none; default: today (organization's)"
    )
    p.add_argument("--created-by", default=None, help="who asks (audit log); default: you")
    p.add_argument("--wait", action="store_true", help="issue them here, with progress")
    p.add_argument(
        "--chunk-size", type=positive_int, default=None, help="credit notes per progress step"
    )
    p = sub.add_parser("credit-note")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoice", required=True, help="the invoice number, e.g. RE-2026-000042")
    p.add_argument(
        "--lines",
        help="invoice line:quantity to credit, e.g. 1:2,3:1; default: everything not yet credited",
    )
    p.add_argument(
        "--amounts",
        help="NET amount (before VAT; VAT is added at the rate) to credit per VAT rate of the "
        "invoice, e.g. 19=100.00,7=20.00 (a price reduction or goodwill credit without lines; "
        "CATEGORY:RATE=NET where one rate has two categories, e.g. AE:0=50.00)",
    )
    p.add_argument("--reason", required=True, help="why (on the credit note and in the audit log)")
    p.add_argument("--date", type=day, help="YYYY-MM-DD; default today")
    p.add_argument("--created-by", default=None)
    _add_customer_skonto(sub)


def _add_customer_skonto(sub) -> None:
    p = sub.add_parser("customer-skonto")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--customer", required=True, help="the customer number, e.g. K-1")
    p.add_argument(
        "--steps",
        required=True,
        help="days:percent per step, e.g. 10:2,20:1; 'none' for no discount; 'default' for the "
        "organization's",
    )
    p.add_argument("--created-by", default=None)
