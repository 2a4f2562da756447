"""One sales invoice's documents, written and proven: the Factur-X PDF (PDF/A-3b, CII EN 16931
inside as `factur-x.xml`) and, for customers who need it, the XRechnung XML.

A document counts as built only when reading it back as a supplier's would be read gives the
same invoice: the e-invoice library's reader (`einvoice.read_back.READ_BACK`: XSD, the official
EN 16931/Factur-X schematron, our rules, as the intake reads every received e-invoice) must find
it VALIDATED without a finding, and the number, dates, currency and totals it reads must equal the
invoice's. An XRechnung must also pass the official German KoSIT XRechnung rules
(BR-DE-*, read from INVOICE_PIPELINES_XRECHNUNG_RULES_DIR); a fatal finding fails it like a CEN
one. Without that setting the XRechnung is still built, and `BuiltDocument.xrechnung_rules` says
"KoSIT rules not configured" (logged once per process). Anything else is a failed document with
the findings and rule ids; it is never stored as if it were good, and never sent.

`prove_peppol` writes and proves a Peppol BIS Billing 3.0 UBL document the same way: read back
as a supplier's, it must be VALIDATED without a finding, give the same invoice, and OpenPEPPOL's
rules (INVOICE_PIPELINES_PEPPOL_RULES_DIR) must have run on it without a fatal finding. Unlike
an XRechnung, a Peppol document is not built without those rules: the network's access points
check them, so an unchecked document is a failed one (IP-DOC-PEPPOL). `build_document` writes
it for an invoice whose organization and customer both have a participant id, after the PDF
has proved; one that does not prove is recorded as failed with its findings, the PDF stands,
and delivery sends the invoice by e-mail saying why (docs/peppol.md).

`build_in_worker` is the entry the worker processes run (`documents/domain/renderer.py`, a worker pool
with this target): the schematrons are compiled once per worker, a document that hangs or crashes
costs a worker, not the batch.
"""

from __future__ import annotations

import logging
import pickle
import time
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from invoice_pipelines.core.invoice import Address, Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.documents.domain.built import BuiltDocument
from invoice_pipelines.documents.domain.payment_qr import payment_qr
from invoice_pipelines.documents.domain.plain import build_plain_document
from invoice_pipelines.documents.domain.render import RenderError, render_pdf
from invoice_pipelines.documents.domain.sources import DocumentSource
from invoice_pipelines.einvoice.cii import (
    EN16931_GUIDELINE,
    PEPPOL_BIS_GUIDELINE,
    XRECHNUNG_GUIDELINE,
    InvoiceNotWritable,
    write_cii,
)
from invoice_pipelines.einvoice.read_back import READ_BACK, ReadBack, RulesMissing
from invoice_pipelines.einvoice.ubl import write_ubl
from invoice_pipelines.einvoice.verdict import warm_up as rules_warm_up

log = logging.getLogger(__name__)
KOSIT_CHECKED = "KoSIT XRechnung rules"
KOSIT_NOT_CONFIGURED = "KoSIT rules not configured"

# what must read back exactly as written
ROUND_TRIP_FIELDS = (
    "number",
    "type_code",
    "issue_date",
    "due_date",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
    "amount_due",
)


# Intake rules about documents received, not about what an invoice is: a received invoice dated
# in the future is suspicious, but we may issue ours for a coming date (batch invoicing's
# invoice_date). The read-back ignores them; every EN 16931 rule stays.
RECEIVING_ONLY_RULES = frozenset({"IP-DATE-01"})


def _round_trip(
    read_back: ReadBack, invoice: Invoice, data: bytes, filename: str, what: str
) -> list[dict]:
    outcome = read_back.read(data, filename)
    errors = [
        {"rule": f.rule or f.stage or "parse", "message": f"{what}: {f.message}"}
        for f in outcome.errors
        if f.rule not in RECEIVING_ONLY_RULES
    ]
    if (
        outcome.status != "VALIDATED"
        and not errors
        and not any(f.rule in RECEIVING_ONLY_RULES for f in outcome.errors)
    ):
        errors.append({"rule": "IP-DOC-READ", "message": f"{what}: read back as {outcome.status}"})
    read = outcome.invoice
    if read is not None:
        for name in ROUND_TRIP_FIELDS:
            wrote, got = getattr(invoice, name), getattr(read, name)
            if name == "type_code":
                wrote = wrote or "380"
            if wrote != got:
                errors.append(
                    {
                        "rule": "IP-DOC-ROUNDTRIP",
                        "message": f"{what}: {name} reads back as {got!r}, written {wrote!r}",
                    }
                )
    return errors


@lru_cache(maxsize=256)
def _iban_problem(iban: str) -> str | None:
    """Why the IBAN is invalid, or None; an organization's documents show the same one, which
    costs schwifty about 0.1 ms each time."""
    try:
        IBAN(iban)
    except SchwiftyException as exc:
        return str(exc)
    return None


_kosit_warned = False


