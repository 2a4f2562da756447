"""What a sales invoice's documents are made of: the normalized EN 16931 invoice, the terms the
model does not carry (extras), the customer's language and e-invoice format.

Read set-based for a batch of invoices (one query per kind of row). The seller is the
organization: its name, VAT id and country from the organization row, its address, bank account
and contact from `organizations.settings["seller"]`:

    {"street": "Industriestraße 5", "postal_code": "70565", "city": "Stuttgart",
     "iban": "DE02120300000000202051", "bic": "BYLADEM1001", "email": "rechnung@example.de",
     "phone": "+49 711 123456", "contact_name": "Buchhaltung", "tax_number": "99/123/45678"}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy.engine import Connection

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.dunning import invoice_default_sentence
from invoice_pipelines.core.invoice import Address, Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.skonto import (
    DiscountTerm,
    customer_terms,
    describe,
    offers,
    recorded_terms,
    terms_from_settings,
)
from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, SEPA_CREDIT_TRANSFER
from invoice_pipelines.einvoice.layout import format_date

# UNTDID 5305 categories whose invoices state a reason for the missing VAT (BT-120)
EXEMPTION_REASONS = {
    "de": {
        "AE": "Steuerschuldnerschaft des Leistungsempfängers (§ 13b UStG)",
        "K": "Steuerfreie innergemeinschaftliche Lieferung (§ 4 Nr. 1b UStG)",
        "G": "Steuerfreie Ausfuhrlieferung (§ 4 Nr. 1a UStG)",
        "E": "Steuerbefreit",
        "O": "Nicht steuerbar",
    },
    "en": {
        "AE": "Reverse charge",
        "K": "Intra-community supply",
        "G": "Export outside the EU",
        "E": "Exempt from VAT",
        "O": "Not subject to VAT",
    },
}


@dataclass(frozen=True)
class DocumentSource:
    """Everything needed to write one invoice's documents; picklable (built in worker processes)."""

    sales_invoice_id: int
    invoice: Invoice
    extras: dict[str, Any]
    language: str
    einvoice_format: str  # facturx | xrechnung-cii | xrechnung-ubl
    filename: str  # the PDF's file name
    customer_email: str | None = None
    customer_phone: str | None = None
    leitweg_id: str | None = None  # the customer's own buyer reference (XRechnung needs one)
    seller: dict[str, Any] = field(default_factory=dict)
    # both participant ids when the organization and the customer are on Peppol: the invoice
    # gets a Peppol BIS document too (BT-34, BT-49 of it only; its other documents keep their
    # e-mail addresses)
    seller_peppol_id: str | None = None
    buyer_peppol_id: str | None = None


def _address(street, postal_code, city, country) -> Address:
    return Address(street or None, city or None, postal_code or None, country or None)


def _payment_terms(language: str, due: date | None, issue: date) -> str | None:
    if due is None:
        return None
    days = (due - issue).days
    if language == "en":
        return f"Payable within {days} days without deduction." if days > 0 else "Payable at once."
    return f"Zahlbar innerhalb von {days} Tagen ohne Abzug." if days > 0 else "Sofort zahlbar."


def _credit_terms(language: str, corrects: str, corrects_date: date, reason: str | None) -> str:
    """What a credit note says instead of payment terms: the invoice it corrects, by number and
    date (a correction must name the invoice unambiguously, § 31(5) UStDV), and why."""
    if language == "en":
        text = f"Credit note for invoice {corrects} of {format_date(corrects_date, 'en')}."
        return f"{text} Reason: {reason}" if reason else text
    text = f"Rechnungskorrektur zu Rechnung {corrects} vom {format_date(corrects_date, 'de')}."
    return f"{text} Grund: {reason}" if reason else text


