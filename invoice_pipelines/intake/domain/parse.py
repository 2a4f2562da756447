"""Parse and validate one incoming document (XML, PDF, image) into a ParseOutcome: format dispatch.

`parse_document` never raises for bad input: every problem becomes a finding and the outcome is
FAILED (or NEEDS_OCR for scans). An e-invoice (XML, or the invoice XML a PDF carries) is read by
the e-invoice library (`einvoice/read.py`); here are the sniffing of what a file is, the text
layer of a PDF without XML, the reading of OCR text and the comparison of a hybrid PDF's page
with its XML. It runs in the worker processes of `intake/domain/workers.py` (`SafeParser`), which add a
time limit per document and isolation from crashing libraries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import PurePath
from typing import Any, Literal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding, check_invoice
from invoice_pipelines.core.skonto import text_terms
from invoice_pipelines.einvoice import verdict
from invoice_pipelines.einvoice.classes import NotEInvoiceReason
from invoice_pipelines.einvoice.read import (
    ParseOutcome,
    Reading,
    opened_pdf,
    read_embedded,
    read_xml,
)
from invoice_pipelines.einvoice.readers.pdf import PdfDocument, PdfUnreadable, looks_like_pdf
from invoice_pipelines.intake.domain import hybrid, plausibility, proofs
from invoice_pipelines.intake.domain.formats.pdf_text import extract_text, has_text_layer
from invoice_pipelines.intake.domain.formats.text import TextField, extract_fields
from invoice_pipelines.intake.domain.formats.text.ocr import normalize_ocr
from invoice_pipelines.limits import MAX_OCR_PAGES, MAX_TEXT_PAGES
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

# Text extraction and OCR values below this confidence are flagged for a human to look at.
LOW_CONFIDENCE = 0.6
RAW_TEXT_CHARS = 20_000

IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)
KIND_BY_EXTENSION = {
    ".pdf": "pdf",
    ".xml": "xml",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
}
KIND_LABEL = {
    "pdf": "a PDF",
    "xml": "XML",
    "png": "a PNG image",
    "jpeg": "a JPEG image",
    "tiff": "a TIFF image",
    "zip": "a ZIP archive",
    "unknown": "of an unknown type",
}


def sniff(data: bytes) -> str:
    """What the bytes are, by content not by name: pdf, xml, png, jpeg, tiff, zip or unknown."""
    if looks_like_pdf(data):
        return "pdf"
    for magic, kind in IMAGE_MAGIC:
        if data.startswith(magic):
            return kind
    if data.startswith(b"PK\x03\x04"):
        return "zip"
    head = data[:512]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", "ignore").encode("utf-8", "ignore")
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return "xml"
    return "unknown"


def _extension_warning(filename: str, kind: str) -> Finding | None:
    suffix = PurePath(filename).suffix.lower()
    expected = KIND_BY_EXTENSION.get(suffix)
    if expected is None or expected == kind:
        return None
    return Finding(
        "IP-READ-01",
        f"the file is named '{PurePath(filename).name}' but its content is {KIND_LABEL[kind]}; "
        "it was read by its content",
        severity="warning",
        stage="read",
    )


def _low_confidence_warnings(invoice: Invoice, rule: str, origin_label: str) -> list[Finding]:
    key_fields = (
        "number",
        "issue_date",
        "due_date",
        "currency",
        "seller_name",
        "net_total",
        "tax_total",
        "gross_total",
    )
    return [
        Finding(
            rule,
            f"{name} was read from {origin_label} with low confidence ({invoice.confidence[name]:.2f})",
            severity="warning",
            stage="extract",
        )
        for name in key_fields
        if name in invoice.confidence and invoice.confidence[name] < LOW_CONFIDENCE
    ]


def _text_outcome(
    text: str,
    doc: Reading,
    *,
    fmt: str,
    origin: Literal["text", "ocr"],
    scale: float,
    learned: dict[str, TextField] | None = None,
) -> ParseOutcome:
    fields = extract_fields(text)
    # what the supplier's learned layout read comes first (intake/domain/layout_reading.py)
    fields.fields.update(learned or {})
    invoice = fields.to_invoice(origin=origin, confidence_scale=scale)
    # the Skonto a page states in words ("2 % Skonto bei Zahlung innerhalb von 10 Tagen")
    invoice = replace(invoice, discount_terms=tuple(text_terms(text)))
    derived = proofs.derived_breakdown(invoice)
    if derived:
        # the page states the VAT but no breakdown was read: its lines' rates give one that the
        # sums prove (intake/domain/proofs.py)
        invoice = replace(invoice, vat_breakdown=derived)
        doc.raw["vat_breakdown_from_lines"] = True
    proven = proofs.prove(invoice)
    doc.raw.update(extraction=origin, fields=fields.to_json_dict(), text=text[:RAW_TEXT_CHARS])
    doc.raw["proofs"] = proven.to_json_dict()
    label = "the PDF text layer" if origin == "text" else "OCR text"
    rule = "IP-TEXT" if origin == "text" else "IP-OCR"
    # What our rules find wrong in values read from a page is a reason for a person to look, not
    # a verdict on the supplier's invoice: the reading may be what is wrong.
    doubts = [
        Finding(f.rule, f.message, "warning", "review") if f.severity == "error" else f
        for f in check_invoice(invoice, today=doc.today)
    ]
    findings = [
        Finding(
            f"{rule}-01",
            f"values were read from {label}, not from structured invoice data",
            severity="warning",
            stage="extract",
        ),
        *_low_confidence_warnings(invoice, f"{rule}-02", label),
        # first among the doubts, so that a list of what waits names the value nothing proved
        # and the sum that failed: the amounts the invoice's own sums do not prove
        *proven.findings(invoice),
        *doubts,
        *plausibility.review_findings(
            invoice,
            text,
            origin=origin,
            today=doc.today,
            corrected=_corrected(text, origin),
            proven={
                name: fields.fields[name].confidence
                for name in proven.proven_amounts
                if name in fields.fields
            },
        ),  # fmt: skip
        # the page does not show who sent it and who received it (formats/text/parties.py)
        *(Finding("IP-REV-12", doubt, "warning", "review") for doubt in fields.doubts),
    ]
    judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, [])
    return doc.outcome(fmt, findings, invoice, verdict_=judged)


def _corrected(text: str, origin: Literal["text", "ocr"]) -> str | None:
    """A scan's text with OCR's look-alikes put right, as the reader reads it (None for a text
    layer, whose characters are the PDF's own)."""
    if origin != "ocr":
        return None
    return "\n".join(normalize_ocr(line) for line in text.split("\n"))


def _page_against_xml(
    data: bytes, document: PdfDocument, invoice: Invoice, doc: Reading
) -> list[Finding]:
    """What the visible page says against the embedded XML (intake/domain/hybrid.py); the XML is what
    is booked, a difference is for a person to see."""
    try:
        text, method = extract_text(data, document)
    except Exception as exc:  # the XML is read; a page we cannot read is only not compared
        doc.raw["page_check"] = f"the page could not be read: {type(exc).__name__}"
        return []
    doc.raw["page_check"] = method
    return hybrid.compare(text, invoice)


def _parse_pdf(data: bytes, doc: Reading) -> ParseOutcome:
    try:
        document = opened_pdf(data, doc)
    except PdfUnreadable as exc:
        return doc.outcome("pdf", [Finding(None, str(exc), stage="read")])
    einvoice = read_embedded(
        document, doc, compare_page=lambda invoice: _page_against_xml(data, document, invoice, doc)
    )
    if einvoice is not None:
        return einvoice
    text, method = extract_text(data, document)
    doc.raw["pdf"]["text_method"] = method
    if has_text_layer(text):
        if document.page_count > MAX_TEXT_PAGES:
            # Reading only the first pages could miss the totals, which usually come last.
            message = (
                f"the PDF has {document.page_count} pages and no embedded invoice XML; "
                f"its text is read from at most {MAX_TEXT_PAGES} pages, so it was not read"
            )
            return doc.outcome("text-pdf", [Finding(None, message, stage="read")])
        return _text_outcome(text, doc, fmt="text-pdf", origin="text", scale=1.0)
    if document.page_count > MAX_OCR_PAGES:
        message = (
            f"the scan has {document.page_count} pages; OCR reads at most {MAX_OCR_PAGES} "
            "pages, so it was not read"
        )
        return doc.outcome("image-pdf", [Finding(None, message, stage="read")])
    note = "the PDF has no text layer and no embedded invoice XML; it needs OCR"
    return doc.outcome("image-pdf", [Finding(None, note, "warning", "read")], status="NEEDS_OCR")


def parse_document(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    today: date | None = None,
) -> ParseOutcome:
    """Read, parse and validate one document. Never raises for bad input.

    XML (CII, UBL, ZUGFeRD 1.0) and PDFs with embedded invoice XML go through XSD, schematron
    and our rules (the e-invoice library, `einvoice/read.py`), a hybrid PDF's page compared with
    its XML; text PDFs through text extraction and our rules; images and scanned PDFs come back
    as NEEDS_OCR for `parse_ocr_text`.
    """
    doc = Reading.of(data, filename, max_bytes=max_bytes, today=today)
    refused = doc.refusal(data)
    if refused is not None:
        return refused
    kind = sniff(data)
    doc.raw["kind"] = kind
    warning = _extension_warning(filename, kind)
    if warning:
        doc.findings.append(warning)
    return doc.guarded(kind, lambda: _parse_kind(kind, data, doc))


def _parse_kind(kind: str, data: bytes, doc: Reading) -> ParseOutcome:
    if kind == "pdf":
        return _parse_pdf(data, doc)
    if kind == "xml":
        return read_xml(data, doc)
    if kind in ("png", "jpeg", "tiff"):
        doc.raw["image_type"] = kind
        note = Finding(None, f"{KIND_LABEL[kind]} needs OCR", "warning", "read")
        return doc.outcome("image", [note], status="NEEDS_OCR")
    message = f"not a PDF, XML or image file: the content is {KIND_LABEL[kind]}"
    return doc.outcome(kind, [Finding(None, message, stage="read")])


def parse_page_text(
    text: str, *, origin: Literal["text", "ocr"] = "text", today: date | None = None
) -> ParseOutcome:
    """The outcome of a page's text read as a text PDF's (or, with origin "ocr", a scan's) would
    be: the fields, our rules and the plausibility checks (benchmarks and tools that have the
    text already)."""
    doc = Reading(
        digest=hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(), raw={}, today=today
    )
    fmt = "text-pdf" if origin == "text" else "image-pdf"
    return _text_outcome(text, doc, fmt=fmt, origin=origin, scale=1.0)


def reread_with_layout(
    outcome: ParseOutcome, learned: dict[str, TextField], note: Finding
) -> ParseOutcome | None:
    """A text or OCR reading again from its stored text, with the fields a supplier's learned
    layout read (`learned`) first and every rule and proof as before; `note` says so among its
    findings. None when the stored text is not the whole text read (cut at RAW_TEXT_CHARS)."""
    raw = dict(outcome.raw)
    text, origin = raw.get("text"), raw.get("extraction")
    if not isinstance(text, str) or origin not in ("text", "ocr") or len(text) >= RAW_TEXT_CHARS:
        return None
    for key in ("fields", "proofs", "vat_breakdown_from_lines"):
        raw.pop(key, None)
    scale = 1.0
    confidence = raw.get("ocr_confidence") if origin == "ocr" else None
    if isinstance(confidence, int | float):
        scale = min(max(confidence / 100 if confidence > 1 else confidence, 0.0), 1.0)
    kept = [f for f in (*outcome.errors, *outcome.warnings) if f.stage == "read"]
    doc = Reading(digest=outcome.content_hash, raw=raw, findings=[*kept, note])
    return _text_outcome(text, doc, fmt=outcome.format, origin=origin, scale=scale, learned=learned)


def parse_ocr_text(
    text: str,
    *,
    source_format: str,
    confidence: float | None,
    content_hash: str | None = None,
    today: date | None = None,
) -> ParseOutcome:
    """Extract fields from OCR output and run the same rules as for every other input.

    `confidence` is the OCR engine's page confidence, in [0, 1] or in percent; every field's own
    confidence is scaled by it. `content_hash` should be the original file's hash (from the
    NEEDS_OCR outcome); without it the hash of the text is used.
    """
    scale = 1.0
    if confidence is not None:
        scale = confidence / 100 if confidence > 1 else confidence
        scale = min(max(scale, 0.0), 1.0)
    digest = content_hash or hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    doc = Reading(digest=digest, raw={"ocr_confidence": confidence}, today=today)
    if not text.strip():
        nothing = [Finding(None, "OCR found no text", stage="ocr")]
        judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, nothing)
        return doc.outcome(source_format, nothing, verdict_=judged)
    return _text_outcome(text, doc, fmt=source_format, origin="ocr", scale=scale)


