"""Parse and validate one incoming document (XML, PDF, image) into a ParseOutcome: format dispatch.

`parse_document` never raises for bad input: every problem becomes a finding and the outcome is
FAILED (or NEEDS_OCR for scans). It runs in the worker processes of `intake/workers.py`
(`SafeParser`), which add a time limit per document and isolation from crashing libraries.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import PurePath
from typing import Any, Literal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding, check_invoice
from invoice_pipelines.core.skonto import text_terms
from invoice_pipelines.einvoice import schematron, verdict
from invoice_pipelines.einvoice.classes import NotEInvoiceReason, Verdict, decide
from invoice_pipelines.einvoice.readers.cii import CII_NS, parse_cii
from invoice_pipelines.einvoice.readers.pdf import (
    PREFERRED_ATTACHMENTS,
    PdfDocument,
    PdfUnreadable,
    open_pdf,
)
from invoice_pipelines.einvoice.readers.ubl import UBL_CREDITNOTE_NS, UBL_INVOICE_NS, parse_ubl
from invoice_pipelines.einvoice.readers.xmlsafe import SafeXml, XmlRejected, parse_xml
from invoice_pipelines.einvoice.readers.zugferd1 import ZUGFERD1_NS, parse_zugferd1
from invoice_pipelines.intake import hybrid, plausibility
from invoice_pipelines.intake.formats.pdf_text import extract_text, has_text_layer
from invoice_pipelines.intake.formats.text import extract_fields
from invoice_pipelines.limits import MAX_OCR_PAGES, MAX_TEXT_PAGES, PARSE_WORKER_MEMORY_BYTES
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

Status = Literal["VALIDATED", "FAILED", "NEEDS_OCR", "NEEDS_REVIEW"]
# Text extraction and OCR values below this confidence are flagged for a human to look at.
LOW_CONFIDENCE = 0.6
RAW_TEXT_CHARS = 20_000
OUT_OF_MEMORY = (
    "the parser ran out of memory reading this file "
    f"(each parse worker may use {PARSE_WORKER_MEMORY_BYTES // (1024 * 1024)} MiB)"
)

SYNTAX_BY_NAMESPACE = {
    CII_NS: "cii",
    UBL_INVOICE_NS: "ubl",
    UBL_CREDITNOTE_NS: "ubl-creditnote",
    ZUGFERD1_NS: "zugferd1",
}
PDF_FORMAT_BY_SYNTAX = {
    "cii": "facturx-pdf",
    "zugferd1": "zugferd1-pdf",
    "ubl": "ubl-pdf",
    "ubl-creditnote": "ubl-pdf",
}
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


@dataclass
class ParseOutcome:
    """The result of reading one document; `raw` is what the database keeps as raw_json."""

    format: str
    status: Status
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    invoice: Invoice | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""
    # what the document is under German VAT law (None: nothing was read, e.g. NEEDS_OCR)
    verdict: Verdict | None = None
    # why a person must look at it before it is booked (a text/OCR field that is not certain, a
    # page that shows other values than its XML); status NEEDS_REVIEW where it decides
    review: list[Finding] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "status": self.status,
            "verdict": None if self.verdict is None else self.verdict.to_json_dict(),
            "errors": [f.to_json_dict() for f in self.errors],
            "warnings": [f.to_json_dict() for f in self.warnings],
            "review": [f.to_json_dict() for f in self.review],
            "invoice": None if self.invoice is None else self.invoice.to_json_dict(),
            "raw": self.raw,
            "content_hash": self.content_hash,
        }


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _collapse(findings: list[Finding]) -> list[Finding]:
    """Merge identical findings (a schematron reports one per occurrence) into one with a count."""
    counts = Counter(findings)
    merged = []
    for finding in dict.fromkeys(findings):
        n = counts[finding]
        if n > 1:
            finding = Finding(
                finding.rule, f"{finding.message} ({n} times)", finding.severity, finding.stage
            )
        merged.append(finding)
    return merged


REVIEW_STAGES = frozenset({"review", "hybrid"})


def _status(
    verdict_: Verdict | None, invoice: Invoice | None, errors: list[Finding], review: list[Finding]
) -> Status:
    """What the document becomes under the default policy (einvoice.classes.DEFAULT_POLICY);
    the intake run applies the organization's own policy to the same outcome."""
    if invoice is None or verdict_ is None:
        return "FAILED" if errors or invoice is None else "VALIDATED"
    action = decide(
        verdict_,
        own_errors=any(f.stage == "rules" for f in errors),
        doubt_stages=[f.stage for f in review],
    )
    return {"reject": "FAILED", "review": "NEEDS_REVIEW", "accept": "VALIDATED"}[action]