def load_sources(
    conn: Connection, organization: Organization, invoice_ids: Sequence[int]
) -> dict[int, DocumentSource]:
    """DocumentSource per sales invoice id of this organization (ids it does not have are left out)."""
    if not invoice_ids:
        return {}
    seller = dict(organization.seller)
    rows = sales_ledger.read_invoices(conn, organization.id, invoice_ids, *DOCUMENT_FIELDS)
    wanted = [r.id for r in rows]
    lines, taxes = _invoice_lines(conn, wanted), sales_ledger.read_vat_breakdowns(conn, wanted)
    seller_address = _address(
        seller.get("street"),
        seller.get("postal_code"),
        seller.get("city"),
        organization.country or "DE",
    )
    sentences: dict[str, str | None] = {}

    def default_sentence(language: str) -> str | None:
        if language not in sentences:
            sentences[language] = invoice_default_sentence(organization, language)
        return sentences[language]

    discount_terms = terms_from_settings(organization.settings)
    seller_peppol_id = organization.peppol_participant or None
    sources = {}
    for r in rows:
        language = r.customer_language if r.customer_language in EXEMPTION_REASONS else "de"
        invoice = _invoice(
            r, organization, seller, seller_address, lines.get(r.id, ()), taxes.get(r.id, ())
        )
        extras = _extras(r, invoice, language, seller, taxes.get(r.id, ()), default_sentence)
        terms = _discount_terms(r, organization, discount_terms)
        if terms and not r.corrects_number and r.type_code != "381":
            invoice, extras = _with_discount(invoice, extras, terms, language)
        sources[r.id] = DocumentSource(
            sales_invoice_id=r.id,
            invoice=invoice,
            extras={k: v for k, v in extras.items() if v not in (None, "")},
            language=language,
            einvoice_format=r.customer_einvoice_format,
            filename=f"{_safe(r.invoice_number)}.pdf",
            customer_email=r.customer_email,
            customer_phone=r.customer_phone,
            leitweg_id=r.customer_buyer_reference,
            seller={k: v for k, v in seller.items() if isinstance(v, str | int | Decimal)},
            seller_peppol_id=seller_peppol_id if r.customer_peppol_participant else None,
            buyer_peppol_id=r.customer_peppol_participant if seller_peppol_id else None,
        )
    return sources


def _discount_terms(
    r, organization: Organization, default: list[DiscountTerm]
) -> list[DiscountTerm]:
    """The steps an invoice's document states: those recorded with its first document
    (`sales_invoices.skonto_steps`: an invoice's terms never change once issued), else the
    customer's own (customers.skonto) over the organization's default."""
    if r.skonto_steps is not None:
        return recorded_terms(r.skonto_steps, r.invoice_number)
    if r.customer_skonto is None:
        return default
    return customer_terms(r.customer_skonto, organization.settings, r.customer_number)


def _with_discount(
    invoice: Invoice, extras: dict, terms: list[DiscountTerm], language: str
) -> tuple[Invoice, dict]:
    """An invoice with its early-payment discount (the customer's or the organization's): the
    steps go into the XML (BT-20, core/skonto.py), and the payment terms say each in words with
    its last day and amounts (the full amount is then due 'net', not 'without deduction'). The
    seller is the organization: its country (the seller address's, which the plain layout writes
    its dates by) decides how the last day is written, 11/20/2026 for a US seller."""
    found = offers(terms, invoice.issue_date, invoice.amount_due)
    if not found:
        return invoice, extras
    text = (extras.get("payment_terms") or "").replace(" ohne Abzug.", " netto.")
    text = text.replace(" without deduction.", " net.")
    currency = invoice.currency or "EUR"
    words = " ".join(describe(o, currency, language, invoice.seller_country) for o in found)
    return (
        replace(invoice, discount_terms=tuple(terms)),
        {**extras, "payment_terms": f"{text} {words}".strip()},
    )


# what a document reads of each invoice (sales_ledger.py): the invoice, its customer and, for a
# credit note, the invoice it corrects (BT-25, BT-26: billing/domain/credit_notes.py)
DOCUMENT_FIELDS = (
    "id",
    "invoice_number",
    "type_code",
    "issue_date",
    "due_date",
    "currency",
    "net_total",
    "tax_total",
    "gross_total",
    "customer_name",
    "customer_street",
    "customer_postal_code",
    "customer_city",
    "customer_country",
    "customer_vat_id",
    "customer_email",
    "customer_phone",
    "customer_language",
    "customer_einvoice_format",
    "customer_buyer_reference",
    "customer_peppol_participant",
    "customer_number",
    "customer_skonto",
    "skonto_steps",
    "credit_reason",
    "corrects_number",
    "corrects_date",
)


