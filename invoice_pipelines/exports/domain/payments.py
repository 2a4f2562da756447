"""Sales payments in the Buchungsstapel: the money customers paid, with the discount (Skonto) they
took, booked in the month of the payment's day (issue 40, "DATEV gets the payment with its Skonto
amount").

The rows are `sales_invoice_payments` (what the QuickBooks payment pull read: each payment's day
and the money it applied to one of our invoices, quickbooks/domain/sync/sales_payments.py); the
discounts are `sales_invoice_discounts` (one row per VAT rate of an invoice settled within a
discount period, db/sales_discounts.py). Per payment:

- one booking of the money: Umsatz = the money, Soll on Konto = the organization's bank account
  (`exports.bank_account`, a Finanzkonto: money coming in debits the bank), Gegenkonto = the
  customer's debtor account (the one its invoices are booked on, `partner_accounts`), Belegfeld 1
  = the invoice number (the key DATEV's open items match a payment to its invoice by), Belegdatum
  = the payment's day, no BU key;
- the payment that settled an invoice with a discount (the one of the discount's day; of several
  that day the largest) instead gets one booking per VAT rate of what the invoice still bills:
  each with its share of the discount in column 13 (Skonto) and the rate's "Gewährte Skonti"
  account in column 125 (Abw. Skontokonto, `exports.discount_accounts`), and as Umsatz its share
  of the money: the payment split over the rates in proportion to what each rate still bills less
  its discount (rounded to the cent, the last rate takes the remainder). For a single payment that
  is exactly the rate's gross less its discount, so Umsatz + Skonto is each rate's gross and the
  bookings together are what the invoice still bills; with several payments, all of them together
  are.

A payment that cannot be booked (a foreign currency without an exchange rate, a discount on a VAT
key without a discount account) is left out and named in the export's notes
(`payments_not_booked`); the invoices are booked all the same. Everything is read before the plan
in four queries per month at most (the payments; the discounts of the month; what their invoices
still bill), never per invoice. Incoming invoices have no payments here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.datev import Booking, belegfeld
from invoice_pipelines.core.export_months import month_bounds
from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.db.sales_discounts import (
    DiscountTaken,
    discounts_paid_between,
    still_billed,
)
from invoice_pipelines.db.tables import sales_invoice_payments, sales_invoices
from invoice_pipelines.exports.domain.bookings import BookingRules, InvoiceRecord, rate_key
from invoice_pipelines.exports.domain.export_settings import ExportSettings
from invoice_pipelines.exports.domain.reads import sales_records_source
from invoice_pipelines.exports.domain.result import ExportResult


@dataclass(slots=True)
class PaymentRecord:
    """One payment's money applied to one invoice."""

    id: int  # the sales_invoice_payments row
    qbo_id: str
    paid_on: date
    amount: Decimal
    invoice: InvoiceRecord  # the invoice it paid (number, currency, customer; no VAT rows)

    @property
    def ref(self) -> str:
        """How the export's notes name it: the QBO payment and the invoice number."""
        return f"{self.qbo_id}:{self.invoice.number}"


@dataclass
class MonthPayments:
    """What a month's payments need: the payments of its days, the discounts reached on its days,
    and what those discounts' invoices still bill per VAT rate."""

    records: list[PaymentRecord] = field(default_factory=list)
    discounts: dict[int, DiscountTaken] = field(default_factory=dict)
    billed: dict[int, list[tuple[str, Decimal, Decimal]]] = field(default_factory=dict)

    def with_invoices(self, invoices: list[InvoiceRecord]) -> list[InvoiceRecord]:
        """The month's invoices and the invoices its payments paid (their customers need a debtor
        account whether or not their invoices are booked this month)."""
        if not self.records:
            return invoices
        return [*invoices, *(p.invoice for p in self.records)]


PaidBooked = list[tuple[PaymentRecord, list[Booking]]]


