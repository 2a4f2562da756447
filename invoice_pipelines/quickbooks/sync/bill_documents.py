"""The files a bill gets in QBO: the original the supplier sent (from the upload store's archive)
and, for an XML e-invoice, the same invoice as a readable PDF.

The original goes as it is, with the content type QBO knows for its extension (PDF, XML, PNG,
JPEG, TIFF, ...: the list the simulator enforces, docs/quickbooks.md). An XML invoice is read
again with the e-invoice library's readers (no validation: the intake judged it) and printed with
its layout (einvoice/layout.py) by the `letter_writer` (the PDF/A writer of our invoices and
letters), so a person in QuickBooks reads it without an XML viewer. What cannot be attached (the
original gone after its retention period, a type QBO does not take, an invoice too long for the
writer) is a sentence on the bill's record instead, never a stop: the bill is booked all the
same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines.einvoice.readers.cii import CII_NS, parse_cii
from invoice_pipelines.einvoice.readers.ubl import UBL_CREDITNOTE_NS, UBL_INVOICE_NS, parse_ubl
from invoice_pipelines.einvoice.readers.xmlsafe import XmlRejected, parse_xml
from invoice_pipelines.einvoice.readers.zugferd1 import ZUGFERD1_NS, parse_zugferd1

ORIGINAL, READABLE = "original", "readable"
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


def readable_pdf(invoice: Invoice, write_letter: Callable, language: str) -> bytes:
    """The invoice printed (einvoice/layout.py) as a PDF by `write_letter` (bills.letter_pdf):
    the address block as the letter's head, the document's title as its title."""
    language = "de" if language == "de" else "en"
    lines = render_invoice_text(invoice, language=language)
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
) -> tuple[list[Attachment], list[NotAttached]]:
    """The `wanted` files of a document (its upload row's key, name and type in `document`)."""
    done: list[Attachment] = []
    missing: list[NotAttached] = []
    key, name = document.get("storage_key"), str(document.get("filename") or "")
    if not key or read_upload is None:
        why = "no original of the supplier invoice is stored" if not key else "no upload store"
        return [], [NotAttached(kind, why) for kind in wanted]
    if document.get("purged_at") is not None:
        day = document["purged_at"].date().isoformat()
        why = f"the original was removed by archive retention on {day}"
        return [], [NotAttached(kind, why) for kind in wanted]
    file_name = PurePosixPath(name).name or f"invoice-{document['id']}"
    content_type = content_type_of(file_name, document.get("content_type"))
    try:
        content = read_upload(key)
    except Exception as exc:  # a file the database lists, gone or unreadable: said, not raised
        return [], [NotAttached(kind, f"the original could not be read: {exc}") for kind in wanted]
    if ORIGINAL in wanted:
        if content_type is None:
            missing.append(NotAttached(ORIGINAL, f"QuickBooks takes no file like {file_name!r}"))
        else:
            done.append(Attachment(ORIGINAL, file_name, content_type, content))
    if READABLE in wanted:
        invoice = read_invoice(content) if content_type == "application/xml" else None
        if invoice is None or write_letter is None:
            missing.append(NotAttached(READABLE, "the original is not an XML e-invoice"))
        else:
            try:
                pdf = readable_pdf(invoice, write_letter, language)
            except Exception as exc:  # the writer's refusal (too long, say) is said, not raised
                missing.append(NotAttached(READABLE, f"no readable PDF: {exc}"))
            else:
                stem = PurePosixPath(file_name).stem
                done.append(Attachment(READABLE, f"{stem}.pdf", "application/pdf", pdf))
    return done, missing


def kinds_for(document: dict) -> tuple[str, ...]:
    """What a document's bill gets: the original, and a readable PDF for an XML e-invoice."""
    name = str(document.get("filename") or "")
    if content_type_of(name, document.get("content_type")) == "application/xml":
        return (ORIGINAL, READABLE)
    return (ORIGINAL,)
