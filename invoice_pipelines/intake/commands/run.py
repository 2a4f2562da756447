"""What `invoice-pipelines incoming` does but review: the incoming invoices of an organization
listed (`list`, `uploads`), shown (`show`) and their policy shown or set (`policy`); `review` is
intake/commands/review_command.py's, so a reading verb never imports the review (issue 73). Its parser is
intake/commands/cli.py's; intake/area.py's table names `run_incoming_command`, and the console script
imports this module only when the command runs.

Each verb takes the engine the `database` resource gives the runs, built without Dagster
(`args.resources.database`); an unknown --org raises `UnknownOrganization`, which the console
script answers. Text from a document or an upload is printed escaped (`core/text.terminal_text`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.readiness import held_because
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.intake.domain.duplicate_uploads import invoice_named, list_uploads
from invoice_pipelines.intake.domain.listing import list_documents, set_policy, show_document
from invoice_pipelines.intake.domain.payments import payment_line
from invoice_pipelines.lib.read_only import writable


def run_incoming_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function."""
    return run_verb(args, VERBS)


def run_list_command(args: argparse.Namespace) -> int:
    asked = {"status": args.status, "month": args.month, "limit": args.limit}
    documents = list_documents(args.resources.database, args.organization, **asked)
    if args.json:
        for document in documents:
            _show(json.dumps(document, default=str))  # ASCII, but DEL is ASCII too
        return 0
    if not documents:
        print("no incoming invoices match")
        return 0
    for line in _listing(documents):
        _show(line)
    return 0


# one line of `incoming list`'s text: a document's cells, or LIST_HEADER above them (a format's
# precision cuts a text to its column); --json has the keys
LIST_LINE = "{:>6}  {:<12} {:<32} {:<24.24} {:<28.28} {:>12} {:<3}  {}"
LIST_HEADER = ("id", "status", "class", "number", "seller", "gross", "cur", "file")


def _listing(documents: list[dict]) -> Iterator[str]:
    yield LIST_LINE.format(*LIST_HEADER).rstrip()
    for d in documents:
        number, seller = d["invoice_number"] or "-", d["seller_name"] or "-"
        cells = (d["id"], d["status"], _class(d), number, seller, d["gross_total"] or "-")
        yield LIST_LINE.format(*cells, d["currency"] or "", d["filename"] or "").rstrip()
        yield from _under_document(d)


def _under_document(d: dict) -> Iterator[str]:
    """What `incoming list` says under a document: its payment, its Skonto, its supplier notice,
    its first findings, the uploads that dropped it again."""
    payment = d.get("payment")
    if payment:
        yield f"        {payment_line(payment, d['currency'])}"
    if d.get("discount") and (payment or {}).get("status") != "paid":
        yield f"        {_discount_line(d['discount'], d['currency'])}"
    if d["notice"]:
        notice = d["notice"]
        why = f" ({notice['error'][:160]})" if notice.get("error") else ""
        yield f"        notice to {notice['recipient'] or '(no address)'}: {notice['status']}{why}"
    for finding in d["findings"][:5]:
        yield f"        {finding['severity']:<7} {finding['rule'] or '-'}: {finding['message'][:110]}"
    if len(d["findings"]) > 5:
        yield f"        ... and {len(d['findings']) - 5} more (incoming show --id {d['id']})"
    yield from _duplicate_uploads(d)


def _duplicate_uploads(document: dict) -> Iterator[str]:
    """The uploads of the same bytes dropped again, under the invoice they duplicate."""
    for upload in document.get("duplicate_uploads", ())[:3]:
        yield (
            f"        dropped again as {upload['filename']} at {upload['at']:%Y-%m-%d %H:%M} "
            f"(upload {upload['upload_id']}): a duplicate upload, no document of its own"
        )
    more = len(document.get("duplicate_uploads", ())) - 3
    if more > 0:
        yield f"        ... and {more} more duplicate uploads (incoming uploads --duplicates)"


def run_uploads_command(args: argparse.Namespace) -> int:
    org, duplicates = args.organization, args.duplicates
    rows = list_uploads(args.resources.database, org, duplicates_only=duplicates, limit=args.limit)
    unread = [] if duplicates else unread_uploads(args.resources.upload_store, org)
    if args.json:
        for row in [*unread, *rows]:
            _show(json.dumps(row, default=str))
        return 0
    if not rows and not unread:
        print("no uploads match")
        return 0
    for line in _uploads_listing(rows, unread):
        _show(line)
    return 0


def _uploads_listing(rows: list[dict], unread: list[dict]) -> Iterator[str]:
    for row in unread:
        yield f"{row['filename']}  {row['upload_status']}: {row['why']}"
    yield UPLOADS_LINE.format(*UPLOADS_HEADER).rstrip()
    for row in rows:
        what = "duplicate of" if row["upload_status"] == "duplicate" else "made"
        dropped = f"{row['created_at']:%Y-%m-%d %H:%M}"
        rest = f"{row['filename']}  {what} {invoice_named(row)}"
        yield UPLOADS_LINE.format(row["upload_id"], dropped, row["upload_status"], rest).rstrip()


def unread_uploads(uploads, org) -> list[dict]:
    """The files in the organization's drop zone not registered yet (no upload row): listed
    first by `incoming uploads`, each with why it waits (issue 85: a suspended organization's
    files were listed nowhere)."""
    why = _why_unread(org)
    return [
        {
            "upload_id": None,
            "upload_status": "waiting",
            "filename": found.name,
            "size": found.size,
            "why": found.refused or why,
        }
        for found in uploads.list_inbox(org.slug)
    ]


def _why_unread(org) -> str:
    because = held_because(org)
    if because:
        return (
            f"not read, {org.slug} is {because}; `invoice-pipelines organizations resume "
            f"{org.slug}` reads it"
        )
    return "not registered yet: the upload sensor registers it at its next tick"


# the columns of `incoming uploads`' text, named once above them (--json has its keys); the file
# name is as long as it is, so what follows it is one column: the file and its invoice
UPLOADS_LINE = "{:>6}  {:<16}  {:<10} {}"
UPLOADS_HEADER = ("upload", "dropped", "status", "file, and the invoice it made or duplicates")


def _show(line: str) -> None:
    """Print a line that holds text from a document or an upload: control and bidi characters
    (a file name's ESC or OSC sequence, an RTL override) escaped, never acted on."""
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
    document = show_document(args.resources.database, args.organization, args.id)
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


def run_policy_command(args: argparse.Namespace) -> int:
    if args.set:
        writable(args.organization)
    try:
        policy = set_policy(
            args.resources.database,
            args.organization,
            dict(args.set),
            by=args.by,
            reason=args.reason,
        )
    except ValueError as exc:
        print(f"invoice-pipelines incoming policy: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(policy, indent=2))
    return 0


VERBS = {
    "list": run_list_command,
    "show": run_show_command,
    "uploads": run_uploads_command,
    "policy": run_policy_command,
}