def load_payments(conn: Connection, organization_id: int, period: str, direction: str):
    """The month's payments (by their day) and what their discounts need; nothing for incoming
    invoices. Run it in the export's snapshot, before the plan."""
    if direction != "sales":
        return MonthPayments()
    start, end = month_bounds(period)
    p, s = sales_invoice_payments.c, sales_invoices.c
    invoices, invoice_columns = sales_records_source()
    rows = conn.execute(
        select(p.id, p.qbo_payment_id, p.paid_on, p.amount, *invoice_columns)
        .select_from(sales_invoice_payments.join(invoices, s.id == p.sales_invoice_id))
        .where(
            p.organization_id == organization_id,
            p.paid_on >= start,
            p.paid_on < end,
            s.status != "cancelled",
        )
        .order_by(p.paid_on, s.sequence_number, p.qbo_payment_id)
    ).all()
    if not rows:
        return MonthPayments()
    records = [
        PaymentRecord(row[0], str(row[1]), row[2], Decimal(row[3]), InvoiceRecord(*row[4:]))
        for row in rows
    ]
    paid = {r.invoice.id for r in records}
    discounts = {
        invoice_id: taken
        for invoice_id, taken in discounts_paid_between(conn, organization_id, start, end).items()
        if invoice_id in paid
    }
    return MonthPayments(records, discounts, still_billed(conn, organization_id, list(discounts)))


def plan_payments(
    settings: ExportSettings,
    period: str,
    month: MonthPayments,
    partners,
    result: ExportResult,
) -> PaidBooked:
    """Each payment's bookings (`result.payments`), or why it is not booked (the notes)."""
    if not month.records:
        return []
    rules = BookingRules(settings, "sales", period)
    carriers = _carriers(month)
    booked: PaidBooked = []
    problems: list[dict] = []
    for payment in month.records:
        outcome = _bookings(settings, rules, payment, partners, month, carriers)
        if isinstance(outcome, str):
            problems.append({"payment": payment.ref, "reason": outcome})
        else:
            booked.append((payment, outcome))
    carried = set(carriers)
    for invoice_id, taken in sorted(month.discounts.items()):
        if invoice_id not in carried:
            problems.append(
                {
                    "invoice_id": invoice_id,
                    "reason": f"the discount reached on {taken.paid_on.isoformat()} has no "
                    "payment of that day",
                }
            )
    result.payments = booked
    result.booking_count += sum(len(bookings) for _, bookings in booked)
    result.notes.update(_notes(booked, problems))
    return booked


def link_payments(booked: PaidBooked, links: dict[int, str]) -> PaidBooked:
    """The payments' bookings with the paid invoice's document as Beleglink where this version's
    DATEV document package holds it (an invoice booked in the same month). The payment of an
    invoice of an earlier month stays without one: its document is in that month's package, and
    a link must resolve within the package it travels with."""
    if not links:
        return booked
    return [
        (
            payment,
            [replace(b, document_link=links[payment.invoice.id]) for b in rows]
            if payment.invoice.id in links
            else rows,
        )
        for payment, rows in booked
    ]


def _carriers(month: MonthPayments) -> dict[int, int]:
    """invoice id -> the payment row that carries its discount: of the invoice's payments on the
    day the discounted amount was reached, the largest (then the highest QBO id)."""
    best: dict[int, PaymentRecord] = {}
    for payment in month.records:
        taken = month.discounts.get(payment.invoice.id)
        if taken is None or payment.paid_on != taken.paid_on:
            continue
        current = best.get(payment.invoice.id)
        if current is None or (payment.amount, payment.qbo_id) > (current.amount, current.qbo_id):
            best[payment.invoice.id] = payment
    return {invoice_id: payment.id for invoice_id, payment in best.items()}


