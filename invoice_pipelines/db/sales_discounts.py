"""The early-payment discounts customers take on sales invoices (Skonto, issue 40).

What an invoice offers (the steps its document states, recorded on it when its first document
was written: `sales_invoices.skonto_steps`, documents/domain/pipeline.py), what it still bills after its
credit notes, in total and per VAT rate, and the discount rows per rate
(`sales_invoice_discounts`) written on the connection of the transaction that settles the
invoice. Whoever reads payments (the QuickBooks payment pull) calls `settle` with each invoice's money payments; the arithmetic is
`core.skonto.settlement` and `split_by_rate`.

The terms are frozen: an invoice settles by the steps its document states, whatever its customer
or organization offers by the time it is paid. An invoice without recorded steps (no document
written yet: the customer has been told no terms) earns no discount.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.money import ZERO
from invoice_pipelines.core.skonto import (
    DiscountTerm,
    RateShare,
    Settlement,
    SkontoError,
    recorded_terms,
    settlement,
    split_by_rate,
)
from invoice_pipelines.db.tables import (
    sales_invoice_discounts,
    sales_invoice_taxes,
    sales_invoices,
)

CREDIT_NOTE = "381"
RATE = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class DiscountBasis:
    """What a discount on one invoice is computed from."""

    terms: list[DiscountTerm]
    issue_date: date
    invoiced: Decimal  # gross total less its credit notes' gross
    # per (category, rate): the gross still billed after the credit notes
    breakdown: list[tuple[str, Decimal, Decimal]]


@dataclass(frozen=True, slots=True)
class Settled:
    """An invoice's settlement by a discount, with its shares per VAT rate."""

    settlement: Settlement
    shares: list[RateShare]

    @property
    def discount(self) -> Decimal:
        return self.settlement.discount


def discount_bases(
    conn: Connection, organization_id: int, invoice_ids: Sequence[int]
) -> tuple[dict[int, DiscountBasis], list[str]]:
    """The basis of each invoice (not credit note) among `invoice_ids` whose document states a
    discount (its recorded steps; none recorded, no discount), and a sentence for each invoice
    whose recorded steps cannot be read (it then offers none). Three queries, whatever the number
    of invoices."""
    ids = list(invoice_ids)
    if not ids:
        return {}, []
    s = sales_invoices.c
    rows = conn.execute(
        select(s.id, s.invoice_number, s.issue_date, s.gross_total, s.skonto_steps).where(
            s.organization_id == organization_id,
            s.id.in_(ids),
            s.type_code != CREDIT_NOTE,
            s.skonto_steps.is_not(None),
        )
    ).all()
    problems: list[str] = []
    terms_of: dict[int, list[DiscountTerm]] = {}
    for row in rows:
        try:
            terms = recorded_terms(row.skonto_steps, row.invoice_number)
        except SkontoError as exc:
            problems.append(f"invoice {row.id}: {exc}")
            continue
        if terms:
            terms_of[row.id] = terms
    if not terms_of:
        return {}, problems
    credited, rates = _still_billed(conn, organization_id, list(terms_of))
    bases = {
        row.id: DiscountBasis(
            terms_of[row.id],
            row.issue_date,
            Decimal(row.gross_total) - credited.get(row.id, ZERO),
            rates.get(row.id, []),
        )
        for row in rows
        if row.id in terms_of
    }
    return bases, problems


