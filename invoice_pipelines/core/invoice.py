"""The normalized EN 16931 invoice that every input (CII, UBL, ZUGFeRD 1, text, OCR) is mapped to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from invoice_pipelines.core.money import plain_string
from invoice_pipelines.core.skonto import DiscountTerm

# Where the values came from. Structured XML carries every business term it states; text and OCR
# extraction only find a handful, so the rules check less of them (see core/rules.py).
Origin = Literal["xml", "text", "ocr"]

FACTURX_PROFILES = ("minimum", "basicwl", "basic", "en16931", "extended")
# MINIMUM and BASIC WL are Factur-X profiles below EN 16931: they carry no invoice lines.
PROFILES_WITHOUT_LINES = frozenset({"minimum", "basicwl"})
ZUGFERD1_PROFILES = ("basic", "comfort", "extended")
ZUGFERD1_URN_PREFIX = "urn:ferd:CrossIndustryDocument:invoice:1p0:"


# The document totals (BG-22) as Invoice field -> business term, for messages about them.
TOTAL_TERMS = {
    "line_total": "sum of line net (BT-106)",
    "allowance_total": "sum of allowances (BT-107)",
    "charge_total": "sum of charges (BT-108)",
    "net_total": "total without VAT (BT-109)",
    "gross_total": "total with VAT (BT-112)",
    "prepaid": "paid amount (BT-113)",
    "rounding": "rounding amount (BT-114)",
    "amount_due": "amount due (BT-115)",
}


def facturx_profile(guideline_id: str | None) -> str | None:
    """The Factur-X / ZUGFeRD 2 profile that a BT-24 specification identifier names.

    None when BT-24 is missing or is not a Factur-X/ZUGFeRD 2 URN: XRechnung, Peppol and other
    CIUS identifiers are EN 16931 invoices too, but the Factur-X profile artefacts do not apply to
    them (the Factur-X EN16931 schematron rejects every XRechnung guideline ID).
    """
    if not guideline_id:
        return None
    urn = guideline_id.strip()
    if urn == "urn:cen.eu:en16931:2017":
        return "en16931"
    lowered = urn.lower()
    if "factur-x.eu" not in lowered and "zugferd.de" not in lowered:
        return None
    # The profile is the last segment, e.g. "...#compliant#urn:factur-x.eu:1p0:basic" or the
    # superseded 2017 form "urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic".
    last = re.split(r"[:#]", lowered)[-1].replace("-", "").replace("_", "")
    return last if last in FACTURX_PROFILES else None


def zugferd1_profile(guideline_id: str | None) -> str | None:
    """basic/comfort/extended for a ZUGFeRD 1.0 guideline URN, None for anything else."""
    if not guideline_id or not guideline_id.strip().startswith(ZUGFERD1_URN_PREFIX):
        return None
    last = guideline_id.strip()[len(ZUGFERD1_URN_PREFIX) :].lower()
    return last if last in ZUGFERD1_PROFILES else None


def _money(value: Decimal | None) -> str | None:
    return None if value is None else plain_string(value)


def _day(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address (BG-5 seller / BG-8 buyer); only what the rules and the UI need."""

    line_one: str | None = None
    city: str | None = None
    postcode: str | None = None
    country_code: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "line_one": self.line_one,
            "city": self.city,
            "postcode": self.postcode,
            "country_code": self.country_code,
        }


