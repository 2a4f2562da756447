"""From invoices to DATEV bookings: one row per invoice and VAT rate, or a reason to skip it.

Pure functions over what `exports.reads` loaded; no SQL, no files.

- Umsatz is the gross amount of the rate (basis + VAT), always positive. The side says the
  direction, relative to Konto (the partner account): a supplier invoice credits the creditor (H),
  a sales invoice debits the debtor (S). A credit note, or a negative amount, takes the other side.
- Konto is the partner's creditor/debtor account, Gegenkonto the expense/revenue account the
  organization maps the VAT category and rate to. A BU key is written only when the Gegenkonto is
  not an automatic account (DATEV derives the VAT of automatic accounts itself).
- An invoice that cannot be booked completely is skipped as a whole, with the reason: it is never
  half booked and never silently dropped.
- A partner's VAT id is written as DATEV takes it (`core.datev.vat_id_field`); one that had to be
  cleaned, or is left out because nothing usable remained, is listed in `BookingRules.cleaned`
  (the export's notes): a supplier's odd characters never stop the month's export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import NamedTuple

from invoice_pipelines.core.datev import (
    Booking,
    DatevFieldError,
    belegfeld,
    eu_country,
    rate_field,
    vat_id_field,
)
from invoice_pipelines.core.money import CENT, ZERO, round_cents
from invoice_pipelines.core.text import cut, printable
from invoice_pipelines.core.totals import ZERO_VAT_CATEGORIES
from invoice_pipelines.exports.domain.export_settings import ExportSettings

MAX_UMSATZ = Decimal(10) ** 10  # Umsatz: at most 10 digits before the decimal comma

# EN 16931 credit-note type codes (UNTDID 1001 as the standard lists them for BT-3)
CREDIT_NOTE_TYPES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)


class TaxRow(NamedTuple):
    """One VAT breakdown entry of an invoice (a tuple: tens of thousands are read per month)."""

    category: str | None
    rate: Decimal | None
    basis: Decimal | None
    amount: Decimal | None


class _once:
    """`functools.cached_property` without its lock: Python 3.11's takes an RLock on every first
    read, which cost an export as much as the key itself (tens of thousands of records a month,
    each read by one thread). Stored in the instance's dict, which shadows it from then on."""

    def __init__(self, func) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, instance, owner=None):
        if instance is None:
            return self
        value = instance.__dict__[self.name] = self.func(instance)
        return value


@dataclass
class InvoiceRecord:
    """What an export needs of one invoice (incoming or sales)."""

    id: int
    number: str | None
    type_code: str | None
    issue_date: date | None
    due_date: date | None
    currency: str | None
    net_total: Decimal | None
    tax_total: Decimal | None
    gross_total: Decimal | None
    partner_name: str | None
    partner_vat_id: str | None
    partner_country: str | None = None
    customer_number: str | None = None  # sales invoices
    street: str | None = None
    postal_code: str | None = None
    city: str | None = None
    service_date: date | None = None  # Leistungsdatum, where the document states it
    corrects_number: str | None = None  # sales credit notes: the invoice they correct (BT-25)
    status: str | None = None  # incoming invoices: VALIDATED | EXPORTED
    version: int | None = None  # incoming invoices: processing_version
    taxes: list[TaxRow] = field(default_factory=list)

    @_once
    def partner_key(self) -> str | None:
        """How a business partner is recognized across invoices: customer number, VAT id, name."""
        return partner_key(self.customer_number, self.partner_vat_id, self.partner_name)


_VAT_ID_SEPARATORS = re.compile(r"[\s.\-]+")


# a month has tens of thousands of invoices from a few hundred partners: each key is worked out once
@lru_cache(maxsize=4096)
def partner_key(customer_number: str | None, vat_id: str | None, name: str | None) -> str | None:
    """The key of `InvoiceRecord.partner_key` from the partner's customer number, VAT id, name."""
    if customer_number:
        return f"customer:{customer_number}"
    vat = _VAT_ID_SEPARATORS.sub("", vat_id or "").upper()
    if vat:
        return f"vat:{vat}"
    name = " ".join((name or "").split()).casefold()
    return f"name:{name}" if name else None


