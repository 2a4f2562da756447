"""The supplier notices as a person reads them, and the plain text a document may put into one:
each document's notice (`notices_of`: `incoming list` and `show`), the organization's rejected
documents with theirs (`rejected_documents`: the `incoming_invoices` asset), and `plain_text` /
`file_name`, which every value from a document in a notice goes through (intake/domain/notices.py writes
and sends the notices with them).

Light on purpose: no mail, no Peppol, no Invoice Response writer, so a command that only lists
documents (`incoming list`) loads what reading needs (issue 73)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, select

from invoice_pipelines.db.tables import incoming_invoices, supplier_notices, uploads
from invoice_pipelines.outbox.machine import FAILED

# a notice listed in the day's notice to its address, or not sent since that one left
FOLDED, SUPPRESSED = "folded", "suppressed"
# what a document puts into the notice: number, supplier name and file name each at most this long
MAX_VALUE = 80

# --- what a document may put into a mail -------------------------------------------------------

# Unicode's other full stops, which IDNA reads as dots in host names
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_SCHEME = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]{0,30}?)\s*:\s*/\s*/")
_WWW = re.compile(r"(?i)\b(www)\.")
# a dot between a name and a label of letters (example.com, evil.example): a mail program may
# make a link of it
_HOST_DOT = re.compile(r"(?i)(?<=[a-z0-9\-_])\.(?=(?:xn--[a-z0-9\-]+|[a-z]{2,63})(?![a-z0-9\-]))")
_FILE_TYPE = re.compile(r"(?i)\.(pdf|xml|jpe?g|png|tiff?|gif|bmp|webp|txt|csv)$")
_HIDDEN = ("Cf", "Co", "Cs", "Cn")  # bidi, zero-width, soft hyphen; private and unassigned


def _defanged(text: str) -> str:
    """`text` with every URL, www. name and host name broken so that no mail program links it."""

    def scheme(match: re.Match) -> str:
        name = match.group(1)
        if name.lower().startswith("http"):
            name = f"{name[0]}xx{name[3:]}"
        elif name.lower().startswith("ftp"):
            name = f"{name[0]}x{name[2:]}"
        return f"{name}[:]//"

    text = _SCHEME.sub(scheme, text)
    text = _WWW.sub(r"\1[.]", text)
    return _HOST_DOT.sub("[.]", text)


def plain_text(value: str | None, limit: int = MAX_VALUE, *, links: bool = False) -> str:
    """A value from a document as one line of plain text: compatibility forms folded (NFKC),
    control, bidi and invisible characters gone, white space one space, at most `limit`
    characters (the rest an ellipsis), links broken unless `links`."""
    text = unicodedata.normalize("NFKC", (value or "")[: limit * 4]).translate(_DOTS)
    text = "".join(
        " " if unicodedata.category(c) in ("Cc", "Zl", "Zp") else c
        for c in text
        if unicodedata.category(c) not in _HIDDEN
    )
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "\u2026"
    return text if links else _defanged(text)


def file_name(value: str | None) -> str:
    """A file name as plain text; its last dot kept before a document's file type (scan.pdf)."""
    text = plain_text(value, links=True)
    kind = _FILE_TYPE.search(text)
    if kind is None:
        return _defanged(text)
    return _defanged(text[: kind.start()]) + kind.group(0)


# --- where notices are shown -------------------------------------------------------------------


def _why(row) -> str | None:
    """Why a notice is not (or not by itself) sent: its error, or the day's notice it is in."""
    if row.status == FOLDED and row.carrier_document is not None:
        return (
            f"listed in the day's notice to this address (document {row.carrier_document}, "
            f"{row.carrier_status})"
        )
    if row.status == SUPPRESSED and row.carrier_document is not None:
        went = "had been tried" if row.carrier_status == FAILED else "had left already"
        return (
            f"the day's one notice to this address (document {row.carrier_document}, "
            f"{row.carrier_status}) {went}; not sent again"
        )
    return row.error


def _with_carrier(columns):
    n = supplier_notices.c
    carrier = supplier_notices.alias()  # Core's alias: sqlalchemy.orm costs a command 0.25 s
    return (
        select(
            *columns,
            n.recipient,
            n.status,
            n.error,
            carrier.c.incoming_invoice_id.label("carrier_document"),
            carrier.c.status.label("carrier_status"),
        )
        .select_from(supplier_notices)
        .outerjoin(
            carrier,
            and_(carrier.c.id == n.folded_into, carrier.c.organization_id == n.organization_id),
        )
    )


def notices_of(conn, document_ids: Sequence[int]) -> dict[int, dict]:
    """The notice of each document that has one: recipient, status, error (why it is not sent,
    or the day's notice it is listed in)."""
    n = supplier_notices.c
    return {
        row.incoming_invoice_id: {
            "recipient": row.recipient,
            "status": row.status,
            "error": _why(row),
        }
        for row in conn.execute(
            _with_carrier([n.incoming_invoice_id]).where(
                n.incoming_invoice_id.in_(list(document_ids))
            )
        )
    }


@dataclass(frozen=True)
class RejectedDocument:
    incoming_invoice_id: int
    filename: str | None
    invoice_number: str | None
    einvoice_class: str | None
    einvoice_reason: str | None
    recipient: str | None
    status: str
    error: str | None


def rejected_documents(
    conn, organization_id: int, limit: int = 50
) -> tuple[dict[str, int], list[RejectedDocument]]:
    """The organization's rejected documents, newest first, with their notice: the count of
    notices by state (pending, sending, sent, failed, unknown, folded, suppressed), and the first
    `limit` with id, file name and invoice number (as plain text, bounded), class, recipient,
    state and why not sent."""
    n = supplier_notices.c
    counts = {
        status: count
        for status, count in conn.execute(
            select(n.status, func.count())
            .where(n.organization_id == organization_id)
            .group_by(n.status)
        )
    }
    rows = conn.execute(
        _with_carrier(
            [
                n.incoming_invoice_id,
                uploads.c.filename,
                incoming_invoices.c.invoice_number,
                incoming_invoices.c.einvoice_class,
                incoming_invoices.c.einvoice_reason,
            ]
        )
        .join(incoming_invoices, incoming_invoices.c.id == n.incoming_invoice_id)
        .outerjoin(uploads, uploads.c.id == incoming_invoices.c.upload_id)
        .where(n.organization_id == organization_id)
        .order_by(n.id.desc())
        .limit(limit)
    ).all()
    return counts, [
        RejectedDocument(
            row.incoming_invoice_id,
            file_name(row.filename) if row.filename else None,
            plain_text(row.invoice_number) if row.invoice_number else None,
            row.einvoice_class,
            row.einvoice_reason,
            row.recipient,
            row.status,
            _why(row),
        )
        for row in rows
    ]
