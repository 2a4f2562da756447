"""`invoice-pipelines parse` (one file parsed and validated offline: intake/cli_parse.py) and
`invoice-pipelines incoming` (the incoming invoices of an organization: list, show, review,
policy), `invoice-pipelines suppliers` (the supplier register: intake/cli_suppliers.py) and
`invoice-pipelines peppol receive` (a document a Peppol access point forwarded:
intake/cli_peppol.py). Modules load when a command runs, so the other commands do not load the parser."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from typing import NoReturn

from invoice_pipelines.cli_args import positive_int
from invoice_pipelines.intake.cli_peppol import VERBS as PEPPOL_VERBS
from invoice_pipelines.intake.cli_peppol import add_peppol_commands
from invoice_pipelines.intake.cli_suppliers import VERBS as SUPPLIER_VERBS
from invoice_pipelines.intake.cli_suppliers import add_supplier_commands


def add_commands(sub) -> None:
    p = sub.add_parser("parse")
    p.add_argument("path")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_parse_command)

    incoming = sub.add_parser("incoming")
    # each verb sets its own func; this one answers `incoming` without a verb (argparse's
    # required verb normally refuses that first)
    incoming.set_defaults(func=run_incoming_command, parser=incoming)
    verbs = incoming.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser("list", help="documents by status with their class and findings")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--status", type=_status, help="e.g. NEEDS_REVIEW, FAILED, VALIDATED")
    p.add_argument("--month", type=_month, help="YYYY-MM of the issue date")
    p.add_argument("--limit", type=positive_int, default=200, help="at most this many (200)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_list_command)

    p = verbs.add_parser("show", help="one document with its values, findings and reviews")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--id", required=True, type=positive_int, help="incoming invoice id")
    p.set_defaults(func=run_show_command)
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
    p.set_defaults(func=run_review_command)
    p.error = functools.partial(_review_usage_error, p)

    p = verbs.add_parser("policy", help="show or set what each class of document leads to")
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CLASS=ACTION",
        type=_pair,
        help="e.g. einvoice_with_errors=review, not_einvoice.profile=reject (repeat for more)",
    )
    p.set_defaults(func=run_policy_command)

    add_supplier_commands(sub, run_suppliers_command)
    add_peppol_commands(sub, run_peppol_command)


def _add_uploads_command(verbs) -> None:
    p = verbs.add_parser(
        "uploads",
        help="files dropped, newest first, each with its invoice (or the one it duplicates)",
    )
    p.add_argument("--org", required=True, help="organization slug or id")
    p.add_argument("--duplicates", action="store_true", help="only the duplicate uploads")
    p.add_argument("--limit", type=positive_int, default=200, help="at most this many (200)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_uploads_command)


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
    from invoice_pipelines.core.lifecycle import Status

    value = (text or "").strip().upper()
    if value not in Status.__members__:
        raise argparse.ArgumentTypeError(f"{text!r} is none of {', '.join(Status)}")
    return value


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = (text or "").partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name.strip(), value


def run_incoming_command(args: argparse.Namespace) -> int:
    args.parser.print_usage()
    print("invoice-pipelines incoming: name one of list, show, uploads, review, policy")
    return 2


def run_suppliers_command(args: argparse.Namespace) -> int:
    args.parser.print_usage()
    print(f"invoice-pipelines suppliers: name one of {SUPPLIER_VERBS}")
    return 2


def run_peppol_command(args: argparse.Namespace) -> int:
    args.parser.print_usage()
    print(f"invoice-pipelines peppol: name one of {PEPPOL_VERBS}")
    return 2


def run_parse_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.cli_parse import run_parse

    return run_parse(args.path, as_json=args.json, ocr_reader=lambda: args.resources.ocr_engine)


def run_list_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.listing import list_documents
    from invoice_pipelines.intake.payments import payment_line

    documents = list_documents(
        args.resources.database, args.org, status=args.status, month=args.month, limit=args.limit
    )
    if args.json:
        for document in documents:
            _show(json.dumps(document, default=str))  # ASCII, but DEL is ASCII too
        return 0
    if not documents:
        print("no incoming invoices match")
        return 0
    _show(_columns(LIST_HEADER))
    for d in documents:
        number, seller = d["invoice_number"] or "-", d["seller_name"] or "-"
        _show(
            _columns(
                (d["id"], d["status"], _class(d), number, seller, d["gross_total"] or "-")
                + (d["currency"] or "", d["filename"] or "")
            )
        )
        payment = d.get("payment")
        if payment:
            _show(f"        {payment_line(payment, d['currency'])}")
        if d.get("discount") and (payment or {}).get("status") != "paid":
            _show(f"        {_discount_line(d['discount'], d['currency'])}")
        if d["notice"]:
            notice = d["notice"]
            why = f" ({notice['error'][:160]})" if notice.get("error") else ""
            _show(
                f"        notice to {notice['recipient'] or '(no address)'}: {notice['status']}{why}"
            )
        for finding in d["findings"][:5]:
            _show(
                f"        {finding['severity']:<7} {finding['rule'] or '-'}: {finding['message'][:110]}"
            )
        if len(d["findings"]) > 5:
            _show(f"        ... and {len(d['findings']) - 5} more (incoming show --id {d['id']})")
        _show_duplicate_uploads(d)
    return 0


# the columns of `incoming list`'s text, named once above them (--json has its keys)
LIST_HEADER = ("id", "status", "class", "number", "seller", "gross", "cur", "file")


def _columns(cells: tuple) -> str:
    """One line of `incoming list`: a document's cells, or LIST_HEADER above them."""
    key, status, klass, number, seller, gross, currency, filename = cells
    return (
        f"{key:>6}  {status:<12} {klass:<32} {number[:24]:<24} {seller[:28]:<28} "
        f"{gross:>12} {currency:<3}  {filename}"
    ).rstrip()