@dataclass(frozen=True)
class Skip:
    invoice: InvoiceRecord
    reason: str


@lru_cache(maxsize=256)
def rate_key(rate: Decimal) -> str:
    """19.00 -> "19", 5.50 -> "5.5": how rates appear in mapping keys and messages."""
    return format(rate.normalize(), "f")


class BookingRules:
    """The booking rules of one export (organization settings, direction, month), with what they
    give for each VAT key and each partner worked out once, not once per invoice."""

    def __init__(self, settings: ExportSettings, direction: str, period: str) -> None:
        self.settings = settings
        self.direction = direction
        self.period = period
        self.normal_side = "H" if direction == "incoming" else "S"
        self.other_side = "S" if self.normal_side == "H" else "H"
        self._accounts = (
            settings.expense_accounts if direction == "incoming" else settings.revenue_accounts
        )
        self._keys = settings.tax_keys.get(direction, {})
        self._vat: dict[tuple, tuple[int, str | None] | str] = {}
        self._partners: dict[str | None, tuple] = {}
        self._rates: dict[str, Decimal | str | None] = {}
        self._credit_notes: dict[str | None, bool] = {}  # type code -> a credit note?
        self._currency = settings.currency
        # VAT ids written otherwise than the document states them: one sentence per partner
        self.cleaned: list[str] = []

    def _partner(self, invoice: InvoiceRecord) -> tuple:
        key = invoice.partner_key
        found = self._partners.get(key)
        if found is None:
            settings = self.settings
            override = (
                settings.partner_expense_accounts.get(key or "")
                if self.direction == "incoming"
                else None
            )
            eu_vat_id = self._eu_vat_id(invoice)
            centers = settings.cost_centers
            own = (centers.get("partners") or {}).get(key or "") or {}
            found = (
                override,
                eu_vat_id,
                own.get("kost1") or centers.get("kost1"),
                own.get("kost2") or centers.get("kost2"),
            )
            self._partners[key] = found
        return found

    def _eu_vat_id(self, invoice: InvoiceRecord) -> str | None:
        """The partner's VAT id for "EU-Land u. UStID" (partners in another EU country)."""
        stated = invoice.partner_vat_id
        if not stated:
            return None
        vat_id = vat_id_field(stated)
        plain = re.sub(r"[\s.\-]+", "", stated).upper()
        if vat_id != plain and (eu_country(plain) or eu_country(vat_id)):
            shown = cut(printable(stated), 40).encode("ascii", "backslashreplace").decode()
            self.cleaned.append(
                f"VAT id {shown!r} of invoice {invoice.id}: "
                + (f"read as {vat_id}" if vat_id else "not a VAT id, left out")
            )
        partner_eu = eu_country(vat_id)
        return vat_id if partner_eu and partner_eu != self.settings.country else None

    def exchange_rate(self, currency: str) -> Decimal | str | None:
        """The rate for a foreign currency, or the reason there is none usable."""
        if currency not in self._rates:
            rate = self.settings.exchange_rate(currency, self.period)
            if rate is None:
                found: Decimal | str = (
                    f"currency {currency} without an exchange rate to {self.settings.currency} "
                    f"for {self.period} (organization settings exports.exchange_rates)"
                )
            else:
                try:
                    rate_field(rate)
                    found = rate
                except DatevFieldError as exc:
                    found = str(exc)
            self._rates[currency] = found
        return self._rates[currency]

    def _vat_terms(self, category: str | None, rate: Decimal | None, override: int | None):
        """(contra account, BU key) for a breakdown entry, or the reason it cannot be booked."""
        cache_key = (category, rate, override)
        found = self._vat.get(cache_key)
        if found is not None:
            return found
        found = self._resolve(category, rate, override)
        self._vat[cache_key] = found
        return found

    def _resolve(self, category: str | None, rate: Decimal | None, override: int | None):
        settings = self.settings
        category = (category or "").upper() or None
        if rate is None:
            return f"unknown VAT rate (no rate for category {category or '?'})"
        if category is None:
            if rate == 0:
                return (
                    "VAT at 0 % without a category: exempt, zero rated or reverse charge is unknown"
                )
            category = "S"
        if category == "S" and rate not in settings.known_rates:
            return f"unknown VAT rate {rate_key(rate)} % (category S)"
        if category != "S" and category not in ZERO_VAT_CATEGORIES:
            return f"unknown VAT category {category}"
        key = f"S:{rate_key(rate)}" if category == "S" else category
        contra = override or self._accounts.get(key)
        if contra is None:
            return f"no account mapping for VAT {category} {rate_key(rate)} % in {settings.chart}"
        tax_key = None
        if contra not in settings.automatic_accounts:
            tax_key = self._keys.get(key, self._keys.get(category))
            if tax_key is None:
                return (
                    f"no BU key for VAT {key} on the non-automatic account {contra} "
                    "(organization settings exports.tax_keys)"
                )
            tax_key = tax_key or None
        return (contra, tax_key)

    def plan(self, invoice: InvoiceRecord, account: int) -> list[Booking] | Skip:
        """The bookings of one invoice, or the reason it cannot be booked."""
        if invoice.issue_date is None:
            return Skip(invoice, "no invoice date (BT-2): the booking date is unknown")
        if not invoice.currency:
            return Skip(invoice, "no currency (BT-5)")
        if not invoice.taxes:
            return Skip(invoice, "no VAT breakdown: the amounts per VAT rate are unknown")
        exchange_rate = None
        if invoice.currency != self._currency:
            exchange_rate = self.exchange_rate(invoice.currency)
            if isinstance(exchange_rate, str):
                return Skip(invoice, exchange_rate)
        type_code = invoice.type_code
        credit_note = self._credit_notes.get(type_code)
        if credit_note is None:
            credit_note = self._credit_notes[type_code] = (
                type_code or ""
            ).strip() in CREDIT_NOTE_TYPES
        partner = self._partners.get(invoice.partner_key)
        override, eu_vat_id, kost1, kost2 = partner or self._partner(invoice)
        text = " ".join(f"{invoice.partner_name or ''} {invoice.number or ''}".split())
        if invoice.corrects_number:
            # the reference first: Buchungstext is cut at 60 characters, a long name must not
            # take the invoice the credit note corrects out of it
            text = " ".join(
                f"{invoice.number or ''} zu {invoice.corrects_number} {invoice.partner_name or ''}".split()
            )
        number = belegfeld(invoice.number)
        currency, issued, due, served = (
            invoice.currency,
            invoice.issue_date,
            invoice.due_date,
            invoice.service_date,
        )
        base_currency = self._currency if exchange_rate else None
        sides = (self.normal_side, self.other_side)  # [flipped]
        bookings: list[Booking] = []
        known_terms = self._vat
        for tax in invoice.taxes:
            terms = known_terms.get((tax.category, tax.rate, override))
            if terms is None:
                terms = self._vat_terms(tax.category, tax.rate, override)
            if isinstance(terms, str):
                return Skip(invoice, terms)
            if tax.basis is None:
                return Skip(invoice, "a VAT breakdown entry has no taxable amount")
            total = tax.basis + (tax.amount if tax.amount is not None else ZERO)
            # round_cents, without its checks for a Decimal (a zero is not written either way)
            gross = (
                total.quantize(CENT, rounding=ROUND_HALF_UP)
                if type(total) is Decimal
                else round_cents(total)
            )
            if gross == 0:
                continue  # zero-amount rows are not written
            negative = gross < 0
            amount = -gross if negative else gross
            if amount >= MAX_UMSATZ:
                return Skip(invoice, f"the amount {gross} is too large for DATEV (10 digits)")
            # positional, in Booking's field order (tens of thousands per month)
            bookings.append(
                Booking(
                    amount,
                    sides[credit_note != negative],
                    currency,
                    account,
                    terms[0],  # contra_account
                    terms[1],  # tax_key
                    issued,  # document_date
                    number,  # document_number
                    text,
                    due,  # due_date
                    served,  # service_date
                    eu_vat_id,
                    kost1,  # cost_center_1
                    kost2,  # cost_center_2
                    exchange_rate,
                    round_cents(amount / exchange_rate) if exchange_rate else None,  # base_amount
                    base_currency,
                )
            )
        return bookings