def _outcome(
    fmt: str,
    findings: list[Finding],
    *,
    invoice: Invoice | None,
    raw: dict[str, Any],
    digest: str,
    status: Status | None = None,
    verdict_: Verdict | None = None,
) -> ParseOutcome:
    review = _collapse([f for f in findings if f.stage in REVIEW_STAGES])
    rest = [f for f in findings if f.stage not in REVIEW_STAGES]
    errors = _collapse([f for f in rest if f.severity == "error"])
    warnings = _collapse([f for f in rest if f.severity != "error"])
    if verdict_ is not None:
        raw["verdict"] = verdict_.to_json_dict()
    return ParseOutcome(
        format=fmt,
        status=status or _status(verdict_, invoice, errors, review),
        errors=errors,
        warnings=warnings,
        invoice=invoice,
        raw=raw,
        content_hash=digest,
        verdict=verdict_,
        review=review,
    )


def failed(
    fmt: str, stage: str, message: str, *, digest: str, raw: dict[str, Any] | None = None
) -> ParseOutcome:
    """A FAILED outcome with one error; for problems found before any invoice could be read."""
    # no verdict: what stopped it (an original we cannot read, a worker's time or memory limit)
    # says nothing for sure about the supplier's document
    finding = Finding(None, message, stage=stage)
    return _outcome(fmt, [finding], invoice=None, raw=raw or {}, digest=digest)


# Stages of findings that say more about us than about the supplier's file: no verdict on it.
UNSURE = frozenset({"internal", "memory"})


@dataclass
class _Document:
    """One document being read: what every step records into and the findings so far."""

    digest: str
    raw: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    today: date | None = None
    # a hybrid PDF's page compared with its XML (off only for the documents we write ourselves)
    compare_page: bool = True

    def outcome(
        self,
        fmt: str,
        findings: list[Finding],
        invoice: Invoice | None = None,
        status: Status | None = None,
        verdict_: Verdict | None = None,
    ) -> ParseOutcome:
        everything = [*self.findings, *findings]
        if verdict_ is None and status is None and not any(f.stage in UNSURE for f in everything):
            # nothing could be read as an invoice: a file that is not a (readable) e-invoice
            verdict_ = verdict.not_einvoice(NotEInvoiceReason.FORMAT_ERROR, everything)
        return _outcome(
            fmt,
            everything,
            invoice=invoice,
            raw=self.raw,
            digest=self.digest,
            status=status,
            verdict_=verdict_,
        )


def sniff(data: bytes) -> str:
    """What the bytes are, by content not by name: pdf, xml, png, jpeg, tiff, zip or unknown."""
    if b"%PDF-" in data[:1024]:
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


def _validate_xml(
    safe: SafeXml, doc: _Document
) -> tuple[str | None, Invoice | None, list[Finding], Verdict]:
    """Map one safely parsed XML invoice and run every rule source on it (einvoice/verdict.py):
    its findings and its class."""
    syntax = SYNTAX_BY_NAMESPACE.get(safe.namespace)
    doc.raw["root"] = (
        f"{{{safe.namespace}}}{safe.local_name}" if safe.namespace else safe.local_name
    )
    if syntax is None:
        message = (
            f"not an e-invoice: the root element is <{safe.local_name}> in namespace "
            f"'{safe.namespace or '(none)'}' (expected CII, UBL Invoice/CreditNote or ZUGFeRD 1.0)"
        )
        findings = [Finding(None, message, stage="parse")]
        return None, None, findings, verdict.classify(None, None, findings, {})
    if syntax == "cii":
        invoice, findings = parse_cii(safe.root)
    elif syntax == "zugferd1":
        invoice, findings = parse_zugferd1(safe.root)
    else:
        invoice, findings = parse_ubl(safe.root)
    plan = schematron.plan_for(syntax, invoice.guideline_id)
    doc.raw.update(
        syntax=syntax,
        guideline_id=invoice.guideline_id,
        profile=invoice.profile,
        validation=plan.to_json_dict(),
    )
    ran, sources = verdict.run_rules(safe.root, safe.text, syntax, invoice, plan)
    findings += ran
    findings += check_invoice(invoice, today=doc.today)
    sources["ours"] = verdict.CHECKED
    findings = verdict.with_scenario_levels(findings, syntax, invoice.guideline_id, sources)
    judged = verdict.classify(syntax, invoice, findings, sources)
    return syntax, invoice, findings, judged


