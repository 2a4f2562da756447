"""The parsers of `invoice-pipelines parse` (one file parsed and validated offline) and
`invoice-pipelines incoming` (the incoming invoices of an organization: list, show, uploads,
review, policy), with those of `suppliers` (intake/commands/cli_suppliers.py) and the intake's `peppol`
verbs (intake/commands/cli_peppol.py): argparse alone, so `--help` and a usage error import no SQLAlchemy
and none of the intake's work. What each command does is named by intake/area.py's table:
`parse` in intake/commands/parse_command.py, `incoming` in intake/commands/run.py, `suppliers` in
intake/commands/supplier_commands.py, `peppol receive`, `route` and `listen` in
intake/commands/peppol_commands.py."""

from __future__ import annotations

import argparse
import functools
import re
from typing import NoReturn

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.intake.commands.cli_mailbox import add_mailbox_commands
from invoice_pipelines.intake.commands.cli_peppol import add_peppol_commands
from invoice_pipelines.intake.commands.cli_suppliers import add_supplier_commands


def add_commands(sub) -> None:
    p = sub.add_parser("parse")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    incoming = sub.add_parser("incoming")
    # the function the table names takes the verb (and answers `incoming` without one)
    incoming.set_defaults(parser=incoming)
    verbs = incoming.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("list", help="documents by status with their class and findings")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--status", type=_status, help="e.g. NEEDS_REVIEW, FAILED, VALIDATED")
    p.add_argument("--month", type=_month, help="YYYY-MM of the issue date")
    p.add_argument("--limit", type=positive_int, default=200, help="at most this many (200)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = verbs.add_parser("show", help="one document with its values, findings and reviews")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--id", required=True, type=positive_int, help="incoming invoice id")
    _add_uploads_command(verbs)

    p = verbs.add_parser(
        "review",
        help="confirm, correct or reject a document in NEEDS_REVIEW, or reopen a VALIDATED one "
        "(recorded)",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--id", required=True, type=positive_int, help="incoming invoice id")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        type=_pair,
        help="a correction, e.g. number=RE-1, issue_date=2026-11-03, gross_total=119.00, "
        "breakdown=19:100.00:19.00 (repeat for more)",
    )
    p.add_argument("--confirm", action="store_true", help="book it (VALIDATED) if its values hold")
    p.add_argument("--reject", metavar="REASON", help="FAILED with this reason")
    p.add_argument(
        "--reopen",
        action="store_true",
        help="a VALIDATED document not exported yet back to NEEDS_REVIEW (with --reason)",
    )
    p.add_argument("--reason", help="why it is reopened (kept in the audit log)")
    p.add_argument(
        "--version",
        type=positive_int,
        required=True,
        metavar="N",
        help="the version you looked at (processing_version in `incoming show`)",
    )
    p.add_argument("--by", required=True, help="who reviews (kept with every change)")
    p.error = functools.partial(_review_usage_error, p)

    p = verbs.add_parser("policy", help="show or set what each class of document leads to")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CLASS=ACTION",
        type=_pair,
        help="e.g. einvoice_with_errors=review, not_einvoice.profile=reject (repeat for more); "
        "a switch needs --by and --reason",
    )
    p.add_argument("--by", help="who switches the policy (audited; needed with --set)")
    p.add_argument("--reason", help="why (audited; needed with --set)")

    add_supplier_commands(sub)
    add_mailbox_commands(sub)
    add_peppol_commands(sub)


def _add_uploads_command(verbs) -> None:
    p = verbs.add_parser(
        "uploads",
        help="files dropped, newest first, each with its invoice (or the one it duplicates)",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--duplicates", action="store_true", help="only the duplicate uploads")
    p.add_argument("--limit", type=positive_int, default=200, help="at most this many (200)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def _review_usage_error(parser: argparse.ArgumentParser, message: str) -> NoReturn:
    """argparse's usage error, which for a missing --version also says where the version is."""
    if "--version" in message and "required" in message:
        message += (
            " (N: the processing_version that `invoice-pipelines incoming show --org ORG --id ID` "
            "prints, the version of the document you looked at)"
        )
    argparse.ArgumentParser.error(parser, message)


def _month(text: str) -> str:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text or ""):
        raise argparse.ArgumentTypeError(f"{text!r} is not a month YYYY-MM")
    return text


def _status(text: str) -> str:
    value = (text or "").strip().upper()
    if value not in Status.__members__:
        raise argparse.ArgumentTypeError(f"{text!r} is none of {', '.join(Status)}")
    return value


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = (text or "").partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value