def _bookings(settings, rules, payment: PaymentRecord, partners, month, carriers):
    invoice = payment.invoice
    exchange_rate = None
    if invoice.currency != settings.currency:
        exchange_rate = rules.exchange_rate(invoice.currency)
        if isinstance(exchange_rate, str):
            return exchange_rate
    if carriers.get(invoice.id) == payment.id:
        split = _split(payment.amount, month.discounts[invoice.id], month.billed, invoice, settings)
        if isinstance(split, str):
            return split
    else:
        split = [(payment.amount, None, None)]
    account = partners[invoice.partner_key].account
    number = belegfeld(invoice.number)
    text = " ".join(f"Zahlung {invoice.number or ''} {invoice.partner_name or ''}".split())
    base_currency = settings.currency if exchange_rate else None
    return [
        Booking(
            money,
            "S",  # money coming in: debit on the bank account
            invoice.currency,
            settings.bank_account,
            account,  # the customer's debtor account
            None,
            payment.paid_on,
            number,
            text,
            exchange_rate=exchange_rate,
            base_amount=round_cents(money / exchange_rate) if exchange_rate else None,
            base_currency=base_currency,
            discount=discount,
            discount_account=discount_account,
        )
        for money, discount, discount_account in split
    ]


def vat_key(category: str | None, rate: Decimal) -> str:
    """The key of the account mappings: "S:19" for standard-rated, the category otherwise."""
    category = (category or "S").upper()
    return f"S:{rate_key(rate)}" if category == "S" else category


def _split(amount: Decimal, taken: DiscountTaken, billed, invoice, settings):
    """[(money, discount, discount account)] per VAT rate of the payment that settled `invoice`
    with a discount, or why it cannot be split."""
    rates = billed.get(invoice.id, [])
    money_of = [(c, r, gross - taken.shares.get((c, r), ZERO)) for c, r, gross in rates]
    if set(taken.shares) - {(c, r) for c, r, _ in rates}:
        return "its discount names a VAT rate the invoice no longer bills"
    total = sum((money for _, _, money in money_of), ZERO)
    if total <= ZERO:
        return "the invoice bills nothing after its discount"
    split = []
    left = amount
    for index, (category, rate, money) in enumerate(money_of):
        part = left if index == len(money_of) - 1 else round_cents(amount * money / total)
        left -= part
        share = taken.shares.get((category, rate), ZERO)
        if part <= ZERO and share == ZERO:
            continue
        key = vat_key(category, rate)
        if part <= ZERO:
            return f"nothing of the payment is left for its discount at VAT {key}"
        if share == ZERO:
            split.append((part, None, None))
            continue
        account = settings.discount_accounts.get(key)
        if account is None:
            return (
                f"no discount account for VAT {key} in {settings.chart} "
                "(organization settings exports.discount_accounts)"
            )
        split.append((part, share, account))
    return split


def _notes(booked: PaidBooked, problems: list[dict]) -> dict:
    money: dict[str, Decimal] = defaultdict(Decimal)
    discount: dict[str, Decimal] = defaultdict(Decimal)
    for payment, bookings in booked:
        money[payment.invoice.currency] += payment.amount
        for booking in bookings:
            if booking.discount is not None:
                discount[payment.invoice.currency] += booking.discount
    notes: dict = {}
    if booked:
        notes["payments"] = {
            "booked": len(booked),
            "money": {cur: format(value, "f") for cur, value in sorted(money.items())},
            "discount": {cur: format(value, "f") for cur, value in sorted(discount.items())},
        }
        notes["payment_refs"] = sorted(payment.ref for payment, _ in booked)
    if problems:
        notes["payments_not_booked"] = problems
    return notes


def payment_changes(latest, result: ExportResult) -> dict:
    """What the new version books of payments otherwise than the latest: the payments it no
    longer books (voided or deleted in QuickBooks since: where the latest version was imported,
    their bookings must be reversed in DATEV) and how many it books newly."""
    if latest is None:
        return {}
    before = set((latest.notes or {}).get("payment_refs") or [])
    now = set(result.notes.get("payment_refs") or [])
    changes: dict = {}
    if before - now:
        changes["payments_no_longer_booked"] = sorted(before - now)
        changes["payments_warning"] = (
            f"payments booked in version {latest.version} are not in this version (voided or "
            "deleted in QuickBooks): where that version was imported, reverse their bookings "
            "in DATEV"
        )
    if now - before:
        changes["payments_newly_booked"] = len(now - before)
    return changes
