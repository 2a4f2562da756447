"""The parser of `invoice-pipelines suppliers`: the organization's supplier register from a
shell (list, show, add, change, confirm, link-vendor, policy, layout, learn-history), argparse alone. What each
verb does is in intake/commands/supplier_commands.py, named by intake/area.py's table."""

from __future__ import annotations

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.core.supplier_policies import POLICIES


def add_supplier_commands(sub) -> None:
    """The `suppliers` parser (intake/commands/cli.py adds it); the function intake/area.py's table names
    takes the verb, and answers `suppliers` alone."""
    suppliers = sub.add_parser("suppliers")
    suppliers.set_defaults(parser=suppliers)
    verbs = suppliers.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("list", help="the register: suppliers with VAT id, IBANs, vendor")
    _org(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = verbs.add_parser("show", help="one supplier with every change (who, why, before, after)")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")

    p = verbs.add_parser("add", help="register a supplier a person confirmed")
    _org(p)
    p.add_argument("--name", required=True)
    _values(p)
    p.add_argument(
        "--despite-lookalike",
        action="store_true",
        help="its name reads like a registered supplier's and it is another company all the same",
    )
    _who(p)

    p = verbs.add_parser("change", help="change a supplier (audited)")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.add_argument("--name", help="its name")
    p.add_argument("--add-name", action="append", default=[], help="another name it goes by")
    _values(p)
    p.add_argument("--remove-iban", action="append", default=[], metavar="IBAN")
    p.add_argument(
        "--clear",
        action="append",
        default=[],
        metavar="FIELD",
        help="vat_id, tax_number, notice_email, qbo_vendor_id or datev_creditor_account",
    )
    p.add_argument("--retire", action="store_true", help="the supplier is no longer one")
    _version(p)
    _who(p)

    p = verbs.add_parser(
        "confirm",
        help="vouch for a supplier its first invoice registered: its bills may reach QuickBooks",
    )
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    _version(p)
    p.add_argument(
        "--despite-lookalike",
        action="store_true",
        help="it reads like another registered supplier and is another company all the same",
    )
    _who(p)

    p = verbs.add_parser("link-vendor", help="book a supplier's bills to a QuickBooks vendor")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.add_argument("--vendor", required=True, help="the QuickBooks vendor's Id")
    _who(p)

    p = verbs.add_parser("policy", help="show or set how a new supplier is registered")
    _org(p)
    p.add_argument(
        "--set",
        choices=POLICIES,
        help="review: a person confirms every new supplier; first_invoice: a new supplier's "
        "first accepted invoice registers it, unconfirmed (no QuickBooks bill until a person "
        "confirms it); first_invoice_books: registered as confirmed, its bills are booked with "
        "no person involved (the risk docs/intake.md names); a switch needs --by and --reason",
    )
    p.add_argument("--by", help="who switches the policy (audited; needed with --set)")
    p.add_argument("--reason", help="why (audited; needed with --set)")

    p = verbs.add_parser(
        "layout",
        help="show a supplier's layout learned from documents a person confirmed, or forget it",
    )
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.add_argument("--show", action="store_true", help="every version (the default)")
    p.add_argument(
        "--forget",
        action="store_true",
        help="forget it: its next invoice is read as any other (a new version, audited; needs "
        "--by and --reason)",
    )
    p.add_argument("--by", help="who forgets it (audited; needed with --forget)")
    p.add_argument("--reason", help="why (audited; needed with --forget)")

    p = verbs.add_parser(
        "learn-history",
        help="register the suppliers of documents accepted before the register (a person's act)",
    )
    _org(p)
    _who(p)


def _org(p) -> None:
    p.add_argument("--org", required=True, help="organization slug or id")


def _version(p) -> None:
    p.add_argument(
        "--version",
        required=True,
        type=positive_int,
        help="the supplier's version you looked at (suppliers show): a supplier changed since "
        "is refused",
    )


def _who(p) -> None:
    p.add_argument("--by", required=True, help="who makes the change (audited)")
    p.add_argument("--reason", required=True, help="why (audited)")


def _values(p) -> None:
    p.add_argument("--vat-id", help="its VAT id, in full")
    p.add_argument("--tax-number", help="its tax number (Steuernummer)")
    p.add_argument(
        "--iban", action="append", default=[], metavar="IBAN[:BIC]", help="repeat for more"
    )
    p.add_argument("--notice-email", help="where its rejection notices go")
    p.add_argument("--qbo-vendor", help="its QuickBooks vendor's Id")
    p.add_argument("--datev-account", type=positive_int, help="its DATEV creditor account")
