"""Reading one e-invoice into a `ParseOutcome`: an XML invoice (CII, UBL Invoice/CreditNote,
ZUGFeRD 1.0) or the invoice XML a PDF carries (Factur-X/ZUGFeRD, or an XRechnung or UBL embedded),
mapped to the invoice model (readers/), checked by every rule source that applies (verdict.py:
XSD, CEN's EN 16931 rules, the Factur-X profile rules, KoSIT's XRechnung rules; then our own,
core/rules.py) and judged under German VAT law (classes.py).

Nothing here raises for bad input: every problem becomes a finding and the outcome is FAILED.
The intake reads every supplier document through this (`intake/domain/parse.py`, which adds the text
PDFs, scans and the comparison of a hybrid's page with its XML); `read_einvoice` reads a whole
e-invoice file alone, as the read-back of the documents we write does (read_back.py).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.core.rules import Finding, check_invoice
from invoice_pipelines.einvoice import schematron, verdict
from invoice_pipelines.einvoice.classes import NotEInvoiceReason, Verdict, decide
from invoice_pipelines.einvoice.readers.cii import CII_NS, parse_cii
from invoice_pipelines.einvoice.readers.pdf import (
    PREFERRED_ATTACHMENTS,
    PdfDocument,
    PdfUnreadable,
    looks_like_pdf,
    open_pdf,
)
from invoice_pipelines.einvoice.readers.ubl import UBL_CREDITNOTE_NS, UBL_INVOICE_NS, parse_ubl
from invoice_pipelines.einvoice.readers.xmlsafe import SafeXml, XmlRejected, parse_xml
from invoice_pipelines.einvoice.readers.zugferd1 import ZUGFERD1_NS, parse_zugferd1
from invoice_pipelines.limits import PARSE_WORKER_MEMORY_BYTES
from invoice_pipelines.settings import DEFAULT_MAX_UPLOAD_BYTES

Status = Literal["VALIDATED", "FAILED", "NEEDS_OCR", "NEEDS_REVIEW"]
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
    """What the document becomes under the default policy (classes.DEFAULT_POLICY); the intake
    run applies the organization's own policy to the same outcome."""
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
class Reading:
    """One document being read: what every step records into and the findings so far."""

    digest: str
    raw: dict[str, Any]
    findings: list[Finding] = field(default_factory=list)
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    today: date | None = None

    @classmethod
    def of(
        cls,
        data: bytes,
        filename: str,
        *,
        max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
        today: date | None = None,
    ) -> Reading:
        """The reading of one file's bytes, before anything is read from them."""
        raw = {"filename": filename, "bytes": len(data)}
        return cls(digest=content_hash(data), raw=raw, max_bytes=max_bytes, today=today)

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

    def refusal(self, data: bytes) -> ParseOutcome | None:
        """The outcome of a file that is not read at all (empty, over the size limit), or None."""
        if not data:
            return self.outcome("empty", [Finding(None, "the file is empty", stage="read")])
        if len(data) > self.max_bytes:
            message = (
                f"the file is {len(data)} bytes, more than the limit of {self.max_bytes} bytes"
            )
            return self.outcome("unknown", [Finding(None, message, stage="read")])
        return None

    def guarded(self, kind: str, read: Callable[[], ParseOutcome]) -> ParseOutcome:
        """`read()`, or the FAILED outcome of what it raised: bad input never raises."""
        try:
            return read()
        except MemoryError:
            # The parse workers run under limits.PARSE_WORKER_MEMORY_BYTES; the memory is free
            # again once this frame is gone, so the worker can go on with the next document.
            return self.outcome(kind, [Finding(None, OUT_OF_MEMORY, stage="memory")])
        except Exception as exc:  # last line of defence: a library bug must not lose the document
            message = f"unexpected error while reading the file: {type(exc).__name__}: {exc}"
            return self.outcome(kind, [Finding(None, message, stage="internal")])