@dataclass(frozen=True, slots=True)
class CurrencyAmount:
    """An amount together with the currency the document attached to it (None when unstated)."""

    amount: Decimal
    currency: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {"amount": plain_string(self.amount), "currency": self.currency}


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One invoice line (BG-25)."""

    line_id: str | None = None  # BT-126
    description: str | None = None  # BT-153 item name: the text a person reads on the line
    item_description: str | None = None  # BT-154 longer item description
    quantity: Decimal | None = None  # BT-129
    unit_code: str | None = None  # BT-130
    unit_price: Decimal | None = None  # BT-146 item net price
    price_base_quantity: Decimal | None = None  # BT-149, price is per this many units
    net_amount: Decimal | None = None  # BT-131
    vat_category: str | None = None  # BT-151
    vat_rate: Decimal | None = None  # BT-152
    allowances: tuple[Decimal, ...] = ()  # BT-136 line allowance amounts
    charges: tuple[Decimal, ...] = ()  # BT-141 line charge amounts
    gross_price: Decimal | None = None  # BT-148 item gross price (before the price discount)
    price_discount: Decimal | None = None  # BT-147 item price discount, per gross price unit
    # The percentage a single price discount was computed with (CII CalculationPercent, UBL
    # MultiplierFactorNumeric): the unrounded net price when BT-147 and BT-146 are printed rounded.
    price_discount_percent: Decimal | None = None
    # CII only (BT-149-1): the gross price's own base quantity; UBL has one for both prices.
    gross_price_base_quantity: Decimal | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "description": self.description,
            "item_description": self.item_description,
            "quantity": _money(self.quantity),
            "unit_code": self.unit_code,
            "unit_price": _money(self.unit_price),
            "price_base_quantity": _money(self.price_base_quantity),
            "net_amount": _money(self.net_amount),
            "vat_category": self.vat_category,
            "vat_rate": _money(self.vat_rate),
            "allowances": [plain_string(a) for a in self.allowances],
            "charges": [plain_string(c) for c in self.charges],
            "gross_price": _money(self.gross_price),
            "price_discount": _money(self.price_discount),
            "price_discount_percent": _money(self.price_discount_percent),
            "gross_price_base_quantity": _money(self.gross_price_base_quantity),
        }


@dataclass(frozen=True, slots=True)
class VatBreakdown:
    """One VAT breakdown entry (BG-23)."""

    category: str | None = None  # BT-118
    rate: Decimal | None = None  # BT-119
    basis: Decimal | None = None  # BT-116
    amount: Decimal | None = None  # BT-117
    exemption_reason: str | None = None  # BT-120

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "rate": _money(self.rate),
            "basis": _money(self.basis),
            "amount": _money(self.amount),
            "exemption_reason": self.exemption_reason,
        }


@dataclass(frozen=True, slots=True)
class AllowanceCharge:
    """A document-level allowance (BG-20) or charge (BG-21)."""

    is_charge: bool
    amount: Decimal | None = None  # BT-92 / BT-99
    base_amount: Decimal | None = None  # BT-93 / BT-100
    percent: Decimal | None = None  # BT-94 / BT-101
    vat_category: str | None = None  # BT-95 / BT-102
    vat_rate: Decimal | None = None  # BT-96 / BT-103
    reason: str | None = None  # BT-97 / BT-104

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "is_charge": self.is_charge,
            "amount": _money(self.amount),
            "base_amount": _money(self.base_amount),
            "percent": _money(self.percent),
            "vat_category": self.vat_category,
            "vat_rate": _money(self.vat_rate),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class PaymentAccount:
    """One account a document asks to be paid to (BG-17 credit transfer: BT-84 IBAN or other
    account id, BT-86 the payment service provider's BIC), as written, separators removed."""

    iban: str
    bic: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {"iban": self.iban, "bic": self.bic}


@dataclass(frozen=True, slots=True)
class Invoice:
    """An incoming invoice in EN 16931 terms. Amounts are Decimal exactly as the document states them."""

    number: str | None = None  # BT-1
    type_code: str | None = None  # BT-3 (380 invoice, 381 credit note, 389 self-billed, ...)
    issue_date: date | None = None  # BT-2
    due_date: date | None = None  # BT-9
    # Leistungsdatum for the books: BT-72 actual delivery date, else BT-74 end of the invoicing
    # period (BG-14); read where the document states it, never a reason to fail it
    service_date: date | None = None
    currency: str | None = None  # BT-5
    tax_currency: str | None = None  # BT-6
    guideline_id: str | None = None  # BT-24
    seller_name: str | None = None  # BT-27
    seller_vat_id: str | None = None  # BT-31
    seller_tax_number: str | None = None  # BT-32, the seller's tax registration (Steuernummer)
    # the seller's contact e-mail (BT-43), else its electronic address with scheme EM (BT-34):
    # where a rejection notice goes
    seller_email: str | None = None
    seller_address: Address | None = None  # BG-5
    buyer_name: str | None = None  # BT-44
    buyer_vat_id: str | None = None  # BT-48
    buyer_address: Address | None = None  # BG-8
    iban: str | None = None  # BT-84 payee account (the first of payment_accounts)
    # every credit-transfer account the document names (BG-17, each BT-84 with its BT-86), in
    # document order: the supplier check compares each one with the register
    payment_accounts: tuple[PaymentAccount, ...] = ()
    payment_means_code: str | None = None  # BT-81
    line_total: Decimal | None = None  # BT-106
    allowance_total: Decimal | None = None  # BT-107
    charge_total: Decimal | None = None  # BT-108
    net_total: Decimal | None = None  # BT-109
    tax_total: Decimal | None = None  # BT-110, in invoice currency
    tax_total_tax_currency: Decimal | None = None  # BT-111, in BT-6
    gross_total: Decimal | None = None  # BT-112
    prepaid: Decimal | None = None  # BT-113
    rounding: Decimal | None = None  # BT-114
    amount_due: Decimal | None = None  # BT-115
    # Every VAT total the document states, with its currency: BR-CO-15 needs to see duplicates
    # and totals in the wrong currency, which the single tax_total above cannot show.
    tax_total_entries: tuple[CurrencyAmount, ...] = ()
    lines: tuple[InvoiceLine, ...] = ()
    vat_breakdown: tuple[VatBreakdown, ...] = ()
    allowances_charges: tuple[AllowanceCharge, ...] = ()
    payment_terms: str | None = None  # BT-20 as the document states it
    # early-payment discount steps (Skonto, core/skonto.py): read from BT-20's XRechnung lines,
    # CII's ApplicableTradePaymentDiscountTerms or a page's words; written into BT-20
    discount_terms: tuple[DiscountTerm, ...] = ()
    origin: Origin = "xml"
    # Text/OCR extraction: field name -> confidence in [0, 1]. Empty for XML.
    confidence: dict[str, float] = field(default_factory=dict)

    @property
    def profile(self) -> str | None:
        """The Factur-X/ZUGFeRD profile named by BT-24 (ZUGFeRD 1 profiles included), else None."""
        return facturx_profile(self.guideline_id) or zugferd1_profile(self.guideline_id)

    @property
    def has_lines_by_profile(self) -> bool:
        """Whether this kind of document is expected to carry invoice lines at all."""
        return self.origin == "xml" and self.profile not in PROFILES_WITHOUT_LINES

    @property
    def allowances(self) -> tuple[AllowanceCharge, ...]:
        return tuple(ac for ac in self.allowances_charges if not ac.is_charge)

    @property
    def charges(self) -> tuple[AllowanceCharge, ...]:
        return tuple(ac for ac in self.allowances_charges if ac.is_charge)

    @property
    def seller_country(self) -> str | None:
        """The seller's country code (BT-40), None without an address: what decides how the
        seller's documents write dates and name their tax (einvoice/layout.py)."""
        return self.seller_address.country_code if self.seller_address else None

    def to_json_dict(self) -> dict[str, Any]:
        """JSON-able view: amounts as faithful decimal strings, dates ISO, absent values None."""
        return {
            "number": self.number,
            "type_code": self.type_code,
            "issue_date": _day(self.issue_date),
            "due_date": _day(self.due_date),
            "service_date": _day(self.service_date),
            "currency": self.currency,
            "tax_currency": self.tax_currency,
            "guideline_id": self.guideline_id,
            "profile": self.profile,
            "seller_name": self.seller_name,
            "seller_vat_id": self.seller_vat_id,
            "seller_tax_number": self.seller_tax_number,
            "seller_email": self.seller_email,
            "seller_address": self.seller_address.to_json_dict() if self.seller_address else None,
            "buyer_name": self.buyer_name,
            "buyer_vat_id": self.buyer_vat_id,
            "buyer_address": self.buyer_address.to_json_dict() if self.buyer_address else None,
            "iban": self.iban,
            "payment_accounts": [a.to_json_dict() for a in self.payment_accounts],
            "payment_means_code": self.payment_means_code,
            "line_total": _money(self.line_total),
            "allowance_total": _money(self.allowance_total),
            "charge_total": _money(self.charge_total),
            "net_total": _money(self.net_total),
            "tax_total": _money(self.tax_total),
            "tax_total_tax_currency": _money(self.tax_total_tax_currency),
            "gross_total": _money(self.gross_total),
            "prepaid": _money(self.prepaid),
            "rounding": _money(self.rounding),
            "amount_due": _money(self.amount_due),
            "lines": [line.to_json_dict() for line in self.lines],
            "vat_breakdown": [vat.to_json_dict() for vat in self.vat_breakdown],
            "allowances_charges": [ac.to_json_dict() for ac in self.allowances_charges],
            "payment_terms": self.payment_terms,
            "discount_terms": [term.to_json_dict() for term in self.discount_terms],
            "origin": self.origin,
            "confidence": dict(self.confidence),
        }


def allowance_and_charge_amounts(
    items: Iterable[AllowanceCharge],
) -> tuple[tuple[Decimal, ...], tuple[Decimal, ...]]:
    """The amounts stated of a line's allowances (BT-136) and of its charges (BT-141)."""
    stated = [item for item in items if item.amount is not None]
    return (
        tuple(item.amount for item in stated if not item.is_charge),
        tuple(item.amount for item in stated if item.is_charge),
    )


def pick_tax_total(
    entries: tuple[CurrencyAmount, ...], currency: str | None, tax_currency: str | None
) -> tuple[Decimal | None, Decimal | None]:
    """Split stated VAT totals into BT-110 (invoice currency) and BT-111 (VAT accounting currency).

    An entry without a currency counts as invoice currency. When BT-110 appears more than once we
    still return the first; BR-CO-15 reports the duplicate from `tax_total_entries`.
    """
    in_invoice = [e.amount for e in entries if e.currency is None or e.currency == currency]
    in_tax = [
        e.amount
        for e in entries
        if tax_currency and tax_currency != currency and e.currency == tax_currency
    ]
    return (in_invoice[0] if in_invoice else None, in_tax[0] if in_tax else None)
