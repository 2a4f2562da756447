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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from invoice_pipelines.core.datev import Booking, DatevFieldError, belegfeld, eu_country, rate_field
from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.exports.settings import ZERO_RATED, ExportSettings

# EN 16931 credit-note type codes (UNTDID 1001 as the standard lists them for BT-3)
CREDIT_NOTE_TYPES = frozenset(
    {"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"}
)


@dataclass(frozen=True)
class TaxRow:
    category: str | None
    rate: Decimal | None
    basis: Decimal | None
    amount: Decimal | None


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
    status: str | None = None  # incoming invoices: VALIDATED | EXPORTED
    version: int | None = None  # incoming invoices: processing_version
    taxes: list[TaxRow] = field(default_factory=list)

    @property
    def partner_key(self) -> str | None:
        """How a business partner is recognized across invoices: customer number, VAT id, name."""
        if self.customer_number:
            return f"customer:{self.customer_number}"
        vat = re.sub(r"[\s.\-]+", "", self.partner_vat_id or "").upper()
        if vat:
            return f"vat:{vat}"
        name = " ".join((self.partner_name or "").split()).casefold()
        return f"name:{name}" if name else None


@dataclass(frozen=True)
class Skip:
    invoice: InvoiceRecord
    reason: str


def rate_key(rate: Decimal) -> str:
    """19.00 -> "19", 5.50 -> "5.5": how rates appear in mapping keys and messages."""
    text = format(rate.normalize(), "f")
    return text


def plan_bookings(
    invoice: InvoiceRecord,
    *,
    direction: str,
    settings: ExportSettings,
    period: str,
    account: int,
) -> list[Booking] | Skip:
    """The bookings of one invoice, or the reason it cannot be booked."""
    if invoice.issue_date is None:
        return Skip(invoice, "no invoice date (BT-2): the booking date is unknown")
    if not invoice.currency:
        return Skip(invoice, "no currency (BT-5)")
    if not invoice.taxes:
        return Skip(invoice, "no VAT breakdown: the amounts per VAT rate are unknown")
    exchange_rate = None
    if invoice.currency != settings.currency:
        exchange_rate = settings.exchange_rate(invoice.currency, period)
        if exchange_rate is None:
            return Skip(
                invoice,
                f"currency {invoice.currency} without an exchange rate to {settings.currency} "
                f"for {period} (organization settings exports.exchange_rates)",
            )
        try:
            rate_field(exchange_rate)
        except DatevFieldError as exc:
            return Skip(invoice, str(exc))
    credit_note = (invoice.type_code or "").strip() in CREDIT_NOTE_TYPES
    accounts = settings.expense_accounts if direction == "incoming" else settings.revenue_accounts
    override = (
        settings.partner_expense_accounts.get(invoice.partner_key or "")
        if direction == "incoming"
        else None
    )
    keys = settings.tax_keys.get(direction, {})
    partner_eu = eu_country(invoice.partner_vat_id)
    eu_vat_id = (
        re.sub(r"\s+", "", invoice.partner_vat_id or "").upper()
        if partner_eu and partner_eu != settings.country
        else None
    )
    centers = settings.cost_centers
    partner_centers = (centers.get("partners") or {}).get(invoice.partner_key or "") or {}
    text = " ".join(f"{invoice.partner_name or ''} {invoice.number or ''}".split())
    bookings: list[Booking] = []
    for tax in invoice.taxes:
        category = (tax.category or "").upper() or None
        if tax.rate is None:
            return Skip(invoice, f"unknown VAT rate (no rate for category {category or '?'})")
        if category is None:
            if tax.rate == 0:
                return Skip(
                    invoice,
                    "VAT at 0 % without a category: exempt, zero rated or reverse charge is unknown",
                )
            category = "S"
        if category == "S" and tax.rate not in settings.known_rates:
            return Skip(invoice, f"unknown VAT rate {rate_key(tax.rate)} % (category S)")
        if category != "S" and category not in ZERO_RATED:
            return Skip(invoice, f"unknown VAT category {category}")
        key = f"S:{rate_key(tax.rate)}" if category == "S" else category
        contra = override or accounts.get(key)
        if contra is None:
            return Skip(
                invoice,
                f"no account mapping for VAT {category} {rate_key(tax.rate)} % in {settings.chart}",
            )
        if tax.basis is None:
            return Skip(invoice, f"the VAT breakdown for {key} has no taxable amount")
        vat = tax.amount if tax.amount is not None else ZERO
        gross = round_cents(tax.basis + vat)
        if gross == 0:
            continue  # zero-amount rows are not written
        tax_key = None
        if contra not in settings.automatic_accounts:
            tax_key = keys.get(key, keys.get(category))
            if tax_key is None:
                return Skip(
                    invoice,
                    f"no BU key for VAT {key} on the non-automatic account {contra} "
                    "(organization settings exports.tax_keys)",
                )
            tax_key = tax_key or None
        normal_side = "H" if direction == "incoming" else "S"
        flipped = credit_note != (gross < 0)
        side = normal_side if not flipped else ("S" if normal_side == "H" else "H")
        base_amount = round_cents(abs(gross) / exchange_rate) if exchange_rate else None
        bookings.append(
            Booking(
                amount=abs(gross),
                side=side,
                currency=invoice.currency,
                account=account,
                contra_account=contra,
                tax_key=tax_key,
                document_date=invoice.issue_date,
                document_number=belegfeld(invoice.number),
                text=text,
                due_date=invoice.due_date,
                eu_vat_id=eu_vat_id,
                cost_center_1=partner_centers.get("kost1") or centers.get("kost1"),
                cost_center_2=partner_centers.get("kost2") or centers.get("kost2"),
                exchange_rate=exchange_rate,
                base_amount=base_amount,
                base_currency=settings.currency if exchange_rate else None,
            )
        )
    return bookings