def _parse_xml_file(data: bytes, doc: _Document) -> ParseOutcome:
    try:
        safe = parse_xml(data, max_bytes=doc.max_bytes)
    except XmlRejected as exc:
        return doc.outcome("xml", [Finding(None, str(exc), stage="parse")])
    syntax, invoice, findings, judged = _validate_xml(safe, doc)
    return doc.outcome(syntax or "xml", findings, invoice, verdict_=judged)


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
    text: str, doc: _Document, *, fmt: str, origin: Literal["text", "ocr"], scale: float
) -> ParseOutcome:
    fields = extract_fields(text)
    invoice = fields.to_invoice(origin=origin, confidence_scale=scale)
    # the Skonto a page states in words ("2 % Skonto bei Zahlung innerhalb von 10 Tagen")
    invoice = replace(invoice, discount_terms=tuple(text_terms(text)))
    doc.raw.update(extraction=origin, fields=fields.to_json_dict(), text=text[:RAW_TEXT_CHARS])
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
        *doubts,
        *plausibility.review_findings(invoice, text, origin=origin, today=doc.today),
    ]
    judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, [])
    return doc.outcome(fmt, findings, invoice, verdict_=judged)


def _choose_xml(found: list[tuple[str, SafeXml]]) -> tuple[str, SafeXml]:
    for preferred in PREFERRED_ATTACHMENTS:
        for name, safe in found:
            if name.lower() == preferred:
                return name, safe
    return found[0]


def _embedded_xml(
    document: PdfDocument, doc: _Document
) -> tuple[list[tuple[str, SafeXml]], list[Finding]]:
    """Every embedded file that is an invoice XML, and why each XML-looking one is not."""
    found: list[tuple[str, SafeXml]] = []
    broken: list[Finding] = []
    for attachment in document.attachments:
        if not attachment.looks_like_xml():
            continue
        if attachment.data is None:
            message = f"embedded file '{attachment.name}': {attachment.error}"
            broken.append(Finding(None, message, stage="parse"))
            continue
        try:
            safe = parse_xml(attachment.data, max_bytes=doc.max_bytes)
        except XmlRejected as exc:
            message = f"embedded file '{attachment.name}' is not parseable XML: {exc}"
            broken.append(Finding(None, message, stage="parse"))
            continue
        if safe.namespace in SYNTAX_BY_NAMESPACE:
            found.append((attachment.name, safe))
    return found, broken


NOT_COMPARED = "not compared (a document we wrote: its page and XML come from one invoice)"


def _page_against_xml(
    data: bytes, document: PdfDocument, invoice: Invoice, doc: _Document
) -> list[Finding]:
    """What the visible page says against the embedded XML (intake/hybrid.py); the XML is what
    is booked, a difference is for a person to see."""
    try:
        text, method = extract_text(data, document)
    except Exception as exc:  # the XML is read; a page we cannot read is only not compared
        doc.raw["page_check"] = f"the page could not be read: {type(exc).__name__}"
        return []
    doc.raw["page_check"] = method
    return hybrid.compare(text, invoice)


