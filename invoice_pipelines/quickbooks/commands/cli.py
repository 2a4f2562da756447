"""The parsers of the QuickBooks commands (`qbo-connect`, `qbo-sync`, `qbo-payables`,
`qbo-import`, `qbo-webhooks`, `qbo-conflicts`, `qbo-resolve`): argparse alone, so a command's
`--help` imports neither SQLAlchemy nor the database's tables. What each command does is in
quickbooks/commands/run.py (connect, resolve, webhooks), quickbooks/commands/listings.py (payables,
conflicts) and quickbooks/commands/sync_commands.py (sync now, import), named by quickbooks/area.py's table
(with each help).
"""

from __future__ import annotations

import os

from invoice_pipelines.cli_args import port, positive_int
from invoice_pipelines.core.qbo_entities import SYNCED

# the entities `qbo-sync --what` names, in the order they sync
WHAT = tuple(entity.sync for entity in SYNCED)


def add_commands(sub) -> None:
    p = sub.add_parser("qbo-connect")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--realm", required=True, help="the QBO company id (realmId)")
    p.add_argument("--client-id", required=True)
    p.add_argument(
        "--secrets-from-env",
        nargs=2,
        metavar=("SECRET_VAR", "REFRESH_TOKEN_VAR"),
        default=("QBO_CLIENT_SECRET", "QBO_REFRESH_TOKEN"),
        help="environment variables holding the client secret and the refresh token (never "
        "command-line arguments: they would land in the shell history)",
    )
    p.add_argument(
        "--tax-codes",
        default="",
        help="QBO tax code per VAT rate, e.g. 19.00=TAX,7.00=TAX,0.00=NON",
    )
    p.add_argument("--income-account", default="1", help="IncomeAccountRef for new items")
    p.add_argument(
        "--by",
        default=os.environ.get("USER", "cli"),
        help="who connects (audited when the company is another than the connected one)",
    )

    p = sub.add_parser("qbo-sync")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--what", choices=(*WHAT, "all"), default="all")
    p.add_argument(
        "--invoice",
        type=positive_int,
        action="append",
        default=[],
        metavar="ID",
        help="push this sales invoice (id; repeatable), also one a migration brought in as "
        "history, which no run pushes on its own; with --what invoices",
    )

    p = sub.add_parser("qbo-payables")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument(
        "--create-vendors",
        choices=("yes", "no"),
        help="whether the bill push creates a QuickBooks vendor for a supplier without one "
        "(a switch needs --by and --reason: audited)",
    )
    p.add_argument(
        "--expense-account",
        metavar="QBO_ACCOUNT_ID",
        help="the QuickBooks expense account (its Id) bill lines are booked on: the "
        "organization's default, or with --supplier-vat-id / --supplier-name / --vendor that "
        "supplier's; 'none' removes it",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--supplier-vat-id", help="the supplier's VAT id (with --expense-account)")
    who.add_argument("--supplier-name", help="the supplier's name (with --expense-account)")
    who.add_argument("--vendor", help="a QuickBooks vendor's Id (with --expense-account)")
    p.add_argument(
        "--exchange-rate",
        metavar="CUR=RATE",
        help="home-currency units per unit of CUR, e.g. EUR=1.0850 (with --month for one month)",
    )
    p.add_argument("--month", help="YYYY-MM of --exchange-rate; default: every month")
    p.add_argument(
        "--by", help="who sets it (needed with --create-vendors; else default: your login name)"
    )
    p.add_argument("--reason", help="why (audited; needed with --create-vendors)")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("qbo-import")
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--page-size", type=positive_int, default=1000)

    p = sub.add_parser("qbo-webhooks")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=port, default=8766)

    p = sub.add_parser("qbo-conflicts")
    p.add_argument("--org", help="organization id or slug; default: every organization")
    p.add_argument("--all", action="store_true", help="resolved ones too")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("qbo-resolve")
    p.add_argument("conflict_id", type=positive_int)
    p.add_argument("--org", required=True, help="organization id or slug")
    p.add_argument("--keep", choices=("local", "qbo"), required=True)
    p.add_argument("--by", default=os.environ.get("USER", "cli"), help="who decided")