def parse_ocr_pages(
    pages: Sequence[Any], *, source_format: str, content_hash: str | None = None
) -> ParseOutcome:
    """`parse_ocr_text` over a scan's pages as the OCR engine read them (`OcrPage`): each page's
    words laid out in columns where they stand, the page turned back level first
    (`OcrPage.layout_text`, resources/ocr/words.py), so that a row's label and its amount at the
    far margin are one line and a table's values stand in their columns; the confidence is the
    pages' mean."""
    text = "\n".join(page.layout_text() for page in pages)
    confidences = [page.confidence for page in pages if page.confidence is not None]
    return parse_ocr_text(
        text,
        source_format=source_format,
        confidence=sum(confidences) / len(confidences) if confidences else None,
        content_hash=content_hash,
    )


# a scan whose OCR stopped part way (a page over its time budget): for a person, never read on
OCR_UNFINISHED_RULE = "IP-OCR-02"


def unfinished_scan(
    fmt: str, reason: str, *, content_hash: str, raw: dict | None = None
) -> ParseOutcome:
    """NEEDS_REVIEW with `reason` (one sentence naming the page) and an invoice with no values:
    nothing read from a partly read scan is taken, so nothing of it can be VALIDATED; a person
    reads the scan and enters what it says."""
    doc = Reading(digest=content_hash, raw=dict(raw or {}))
    finding = Finding(OCR_UNFINISHED_RULE, f"{reason}; a person reads this scan", stage="review")
    judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, [finding])
    nothing = Invoice(origin="ocr")
    return doc.outcome(fmt, [finding], nothing, status="NEEDS_REVIEW", verdict_=judged)