def _parse_pdf(data: bytes, doc: _Document) -> ParseOutcome:
    try:
        document = open_pdf(data)
    except PdfUnreadable as exc:
        return doc.outcome("pdf", [Finding(None, str(exc), stage="read")])
    doc.raw["pdf"] = {
        "pages": document.page_count,
        "attachments": document.attachment_summary(),
        "problems": document.problems,
    }
    found, broken = _embedded_xml(document, doc)
    unread = [
        Finding(None, f"embedded file '{a.name}' was {a.error}", "warning", "read")
        for a in document.attachments
        if a.over_limit and not a.looks_like_xml()
    ]
    doc.findings.extend(unread)
    if found:
        name, safe = _choose_xml(found)
        doc.raw["xml_attachment"] = name
        notes = [Finding(f.rule, f.message, "warning", f.stage) for f in broken]
        if len(found) > 1:
            message = f"the PDF holds {len(found)} invoice XML files; '{name}' was used"
            notes.append(Finding(None, message, "warning", "read"))
        # (A broken second XML next to a good one is worth a look, not a rejection.)
        syntax, invoice, findings, judged = _validate_xml(safe, doc)
        if invoice is not None and doc.compare_page:
            findings += _page_against_xml(data, document, invoice, doc)
        elif invoice is not None:
            doc.raw["page_check"] = NOT_COMPARED
        return doc.outcome(
            PDF_FORMAT_BY_SYNTAX.get(syntax or "", "pdf"),
            [*notes, *findings],
            invoice,
            verdict_=judged,
        )
    if broken:
        # The PDF meant to carry an e-invoice and it is broken: falling back to the text layer
        # would hide the defect from the supplier who has to fix it.
        return doc.outcome("facturx-pdf", broken)
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
    compare_page: bool = True,
) -> ParseOutcome:
    """Read, parse and validate one document. Never raises for bad input.

    XML (CII, UBL, ZUGFeRD 1.0) and PDFs with embedded invoice XML go through XSD, schematron
    and our rules; text PDFs through text extraction and our rules; images and scanned PDFs
    come back as NEEDS_OCR for `parse_ocr_text`.

    `compare_page=False` leaves out the comparison of a hybrid PDF's page with its XML (the
    page's text extracted: most of the time a one-page hybrid takes): for the documents we
    write, whose page and XML come from one invoice (`intake/read_back.py`); every supplier
    document is compared.
    """
    doc = _Document(
        digest=content_hash(data),
        raw={"filename": filename, "bytes": len(data)},
        max_bytes=max_bytes,
        today=today,
        compare_page=compare_page,
    )
    if not data:
        return doc.outcome("empty", [Finding(None, "the file is empty", stage="read")])
    if len(data) > max_bytes:
        message = f"the file is {len(data)} bytes, more than the limit of {max_bytes} bytes"
        return doc.outcome("unknown", [Finding(None, message, stage="read")])
    kind = sniff(data)
    doc.raw["kind"] = kind
    warning = _extension_warning(filename, kind)
    if warning:
        doc.findings.append(warning)
    try:
        if kind == "pdf":
            return _parse_pdf(data, doc)
        if kind == "xml":
            return _parse_xml_file(data, doc)
        if kind in ("png", "jpeg", "tiff"):
            doc.raw["image_type"] = kind
            note = Finding(None, f"{KIND_LABEL[kind]} needs OCR", "warning", "read")
            return doc.outcome("image", [note], status="NEEDS_OCR")
        message = f"not a PDF, XML or image file: the content is {KIND_LABEL[kind]}"
        return doc.outcome(kind, [Finding(None, message, stage="read")])
    except MemoryError:
        # The parse workers run under limits.PARSE_WORKER_MEMORY_BYTES; the memory is free again
        # once this frame is gone, so the worker can go on with the next document.
        return doc.outcome(kind, [Finding(None, OUT_OF_MEMORY, stage="memory")])
    except Exception as exc:  # last line of defence: a library bug must not lose the document
        message = f"unexpected error while reading the file: {type(exc).__name__}: {exc}"
        return doc.outcome(kind, [Finding(None, message, stage="internal")])


def parse_page_text(
    text: str, *, origin: Literal["text", "ocr"] = "text", today: date | None = None
) -> ParseOutcome:
    """The outcome of a page's text read as a text PDF's (or, with origin "ocr", a scan's) would
    be: the fields, our rules and the plausibility checks (benchmarks and tools that have the
    text already)."""
    doc = _Document(
        digest=hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(), raw={}, today=today
    )
    fmt = "text-pdf" if origin == "text" else "image-pdf"
    return _text_outcome(text, doc, fmt=fmt, origin=origin, scale=1.0)


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
    doc = _Document(digest=digest, raw={"ocr_confidence": confidence}, today=today)
    if not text.strip():
        nothing = [Finding(None, "OCR found no text", stage="ocr")]
        judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, nothing)
        return doc.outcome(source_format, nothing, verdict_=judged)
    return _text_outcome(text, doc, fmt=source_format, origin="ocr", scale=scale)