def _validate_xml(
    safe: SafeXml, reading: Reading
) -> tuple[str | None, Invoice | None, list[Finding], Verdict]:
    """Map one safely parsed XML invoice and run every rule source on it (verdict.py): its
    findings and its class."""
    syntax = SYNTAX_BY_NAMESPACE.get(safe.namespace)
    reading.raw["root"] = (
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
    reading.raw.update(
        syntax=syntax,
        guideline_id=invoice.guideline_id,
        profile=invoice.profile,
        validation=plan.to_json_dict(),
    )
    ran, sources = verdict.run_rules(safe.root, safe.text, syntax, invoice, plan)
    findings += ran
    findings += check_invoice(invoice, today=reading.today)
    sources["ours"] = verdict.CHECKED
    findings = verdict.with_scenario_levels(findings, syntax, invoice.guideline_id, sources)
    judged = verdict.classify(syntax, invoice, findings, sources)
    return syntax, invoice, findings, judged


def read_xml(data: bytes, reading: Reading) -> ParseOutcome:
    """One XML file read as an e-invoice."""
    try:
        safe = parse_xml(data, max_bytes=reading.max_bytes)
    except XmlRejected as exc:
        return reading.outcome("xml", [Finding(None, str(exc), stage="parse")])
    syntax, invoice, findings, judged = _validate_xml(safe, reading)
    return reading.outcome(syntax or "xml", findings, invoice, verdict_=judged)


def opened_pdf(data: bytes, reading: Reading, *, simple_first: bool = False) -> PdfDocument:
    """The PDF opened (readers/pdf.py; `simple_first` as there), its pages and embedded files
    recorded in `raw["pdf"]`, an embedded file left unread for a limit a warning; PdfUnreadable
    when it cannot be opened."""
    document = open_pdf(data, simple_first=simple_first)
    reading.raw["pdf"] = {
        "pages": document.page_count,
        "attachments": document.attachment_summary(),
        "problems": document.problems,
    }
    reading.findings.extend(
        Finding(None, f"embedded file '{a.name}' was {a.error}", "warning", "read")
        for a in document.attachments
        if a.over_limit and not a.looks_like_xml()
    )
    return document


def _choose_xml(found: list[tuple[str, SafeXml]]) -> tuple[str, SafeXml]:
    for preferred in PREFERRED_ATTACHMENTS:
        for name, safe in found:
            if name.lower() == preferred:
                return name, safe
    return found[0]


def _embedded_xml(
    document: PdfDocument, reading: Reading
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
            safe = parse_xml(attachment.data, max_bytes=reading.max_bytes)
        except XmlRejected as exc:
            message = f"embedded file '{attachment.name}' is not parseable XML: {exc}"
            broken.append(Finding(None, message, stage="parse"))
            continue
        if safe.namespace in SYNTAX_BY_NAMESPACE:
            found.append((attachment.name, safe))
    return found, broken


NOT_COMPARED = "not compared (a document we wrote: its page and XML come from one invoice)"
# what the page of a hybrid PDF says against the invoice read from its XML: findings of stage
# "hybrid" (for a person to look at), and `raw["page_check"]` recorded
PageCheck = Callable[[Invoice], list[Finding]]


def read_embedded(
    document: PdfDocument, reading: Reading, *, compare_page: PageCheck | None = None
) -> ParseOutcome | None:
    """The e-invoice a PDF carries, read (the specification's file name first when it holds
    several), its page compared by `compare_page`; a broken invoice XML is FAILED, never passed
    over. None: the PDF carries no invoice XML, its page is all there is."""
    found, broken = _embedded_xml(document, reading)
    if found:
        name, safe = _choose_xml(found)
        reading.raw["xml_attachment"] = name
        notes = [Finding(f.rule, f.message, "warning", f.stage) for f in broken]
        if len(found) > 1:
            message = f"the PDF holds {len(found)} invoice XML files; '{name}' was used"
            notes.append(Finding(None, message, "warning", "read"))
        # (A broken second XML next to a good one is worth a look, not a rejection.)
        syntax, invoice, findings, judged = _validate_xml(safe, reading)
        if invoice is not None and compare_page is not None:
            findings += compare_page(invoice)
        elif invoice is not None:
            reading.raw["page_check"] = NOT_COMPARED
        return reading.outcome(
            PDF_FORMAT_BY_SYNTAX.get(syntax or "", "pdf"),
            [*notes, *findings],
            invoice,
            verdict_=judged,
        )
    if broken:
        # The PDF meant to carry an e-invoice and it is broken: falling back to the text layer
        # would hide the defect from the supplier who has to fix it.
        return reading.outcome("facturx-pdf", broken)
    return None


NO_INVOICE_XML = "the PDF carries no invoice XML (Factur-X/ZUGFeRD, XRechnung or UBL)"


def _read_pdf(data: bytes, reading: Reading) -> ParseOutcome:
    try:
        # nothing here reads the pages' text: a PDF of the simple shape ours have (every
        # document we write, read back) is read without pypdf, the same files from the bytes
        document = opened_pdf(data, reading, simple_first=True)
    except PdfUnreadable as exc:
        return reading.outcome("pdf", [Finding(None, str(exc), stage="read")])
    found = read_embedded(document, reading)
    if found is not None:
        return found
    nothing = [Finding(None, NO_INVOICE_XML, stage="read")]
    judged = verdict.not_einvoice(NotEInvoiceReason.NO_XML, nothing)
    return reading.outcome("pdf", nothing, verdict_=judged)


def read_einvoice(
    data: bytes,
    filename: str,
    *,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    today: date | None = None,
) -> ParseOutcome:
    """One e-invoice file read as a received one would be: a PDF (by its content) for the invoice
    XML it carries, anything else as XML. Its page is not compared with its XML (`NOT_COMPARED`):
    for the documents we write, whose page and XML come from one invoice. Never raises for bad
    input."""
    reading = Reading.of(data, filename, max_bytes=max_bytes, today=today)
    refused = reading.refusal(data)
    if refused is not None:
        return refused
    kind = "pdf" if looks_like_pdf(data) else "xml"
    reading.raw["kind"] = kind
    if kind == "pdf":
        return reading.guarded(kind, lambda: _read_pdf(data, reading))
    return reading.guarded(kind, lambda: read_xml(data, reading))