def _invoice_lines(conn: Connection, wanted: list[int]) -> dict[int, list[InvoiceLine]]:
    """Each invoice's lines in order, as EN 16931 lines; one query."""
    lines: dict[int, list[InvoiceLine]] = {}
    for invoice_id, rows in sales_ledger.read_lines(conn, wanted).items():
        document = lines[invoice_id] = []
        for row in rows:
            quantity, price = row["quantity"], row["unit_price"]
            if price < 0:
                # BR-27: a net price is never negative; a discount line is minus one unit instead
                quantity, price = -quantity, -price
            document.append(
                InvoiceLine(
                    # numbered 1, 2, ... on each document: a credit note's lines keep the number
                    # of the invoice line they credit in line_no (what is left to credit), which
                    # is not the position on the credit note
                    line_id=str(len(document) + 1),
                    description=row["description"],
                    quantity=quantity,
                    unit_code="C62",
                    unit_price=price,
                    net_amount=row["net_amount"],
                    vat_category=row["vat_category"],
                    vat_rate=row["vat_rate"],
                )
            )
    return lines


def _invoice(
    r, organization: Organization, seller: dict, seller_address: Address, lines, taxes
) -> Invoice:
    """One row as the normalized EN 16931 invoice."""
    language = r.customer_language if r.customer_language in EXEMPTION_REASONS else "de"
    reasons = EXEMPTION_REASONS[language]
    breakdown = tuple(
        VatBreakdown(
            category,
            rate,
            basis,
            amount,
            exemption_reason=reasons.get(category) if category != "S" else None,
        )
        for category, rate, basis, amount in taxes
    )
    invoice_lines = tuple(lines)
    iban = (seller.get("iban") or "").replace(" ", "") or None
    return Invoice(
        number=r.invoice_number,
        type_code=r.type_code,
        issue_date=r.issue_date,
        due_date=r.due_date,
        currency=r.currency,
        guideline_id=EN16931_GUIDELINE,
        seller_name=organization.name,
        seller_vat_id=organization.vat_id,
        seller_address=seller_address,
        buyer_name=r.customer_name,
        buyer_vat_id=r.customer_vat_id,
        buyer_address=_address(
            r.customer_street, r.customer_postal_code, r.customer_city, r.customer_country
        ),
        iban=iban,
        payment_means_code=SEPA_CREDIT_TRANSFER if iban else None,
        line_total=sum((line.net_amount for line in invoice_lines), ZERO),
        net_total=r.net_total,
        tax_total=r.tax_total,
        gross_total=r.gross_total,
        prepaid=None,
        amount_due=r.gross_total,
        lines=invoice_lines,
        vat_breakdown=breakdown,
    )


def _extras(r, invoice: Invoice, language: str, seller: dict, taxes, default_sentence) -> dict:
    """The terms the EN 16931 model does not carry: delivery, references, contacts, the terms."""
    return {
        # sales invoices are issued when the goods or services are delivered: the
        # Leistungsdatum (BT-72) the law asks for is the invoice date. A credit note corrects
        # that supply: its Leistungsdatum is the corrected invoice's (that invoice's date, as
        # above), never its own date; one that names no invoice states none rather than a
        # wrong one
        "delivery_date": r.corrects_date if r.type_code == "381" else r.issue_date,
        # an intra-EU supply names where the goods went (BR-IC-12); no separate delivery
        # address is recorded, so it is the buyer's, in full (XRechnung BR-DE-10/11)
        "delivery_address": invoice.buyer_address if any(c == "K" for c, *_ in taxes) else None,
        "buyer_reference": r.customer_buyer_reference or r.customer_number,
        "payment_terms": _terms(r, language, default_sentence),
        "preceding_invoice_number": r.corrects_number,
        "preceding_invoice_date": r.corrects_date,
        # BT-22: why the credit note was issued, as the user gave it
        "note": r.credit_reason,
        "seller_tax_number": seller.get("tax_number"),
        "seller_electronic_address": seller.get("email"),
        "buyer_electronic_address": r.customer_email,
        "seller_contact_name": seller.get("contact_name"),
        "seller_contact_phone": seller.get("phone"),
        "seller_contact_email": seller.get("email"),
    }


def _terms(r, language: str, default_sentence) -> str | None:
    """A credit note's reference to what it corrects, or the payment terms with the § 286(3)
    sentence where the organization asks for it."""
    if r.corrects_number:
        return _credit_terms(language, r.corrects_number, r.corrects_date, r.credit_reason)
    parts = (
        _payment_terms(language, r.due_date, r.issue_date),
        # a credit note is not paid, so it puts nobody in default
        None if r.type_code == "381" or r.due_date is None else default_sentence(language),
    )
    return " ".join(part for part in parts if part) or None


def _safe(number: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in number)[:120] or "invoice"
