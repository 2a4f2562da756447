"""Sales invoice totals: line net amounts, one VAT breakdown per (category, rate), net/VAT/gross."""

# The rules (EN 16931 style, Decimal end to end):
#
# - line net = quantity x unit price, rounded half-up to cents (discount lines have a negative price);
# - per (VAT category, rate): basis = sum of the line nets, VAT = basis x rate / 100 rounded half-up;
# - net total = sum of the bases, VAT total = sum of the VAT amounts, gross = net + VAT,
#   amount due = gross (nothing is paid when the invoice is created).
#
# PostgreSQL computes the same thing in SQL NUMERIC (`billing/domain/chunk_postgres.py`); the tests run the
# same orders through both and compare.

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from invoice_pipelines.core.money import ZERO, round_cents, to_decimal

HUNDRED = Decimal(100)

# EN 16931 VAT categories (UNTDID 5305) that carry no VAT on the invoice: zero rated, exempt,
# reverse charge, intra-EU supply, export, not subject to VAT. Their rate must be 0.
ZERO_VAT_CATEGORIES: frozenset[str] = frozenset({"Z", "E", "AE", "K", "G", "O"})
# Categories that charge VAT: standard, IGIC (Canary Islands), IPSI (Ceuta/Melilla).
CHARGED_VAT_CATEGORIES: frozenset[str] = frozenset({"S", "L", "M"})


def implied_vat_category(category: str | None, rate: Decimal | None) -> str | None:
    """A VAT row's category as an export names it: the document's own code; where the document
    gave none (text PDFs and scans state a rate, not a UNTDID 5305 code), S for a rate above 0,
    the category every rate a supplier charges falls under (IGIC and IPSI, L and M, are named by
    the invoices they apply to); None for 0 % or no rate, which any of the zero categories
    could be (the export leaves it out rather than guess)."""
    if category:
        return category
    if rate is not None and rate > 0:
        return "S"
    return None


@dataclass(frozen=True)
class LineAmounts:
    """What a line contributes to the invoice: its inputs and its rounded net amount."""

    quantity: Decimal
    unit_price: Decimal
    vat_category: str
    vat_rate: Decimal

    @property
    def net_amount(self) -> Decimal:
        return line_net(self.quantity, self.unit_price)


@dataclass(frozen=True)
class VatBreakdown:
    """One row of the invoice's VAT breakdown (EN 16931 BG-23)."""

    vat_category: str
    vat_rate: Decimal
    basis: Decimal
    amount: Decimal


@dataclass(frozen=True)
class InvoiceTotals:
    line_nets: tuple[Decimal, ...]
    breakdown: tuple[VatBreakdown, ...]
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    amount_due: Decimal


def line_net(quantity: Decimal, unit_price: Decimal) -> Decimal:
    """quantity x unit price, rounded half-up to cents."""
    return round_cents(to_decimal(quantity) * to_decimal(unit_price))


def vat_amount(basis: Decimal, rate_percent: Decimal) -> Decimal:
    """VAT on one breakdown row: basis x rate / 100, rounded half-up to cents."""
    return round_cents(to_decimal(basis) * to_decimal(rate_percent) / HUNDRED)


def vat_problem(vat_category: str, vat_rate: Decimal) -> str | None:
    """Why a line's category and rate do not fit together, or None when they do."""
    rate = to_decimal(vat_rate)
    if rate < 0:
        return f"negative VAT rate {rate}"
    if vat_category in ZERO_VAT_CATEGORIES:
        return None if rate == 0 else f"VAT category {vat_category} requires rate 0, not {rate}"
    if vat_category in CHARGED_VAT_CATEGORIES:
        return None if rate > 0 else f"VAT category {vat_category} requires a rate above 0"
    return f"unknown VAT category {vat_category!r}"


def compute_totals(lines: Iterable[LineAmounts]) -> InvoiceTotals:
    """Totals of one invoice. The breakdown is sorted by (category, rate) for stable output."""
    nets: list[Decimal] = []
    bases: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        net = line.net_amount
        nets.append(net)
        # normalize the rate so 19, 19.0 and 19.00 are one breakdown row
        key = (line.vat_category, to_decimal(line.vat_rate).quantize(Decimal("0.01")))
        bases[key] = bases.get(key, ZERO) + net
    breakdown = tuple(
        VatBreakdown(category, rate, round_cents(basis), vat_amount(basis, rate))
        for (category, rate), basis in sorted(bases.items())
    )
    net_total = round_cents(sum((b.basis for b in breakdown), ZERO))
    tax_total = round_cents(sum((b.amount for b in breakdown), ZERO))
    gross_total = net_total + tax_total
    return InvoiceTotals(
        line_nets=tuple(nets),
        breakdown=breakdown,
        net_total=net_total,
        tax_total=tax_total,
        gross_total=gross_total,
        amount_due=gross_total,
    )