def _kosit(read_back: ReadBack, data: bytes, syntax: str, built: BuiltDocument) -> list[dict]:
    """The KoSIT XRechnung rules' fatal findings on a written XRechnung (warnings do not fail it)."""
    global _kosit_warned
    try:
        findings = read_back.xrechnung_findings(data.decode("utf-8"), syntax)
    except RulesMissing as exc:
        return [{"rule": "IP-DOC-KOSIT", "message": f"XRechnung: {exc}"}]
    if findings is None:
        built.xrechnung_rules = KOSIT_NOT_CONFIGURED
        if not _kosit_warned:  # once per process, not once per invoice
            _kosit_warned = True
            log.warning(
                "%s: XRechnung documents are checked against EN 16931 only; set %s to the folder "
                "of the compiled KoSIT rules",
                KOSIT_NOT_CONFIGURED,
                read_back.xrechnung_rules_setting,
            )
        return []
    built.xrechnung_rules = KOSIT_CHECKED
    return [
        {"rule": f.rule or "KoSIT", "message": f"XRechnung (KoSIT): {f.message}"}
        for f in findings
        if f.severity == "error"
    ]


def build_document(
    source: DocumentSource, *, created: datetime | None = None, read_back: ReadBack = READ_BACK
) -> BuiltDocument:
    """The documents of one invoice, proven by `read_back` (the e-invoice library's reader)."""
    # documents/domain/formats.py chose a plain PDF (or refused the format): no e-invoice path then
    if getattr(source, "document_format", "facturx") != "facturx":
        return build_plain_document(source, created=created)
    started = time.perf_counter()
    built = BuiltDocument(source.sales_invoice_id)
    invoice = source.invoice
    errors = built.errors
    if invoice.iban:
        problem = _iban_problem(invoice.iban)
        if problem is not None:
            errors.append(
                {"rule": "IP-DOC-IBAN", "message": f"the seller IBAN is invalid: {problem}"}
            )
    xrechnung = source.einvoice_format.startswith("xrechnung")
    if xrechnung and not source.leitweg_id:
        errors.append(
            {
                "rule": "IP-DOC-LEITWEG",
                "message": "the customer receives XRechnung but has no Leitweg-ID "
                "(customers.buyer_reference, BT-10)",
            }
        )
    if errors:
        built.seconds = time.perf_counter() - started
        return built
    try:
        xml = write_cii(invoice, guideline_id=EN16931_GUIDELINE, extra=source.extras)
        # the page with the CII embedded as factur-x.xml, in one pass (documents/domain/pdfa.py)
        pdf = render_pdf(
            invoice,
            language=source.language,
            payment_terms=source.extras.get("payment_terms"),
            service_date=source.extras.get("delivery_date"),
            qr=payment_qr(source),
            created=created,
            xml=xml,
        )
    except (InvoiceNotWritable, RenderError, ValueError) as exc:
        rule = "IP-DOC-LAYOUT" if isinstance(exc, RenderError) else "IP-DOC-WRITE"
        errors.append({"rule": rule, "message": str(exc)})
        built.seconds = time.perf_counter() - started
        return built
    errors.extend(_round_trip(read_back, invoice, pdf, source.filename, "Factur-X PDF"))
    if xrechnung:
        extras = {**source.extras, "buyer_reference": source.leitweg_id}
        try:
            if source.einvoice_format == "xrechnung-ubl":
                data = write_ubl(invoice, customization_id=XRECHNUNG_GUIDELINE, extra=extras)
            else:
                data = write_cii(invoice, guideline_id=XRECHNUNG_GUIDELINE, extra=extras)
        except (InvoiceNotWritable, ValueError) as exc:
            errors.append({"rule": "IP-DOC-WRITE", "message": f"XRechnung: {exc}"})
        else:
            name = source.filename.rsplit(".", 1)[0] + "_xrechnung.xml"
            errors.extend(_round_trip(read_back, invoice, data, name, "XRechnung"))
            syntax = "ubl" if source.einvoice_format == "xrechnung-ubl" else "cii"
            errors.extend(_kosit(read_back, data, syntax, built))
            built.xrechnung, built.xrechnung_name = data, name
    if not errors:
        built.pdf = pdf
        if source.seller_peppol_id and source.buyer_peppol_id:
            _peppol(read_back, source, built)
    else:
        built.xrechnung = None
    built.seconds = time.perf_counter() - started
    return built


def _peppol(read_back: ReadBack, source: DocumentSource, built: BuiltDocument) -> None:
    """The Peppol BIS document of an invoice to a customer on Peppol, beside its PDF: the same
    extras, with both participant ids as the electronic addresses (BT-34, BT-49)."""
    extras = {
        **source.extras,
        "seller_peppol_id": source.seller_peppol_id,
        "buyer_peppol_id": source.buyer_peppol_id,
    }
    name = source.filename.rsplit(".", 1)[0] + "_peppol.xml"
    data, errors = prove_peppol(source.invoice, extras, name, read_back=read_back)
    built.peppol, built.peppol_name, built.peppol_errors = data, name, errors


