"""The plan of a month: each invoice's bookings, or the reason it is skipped."""

from __future__ import annotations

from invoice_pipelines.core.datev import Booking
from invoice_pipelines.core.money import ZERO
from invoice_pipelines.exports.domain.bookings import BookingRules, InvoiceRecord, Skip
from invoice_pipelines.exports.domain.result import PREVIEW_ROWS, ExportResult

Booked = list[tuple[InvoiceRecord, list[Booking]]]


def plan(settings, direction, period, invoices, partners, result: ExportResult) -> Booked:
    """Each invoice's bookings, or its skip reason in `result`; counts, sums and preview."""
    rules = BookingRules(settings, direction, period)
    booked: Booked = []
    for invoice in invoices:
        key = invoice.partner_key
        if key is None:
            who = "supplier" if direction == "incoming" else "customer"
            outcome: list[Booking] | Skip = Skip(invoice, f"{who} unknown: no name or VAT id")
        else:
            outcome = rules.plan(invoice, partners[key].account)
        if isinstance(outcome, Skip):
            result.skipped.append((invoice.id, invoice.number, outcome.reason))
        else:
            booked.append((invoice, outcome))
    if rules.cleaned:
        result.notes["cleaned_vat_ids"] = rules.cleaned
    result.invoice_count = len(booked)
    result.booking_count = sum(len(bookings) for _, bookings in booked)
    for _, bookings in booked:
        if len(result.preview) >= PREVIEW_ROWS:
            break
        result.preview.extend(bookings[: PREVIEW_ROWS - len(result.preview)])
    for inv, _ in booked:
        sums = result.totals.setdefault(inv.currency, [ZERO, ZERO, ZERO])
        sums[0] += inv.net_total or ZERO
        sums[1] += inv.tax_total or ZERO
        sums[2] += inv.gross_total or ZERO
    return booked
