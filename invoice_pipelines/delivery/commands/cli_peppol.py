"""The parser of delivery's `invoice-pipelines peppol` verbs: `lookup PARTICIPANT [--document
invoice|credit-note]`, `participant --org ORG [--customer C] [PARTICIPANT | --clear]` and `send
--org ORG --invoice N [--resend]`, argparse alone. What each does (and its exit codes) is in
delivery/commands/peppol_commands.py, named by delivery/area.py's table."""

from __future__ import annotations

# the document types `lookup --document` names, by their UNTDID 1001 codes
DOCUMENTS = {"invoice": "380", "credit-note": "381"}


def add_peppol_commands(sub) -> None:
    """The `peppol` group with delivery's verbs (delivery/commands/cli.py adds it; the intake adds its
    own); each verb runs the function delivery/area.py's table names for delivery's `peppol`."""
    peppol = sub.add_parser("peppol")
    peppol.set_defaults(parser=peppol)
    verbs = peppol.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser(
        "lookup", help="whether a participant takes Peppol BIS Billing 3.0 invoices or credit notes"
    )
    p.add_argument(
        "participant", metavar="PARTICIPANT", help="a participant id, e.g. 0208:0123456749"
    )
    p.add_argument("--document", choices=sorted(DOCUMENTS), default="invoice")

    p = verbs.add_parser(
        "participant",
        help="set, clear or show the organization's or a customer's Peppol participant id",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--customer", help="the customer's number, or its id (else: the organization)")
    given = p.add_mutually_exclusive_group()
    given.add_argument("participant", nargs="?", metavar="PARTICIPANT", help="e.g. 0208:0123456749")
    given.add_argument("--clear", action="store_true", help="not on Peppol (any more)")

    p = verbs.add_parser("send", help="send one invoice over Peppol, at most once")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--invoice", required=True, help="the invoice's number, or its id")
    p.add_argument("--resend", action="store_true", help="send it again (the next attempt)")
