"""The parsers of `invoice-pipelines overdue`, `dunning-block`, `customer-kind` and
`dunning-base-rate`: argparse alone, so `--help` imports no SQLAlchemy and none of the dunning's
work. What each command does is in overdue/commands/run.py, named by overdue/area.py's table.

Each command's help is in overdue/area.py."""

from __future__ import annotations

from invoice_pipelines.cli_args import id_list, percent


def add_commands(sub) -> None:
    p = sub.add_parser("overdue")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--as-of", help="YYYY-MM-DD in the organization's timezone; default today")
    p.add_argument("--dry-run", action="store_true", help="count what would be noticed")
    p = sub.add_parser("dunning-block")
    p.add_argument("--org", required=True, help="organization slug or id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--customers", type=id_list, help="customer ids, e.g. 4,7 (dunning block)")
    group.add_argument("--invoices", type=id_list, help="sales invoice ids, e.g. 12,13 (disputed)")
    p.add_argument("--lift", action="store_true", help="lift the block / flag")
    p.add_argument("--reason", required=True, help="why (kept in the audit log)")
    p.add_argument("--created-by", default="cli")
    p = sub.add_parser("customer-kind")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--customers", type=id_list, required=True, help="customer ids, e.g. 4,7")
    p.add_argument(
        "--kind", required=True, choices=("business", "consumer", "auto"),
        help="auto: read it from the VAT id (one: business, none: consumer)",
    )  # fmt: skip
    p.add_argument("--created-by", default="cli")
    p = sub.add_parser("dunning-base-rate")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--from", dest="valid_from", required=True, help="1 January or 1 July")
    p.add_argument("--percent", type=percent, required=True, help="e.g. 1.27 (may be negative)")