def prove_peppol(
    invoice: Invoice, extras: dict, filename: str, *, read_back: ReadBack = READ_BACK
) -> tuple[bytes | None, list[dict]]:
    """The invoice (or credit note, type code 381) as a Peppol BIS Billing 3.0 UBL document and
    the errors that keep it from being one: (document, []) when it proves, else (None, errors)
    with their rule ids. `extras` are the writer's (`DocumentExtras`), with `seller_peppol_id`,
    `buyer_peppol_id` and a buyer or order reference."""
    what = "Peppol BIS"
    try:
        data = write_ubl(invoice, customization_id=PEPPOL_BIS_GUIDELINE, extra=extras)
    except (InvoiceNotWritable, ValueError) as exc:
        return None, [{"rule": "IP-DOC-WRITE", "message": f"{what}: {exc}"}]
    errors = _round_trip(read_back, invoice, data, filename, what)
    syntax = "ubl-creditnote" if (invoice.type_code or "380") == "381" else "ubl"
    try:
        findings = read_back.peppol_findings(data.decode("utf-8"), syntax)
    except RulesMissing as exc:
        findings, problem = None, str(exc)
    else:
        problem = f"set {read_back.peppol_rules_setting} to the folder of the compiled rules"
    if findings is None:
        errors.append(
            {
                "rule": "IP-DOC-PEPPOL",
                "message": f"{what}: OpenPEPPOL's rules did not run: {problem}",
            }
        )
    else:
        errors += [
            {"rule": f.rule or "Peppol", "message": f"{what} (OpenPEPPOL): {f.message}"}
            for f in findings
            if f.severity == "error"
        ]
    return (None, errors) if errors else (data, [])


# what a worker of the renderer runs as it starts (resources/workers/worker_pool.py)
WARM_UP = "invoice_pipelines.documents.domain.build:warm_up"


def warm_up() -> None:
    """The reader's rules compiled (`verdict.warm_up`), then one made-up invoice's documents
    built and proved, nothing kept: a worker's first document no longer pays for the font read,
    the first run of the compiled rules and the modules its path loads (about 0.1 s of CPU that
    the run's first documents paid, per worker)."""
    rules_warm_up()
    d = Decimal
    lines = (
        InvoiceLine(
            "1", "Präzisionsteil", None, d(2), "C62", d("12.50"), None, d("25.00"), "S", d(19)
        ),
        InvoiceLine("2", "Fachbuch", None, d(1), "C62", d("39.95"), None, d("39.95"), "S", d(7)),
    )
    breakdown = (
        VatBreakdown("S", d(19), d("25.00"), d("4.75")),
        VatBreakdown("S", d(7), d("39.95"), d("2.80")),
    )
    invoice = Invoice(
        number="WARM-UP-1",
        type_code="380",
        issue_date=date(2026, 1, 2),
        due_date=date(2026, 1, 16),
        currency="EUR",
        guideline_id=EN16931_GUIDELINE,
        seller_name="Warm-up GmbH",
        seller_vat_id="DE123456789",
        seller_address=Address("Hauptstraße 1", "Berlin", "10115", "DE"),
        buyer_name="Kunde GmbH",
        buyer_address=Address("Marktplatz 3", "München", "80331", "DE"),
        iban="DE02120300000000202051",
        payment_means_code="58",
        line_total=d("64.95"),
        net_total=d("64.95"),
        tax_total=d("7.55"),
        gross_total=d("72.50"),
        amount_due=d("72.50"),
        lines=lines,
        vat_breakdown=breakdown,
    )
    extras = {
        "payment_terms": "Zahlbar innerhalb von 14 Tagen ohne Abzug.",
        "delivery_date": invoice.issue_date,
        "seller_contact_email": "rechnung@example.de",
        "seller_electronic_address": "rechnung@example.de",
        "buyer_electronic_address": "einkauf@example.com",
    }
    source = DocumentSource(0, invoice, extras, "de", "facturx", "WARM-UP-1.pdf")
    try:
        built = build_document(source)
    except Exception as exc:  # each real document meets it again and fails with it on its own
        log.warning("the warm-up document could not be built: %s: %s", type(exc).__name__, exc)
        return
    if not built.ok:  # each document says so with its own findings; here only a hint
        log.warning("the warm-up document did not prove: %s", built.errors)


def build_in_worker(data: bytes, filename: str, **_options) -> BuiltDocument | list[BuiltDocument]:
    """Worker entry (the renderer's target): `data` is the pickled reader and a DocumentSource, or
    a list of them, from our own parent (documents/domain/renderer.py)."""
    # written by the parent process, never by a user
    read_back, sources = pickle.loads(data)  # noqa: S301
    if isinstance(sources, list):
        return [build_document(source, read_back=read_back) for source in sources]
    return build_document(sources, read_back=read_back)
