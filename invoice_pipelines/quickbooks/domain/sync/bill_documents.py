"""The files a bill gets in QBO: the original the supplier sent (from the upload store's archive)
and, for an XML e-invoice, the same invoice as a readable PDF.

The original goes as it is, with the content type QBO knows for its extension (PDF, XML, PNG,
JPEG, TIFF, ...: the list the simulator enforces, docs/quickbooks.md). An XML invoice is read
again with the e-invoice library's readers (no validation: the intake judged it) and printed with
its layout (einvoice/layout.py) by the `letter_writer` (the PDF/A writer of our invoices and
letters), so a person in QuickBooks reads it without an XML viewer: in the words of the seller's
tax (a US supplier's sales tax is "Sales tax", not VAT), with the payment terms the document
states and its delivery date. What cannot be attached (the
original gone after its retention period, a type QBO does not take, a file larger than QBO takes,
an invoice too long for the writer) is a sentence on the bill's record instead (`NotAttached`:
which file and why), never a stop: the bill is booked all the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.skonto import describe, offers
from invoice_pipelines.einvoice.layout import (
    render_invoice_text,
    render_plain_text,
    taxed_without_vat,
)
from invoice_pipelines.einvoice.readers.cii import CII_NS, parse_cii
from invoice_pipelines.einvoice.readers.ubl import UBL_CREDITNOTE_NS, UBL_INVOICE_NS, parse_ubl
from invoice_pipelines.einvoice.readers.xmlsafe import XmlRejected, parse_xml
from invoice_pipelines.einvoice.readers.zugferd1 import ZUGFERD1_NS, parse_zugferd1

ORIGINAL, READABLE = "original", "readable"
MB = 1024 * 1024
# the largest file one upload takes: 100 MB (read as MiB), the figure third parties give for QBO
# (Intuit's MCP server, Codat's integration table, qbo_api #42; Intuit's own attachment reference
# was not reachable here, docs/quickbooks.md "Caps"); the simulator refuses larger files alike. A
# larger one is not sent at all: QBO would refuse it after the whole upload
MAX_ATTACHMENT_BYTES = 100 * MB
# a file's extension -> the content type QBO takes for it (the simulator's list)
CONTENT_TYPES = {
    "pdf": "application/pdf",
    "xml": "application/xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "tif": "image/tiff",
    "tiff": "image/tiff",
    "txt": "text/plain",
    "csv": "text/csv",
}
_READERS = {
    CII_NS: parse_cii,
    UBL_INVOICE_NS: parse_ubl,
    UBL_CREDITNOTE_NS: parse_ubl,
    ZUGFERD1_NS: parse_zugferd1,
}


@dataclass(frozen=True)
class Attachment:
    kind: str  # original | readable
    file_name: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class NotAttached:
    kind: str
    reason: str
    file_name: str | None = None


def _size(count: int) -> str:
    return f"{count / MB:.1f} MB" if count >= MB // 10 else f"{count:,} bytes"


def _too_large(kind: str, file_name: str, size: int, max_bytes: int) -> NotAttached | None:
    if size <= max_bytes:
        return None
    reason = (
        f"{file_name!r} is {_size(size)}, more than the {_size(max_bytes)} QuickBooks takes in "
        "one file: not uploaded"
    )
    if kind == ORIGINAL:
        reason += " (the original stays in our archive)"
    return NotAttached(kind, reason, file_name)


def content_type_of(file_name: str, stated: str | None) -> str | None:
    extension = PurePosixPath(file_name).suffix.lower().lstrip(".")
    if extension in CONTENT_TYPES:
        return CONTENT_TYPES[extension]
    stated = (stated or "").split(";", 1)[0].strip().lower()
    return stated if stated in CONTENT_TYPES.values() else None


def read_invoice(xml: bytes) -> Invoice | None:
    """The invoice an XML e-invoice states, mapped without its rules; None when it is not one."""
    try:
        safe = parse_xml(xml)
    except XmlRejected:
        return None
    reader = _READERS.get(safe.namespace)
    return reader(safe.root)[0] if reader is not None else None


def printed_terms(invoice: Invoice, language: str) -> str | None:
    """The payment terms as a person reads them: BT-20's words (without XRechnung's #SKONTO#
    lines, which are for machines), then each discount step as a sentence with its last day and
    amounts (core/skonto.describe), its day written as the seller's (the supplier's) country
    writes the document's dates: 11/26/2026 for a US supplier. None when the document states
    none."""
    said = [
        line.strip()
        for line in (invoice.payment_terms or "").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    due = invoice.amount_due if invoice.amount_due is not None else invoice.gross_total
    for offer in offers(invoice.discount_terms, invoice.issue_date, due):
        said.append(describe(offer, invoice.currency or "EUR", language, invoice.seller_country))
    # one paragraph (the layout wraps it): each part a sentence of its own
    return " ".join(part if part[-1] in ".!?" else part + "." for part in said) or None


def readable_pdf(invoice: Invoice, write_letter: Callable, language: str) -> bytes:
    """The invoice printed (einvoice/layout.py) as a PDF by `write_letter` (bills.letter_pdf):
    the address block as the letter's head, the document's title as its title. A seller whose
    tax is no VAT (a US supplier's sales tax) is printed in that tax's words and its country's
    dates (render_plain_text: "Sales tax 8.88 %"), any other as an e-invoice prints; both with
    the payment terms (printed_terms) and the delivery date the document states."""
    language = "de" if language == "de" else "en"
    terms = printed_terms(invoice, language)
    country = invoice.seller_country
    if taxed_without_vat(country):
        lines = render_plain_text(
            invoice,
            language=language,
            seller_country=country,
            seller_tax_number=invoice.seller_tax_number,
            payment_terms=terms,
            service_date=invoice.service_date,
        )
    else:
        lines = render_invoice_text(
            invoice, language=language, payment_terms=terms, service_date=invoice.service_date
        )
    credit = invoice.type_code == "381"
    if language == "de":
        title = "Rechnungskorrektur" if credit else "Rechnung"
    else:
        title = "Credit note" if credit else "Invoice"
    at = lines.index(title) if title in lines else -1
    author = invoice.seller_name or title
    return write_letter(author, tuple(lines[: max(at, 0)]), title, tuple(lines[at + 1 :]), language)


def attachments_of(
    document: dict,
    wanted: tuple[str, ...],
    read_upload: Callable[[str], bytes] | None,
    write_letter: Callable | None,
    language: str,
    *,
    max_bytes: int = MAX_ATTACHMENT_BYTES,
) -> tuple[list[Attachment], list[NotAttached]]:
    """The `wanted` files of a document (its upload row's key, name and type in `document`), and
    those that cannot be attached (none larger than `max_bytes`), each with its reason."""
    done: list[Attachment] = []
    missing: list[NotAttached] = []
    key, name = document.get("storage_key"), str(document.get("filename") or "")
    if not key or read_upload is None:
        why = "no original of the supplier invoice is stored" if not key else "no upload store"
        return [], [NotAttached(kind, why, name or None) for kind in wanted]
    if document.get("purged_at") is not None:
        day = document["purged_at"].date().isoformat()
        why = f"the original was removed by archive retention on {day}"
        return [], [NotAttached(kind, why, name or None) for kind in wanted]
    file_name = PurePosixPath(name).name or f"invoice-{document['id']}"
    content_type = content_type_of(file_name, document.get("content_type"))
    try:
        content = read_upload(key)
    except Exception as exc:  # a file the database lists, gone or unreadable: said, not raised
        why = f"the original could not be read: {exc}"
        return [], [NotAttached(kind, why, file_name) for kind in wanted]
    if ORIGINAL in wanted:
        if content_type is None:
            missing.append(
                NotAttached(ORIGINAL, f"QuickBooks takes no file like {file_name!r}", file_name)
            )
        else:
            big = _too_large(ORIGINAL, file_name, len(content), max_bytes)
            if big is not None:
                missing.append(big)
            else:
                done.append(Attachment(ORIGINAL, file_name, content_type, content))
    if READABLE in wanted:
        readable = _readable(content, content_type, file_name, write_letter, language, max_bytes)
        (done if isinstance(readable, Attachment) else missing).append(readable)
    return done, missing


def _readable(
    content: bytes,
    content_type: str | None,
    file_name: str,
    write_letter: Callable | None,
    language: str,
    max_bytes: int,
) -> Attachment | NotAttached:
    """The invoice printed as a PDF, or why there is none (every reason says it: no readable PDF
    is ever left out without a sentence on the bill's record)."""
    name = f"{PurePosixPath(file_name).stem}.pdf"
    invoice = read_invoice(content) if content_type == "application/xml" else None
    if invoice is None:
        why = "no readable PDF: the original could not be read again as an XML e-invoice"
        return NotAttached(READABLE, why, name)
    if write_letter is None:
        return NotAttached(READABLE, "no readable PDF: this run has no letter writer", name)
    try:
        pdf = readable_pdf(invoice, write_letter, language)
    except Exception as exc:  # the writer's refusal (too long, say) is said, not raised
        return NotAttached(READABLE, f"no readable PDF: the writer refused it: {exc}", name)
    return _too_large(READABLE, name, len(pdf), max_bytes) or Attachment(
        READABLE, name, "application/pdf", pdf
    )


def kinds_for(document: dict) -> tuple[str, ...]:
    """What a document's bill gets: the original, and a readable PDF for an XML e-invoice."""
    name = str(document.get("filename") or "")
    if content_type_of(name, document.get("content_type")) == "application/xml":
        return (ORIGINAL, READABLE)
    return (ORIGINAL,)
