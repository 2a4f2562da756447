"""Text of the invoices CSV's cells that Python writes: the VAT breakdown, rates and decimals."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from invoice_pipelines.core.totals import implied_vat_category
from invoice_pipelines.exports.domain.bookings import InvoiceRecord


def breakdown_text(invoice: InvoiceRecord, *, as_printed_before: bool = False) -> str:
    """The invoices CSV's vat_breakdown, "S 19: 100.00 + 19.00; ..." (category rate: basis +
    VAT). A row whose document named no category (text PDFs and scans state rates, not codes)
    gets the one its rate implies, S above 0, as it is booked; only such invoices are booked. The
    CSV printed "?" there before: `as_printed_before` gives that text, for the fingerprint."""
    if as_printed_before:
        return "; ".join(
            [
                f"{t.category or '?'} {rate_text(t.rate)}: "
                f"{plain_decimal(t.basis)} + {plain_decimal(t.amount)}"
                for t in invoice.taxes
            ]
        )
    return "; ".join([f"{_head(t)}{_plain(t.basis)} + {_plain(t.amount)}" for t in invoice.taxes])


def _head(tax) -> str:
    """ "S 19: ", a breakdown entry's category and rate (a month has a few of them)."""
    rate = tax.rate
    if rate:
        return _nonzero_head(tax.category, rate)
    return f"{tax.category or implied_vat_category(None, rate)} {rate_text(rate)}: "


@lru_cache(maxsize=1024, typed=True)
def _nonzero_head(category: str | None, rate: Decimal) -> str:
    return f"{category or implied_vat_category(None, rate)} {rate_text(rate)}: "


def _plain(value: Decimal | None) -> str:
    """`plain_decimal`, for the amounts of a breakdown."""
    if type(value) is Decimal:
        text = str(value)
        if "E" not in text:
            return text
    return plain_decimal(value)


def rate_text(rate: Decimal | None) -> str:
    """format(rate.normalize(), "f"), "" for None; a month has a few rates, each formatted once
    (a zero is not cached: 0 and -0 are equal keys but print differently)."""
    if rate is None:
        return ""
    return _nonzero_rate_text(rate) if rate else format(rate.normalize(), "f")


@lru_cache(maxsize=256, typed=True)
def _nonzero_rate_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def plain_decimal(value: Decimal | None) -> str:
    """format(value, "f"), "" for None: str() where it gives the same (no E notation)."""
    if value is None:
        return ""
    if type(value) is Decimal:
        text = str(value)
        if "E" not in text:
            return text
    return format(value, "f")