def _still_billed(
    conn: Connection, organization_id: int, ids: list[int]
) -> tuple[dict[int, Decimal], dict[int, list[tuple[str, Decimal, Decimal]]]]:
    """Per invoice: its credit notes' gross, and its gross per VAT rate less theirs."""
    s, t = sales_invoices.c, sales_invoice_taxes.c
    credited = {
        invoice_id: Decimal(total)
        for invoice_id, total in conn.execute(
            select(s.corrects_invoice_id, func.sum(s.gross_total))
            .where(s.organization_id == organization_id, s.corrects_invoice_id.in_(ids))
            .group_by(s.corrects_invoice_id)
        )
    }
    # the invoice's own rows count up, its credit notes' down (they are stored positive)
    owner = func.coalesce(s.corrects_invoice_id, s.id)
    gross: dict[int, dict[tuple[str, Decimal], Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for invoice_id, is_credit, category, rate, basis, amount in conn.execute(
        select(
            owner,
            s.corrects_invoice_id.is_not(None),
            t.vat_category,
            t.vat_rate,
            t.basis,
            t.amount,
        )
        .join(sales_invoices, sales_invoices.c.id == t.sales_invoice_id)
        .where(
            t.organization_id == organization_id,
            (s.id.in_(ids)) | (s.corrects_invoice_id.in_(ids)),
        )
    ):
        sign = -1 if is_credit else 1
        key = (category, Decimal(rate).quantize(RATE))
        gross[invoice_id][key] += sign * (Decimal(basis) + Decimal(amount))
    rates = {
        invoice_id: [(cat, rate, value) for (cat, rate), value in sorted(per.items()) if value > 0]
        for invoice_id, per in gross.items()
    }
    return credited, rates


def still_billed(
    conn: Connection, organization_id: int, invoice_ids: Sequence[int]
) -> dict[int, list[tuple[str, Decimal, Decimal]]]:
    """Per invoice: (category, rate, gross) of what it still bills after its credit notes, the
    basis its discount was split on (rates with nothing left are not listed)."""
    if not invoice_ids:
        return {}
    return _still_billed(conn, organization_id, list(invoice_ids))[1]


@dataclass(frozen=True, slots=True)
class DiscountTaken:
    """The discount recorded on one invoice: the day the payments reached the amount to pay, and
    the gross discount per (category, rate)."""

    paid_on: date
    shares: dict[tuple[str, Decimal], Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.shares.values(), ZERO)


def discounts_paid_between(
    conn: Connection, organization_id: int, start: date, end: date
) -> dict[int, DiscountTaken]:
    """The discounts whose payments reached the amount to pay from `start` up to (not including)
    `end`, by invoice: one query."""
    d = sales_invoice_discounts.c
    found: dict[int, DiscountTaken] = {}
    for invoice_id, paid_on, category, rate, gross in conn.execute(
        select(d.sales_invoice_id, d.paid_on, d.vat_category, d.vat_rate, d.gross)
        .where(d.organization_id == organization_id, d.paid_on >= start, d.paid_on < end)
        .order_by(d.sales_invoice_id, d.id)
    ):
        taken = found.setdefault(invoice_id, DiscountTaken(paid_on, {}))
        taken.shares[(category, Decimal(rate).quantize(RATE))] = Decimal(gross)
    return found


def settle(
    bases: Mapping[int, DiscountBasis], payments: Mapping[int, Iterable[tuple[date, Decimal]]]
) -> dict[int, Settled]:
    """The invoices among `bases` that their money payments (day, amount) settle with a discount."""
    settled = {}
    for invoice_id, basis in bases.items():
        found = settlement(
            basis.terms, basis.issue_date, basis.invoiced, payments.get(invoice_id, ())
        )
        if found is not None:
            settled[invoice_id] = Settled(found, split_by_rate(found.discount, basis.breakdown))
    return settled


def record_discounts(
    conn: Connection,
    organization_id: int,
    invoice_ids: Sequence[int],
    settled: Mapping[int, Settled],
    source: str,
) -> int:
    """Make the discount rows of `invoice_ids` what `settled` says: an invoice settled gets one row
    per VAT rate, one that is not (any more: a payment voided, a credit note after it) none. Rows
    that are already right are left alone. Returns how many invoices' rows changed."""
    if not invoice_ids:
        return 0
    d = sales_invoice_discounts.c
    current: dict[int, set[tuple]] = defaultdict(set)
    for row in conn.execute(
        select(d.sales_invoice_id, d.vat_category, d.vat_rate, d.gross, d.paid_on).where(
            d.organization_id == organization_id, d.sales_invoice_id.in_(list(invoice_ids))
        )
    ):
        current[row.sales_invoice_id].add(
            (
                row.vat_category,
                Decimal(row.vat_rate).quantize(RATE),
                Decimal(row.gross),
                row.paid_on,
            )
        )
    wanted = {
        invoice_id: {
            (s.category, s.rate.quantize(RATE), s.gross, found.settlement.paid_on)
            for s in found.shares
        }
        for invoice_id, found in settled.items()
    }
    changed = [i for i in invoice_ids if current.get(i, set()) != wanted.get(i, set())]
    if not changed:
        return 0
    conn.execute(
        delete(sales_invoice_discounts).where(
            d.organization_id == organization_id, d.sales_invoice_id.in_(changed)
        )
    )
    rows = [
        {
            "organization_id": organization_id,
            "sales_invoice_id": invoice_id,
            "vat_category": share.category,
            "vat_rate": share.rate,
            "gross": share.gross,
            "net": share.net,
            "vat": share.vat,
            "percent": settled[invoice_id].settlement.offer.term.percent,
            "last_day": settled[invoice_id].settlement.offer.last_day,
            "paid_on": settled[invoice_id].settlement.paid_on,
            "source": source,
        }
        for invoice_id in changed
        if invoice_id in settled
        for share in settled[invoice_id].shares
    ]
    if rows:
        conn.execute(insert(sales_invoice_discounts), rows)
    return len(changed)