def _show_duplicate_uploads(document: dict) -> None:
    """The uploads of the same bytes dropped again, under the invoice they duplicate."""
    for upload in document.get("duplicate_uploads", ())[:3]:
        _show(
            f"        dropped again as {upload['filename']} at {upload['at']:%Y-%m-%d %H:%M} "
            f"(upload {upload['upload_id']}): a duplicate upload, no document of its own"
        )
    more = len(document.get("duplicate_uploads", ())) - 3
    if more > 0:
        _show(f"        ... and {more} more duplicate uploads (incoming uploads --duplicates)")


def run_uploads_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.duplicate_uploads import invoice_named, list_uploads

    rows = list_uploads(
        args.resources.database, args.org, duplicates_only=args.duplicates, limit=args.limit
    )
    if args.json:
        for row in rows:
            _show(json.dumps(row, default=str))
        return 0
    if not rows:
        print("no uploads match")
        return 0
    _show(_upload_columns(UPLOADS_HEADER))
    for row in rows:
        what = "duplicate of" if row["upload_status"] == "duplicate" else "made"
        _show(
            _upload_columns(
                (
                    row["upload_id"],
                    f"{row['created_at']:%Y-%m-%d %H:%M}",
                    row["upload_status"],
                    f"{row['filename']}  {what} {invoice_named(row)}",
                )
            )
        )
    return 0


# the columns of `incoming uploads`' text, named once above them (--json has its keys); the file
# name is as long as it is, so what follows it is one column: the file and its invoice
UPLOADS_HEADER = ("upload", "dropped", "status", "file, and the invoice it made or duplicates")


def _upload_columns(cells: tuple) -> str:
    """One line of `incoming uploads`: an upload's cells, or UPLOADS_HEADER above them."""
    key, dropped, status, rest = cells
    return f"{key:>6}  {dropped:<16}  {status:<10} {rest}".rstrip()


def _show(line: str) -> None:
    """Print a line that holds text from a document or an upload: control and bidi characters
    (a file name's ESC or OSC sequence, an RTL override) escaped, never acted on."""
    from invoice_pipelines.core.text import terminal_text

    print(terminal_text(line))


def _discount_line(discount: dict, currency: str | None) -> str:
    """'Skonto 2.00 % until 2026-03-16: 23.80 EUR off, pay 1166.20 EUR'."""
    money = currency or ""
    return (
        f"Skonto {discount['percent']} % until {discount['last_day']}: "
        f"{discount['discount']} {money} off, pay {discount['pay']} {money}"
    )


def _class(document: dict) -> str:
    """The document's class as the policy names it (not_einvoice.profile), or '-'."""
    return ".".join(filter(None, (document["einvoice_class"], document["einvoice_reason"]))) or "-"


def run_show_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.listing import show_document

    document = show_document(args.resources.database, args.org, args.id)
    if document is None:
        print(
            f"invoice-pipelines incoming show: no incoming invoice {args.id} in {args.org}",
            file=sys.stderr,
        )
        return 2
    # JSON escapes C0 inside strings, not DEL, C1 or bidi characters; a JSON line is split only
    # where the JSON itself breaks it (a newline inside a string is written as \n)
    for line in json.dumps(document, default=str, indent=2, ensure_ascii=False).split("\n"):
        _show(line)
    return 0


def run_review_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.db.incoming_status import StaleDocument
    from invoice_pipelines.intake.review import ReviewError, review_document

    try:
        result = review_document(
            args.resources.database,
            args.org,
            args.id,
            reviewed_by=args.by,
            corrections=dict(args.set),
            confirm=args.confirm,
            reject=args.reject,
            expected_version=args.version,
            reopen=args.reopen,
            reason=args.reason,
        )
    except (ReviewError, StaleDocument) as exc:
        print(f"invoice-pipelines incoming review: {exc}", file=sys.stderr)
        return 2
    print(
        json.dumps(
            {
                "id": result.document_id,
                "status": result.status,
                "corrected": {k: {"old": o, "new": n} for k, (o, n) in result.corrected.items()},
                **_refused(result),
                "problems": result.problems,
            },
            ensure_ascii=False,
        )
    )
    return 0 if result.status != "NEEDS_REVIEW" or not args.confirm else 1


def _refused(result) -> dict:
    """A refused confirmation's corrections, none kept (what the review command prints)."""
    if not result.refused:
        return {}
    return {
        "refused": {k: {"old": o, "new": n} for k, (o, n) in result.refused.items()},
        "changed": "nothing",
    }


def run_policy_command(args: argparse.Namespace) -> int:
    from invoice_pipelines.intake.listing import set_policy

    try:
        policy = set_policy(args.resources.database, args.org, dict(args.set))
    except ValueError as exc:
        print(f"invoice-pipelines incoming policy: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(policy, indent=2))
    return 0
