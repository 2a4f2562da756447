"""The early-payment discounts (Skonto) of incoming invoices: the rows the intake writes beside a
read document, what the listing shows, and which discounts run out soon (for the check).

Works on the invoice's JSON form (`Invoice.to_json_dict()`, what raw_json keeps), like
breakdown.py; the terms and the arithmetic are core/skonto.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from sqlalchemy import and_, select, update

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.skonto import DiscountTerm, SkontoError, offers
from invoice_pipelines.db.tables import (
    incoming_discounts,
    incoming_invoices,
    organizations,
)

MAX_AMOUNT = Decimal(10) ** 16  # NUMERIC(18, 2)
# the documents whose discount a person may still take: read and booked, not failed or in review
OPEN_STATUSES = (Status.VALIDATED.value, Status.EXPORTED.value)


def _terms(invoice: dict) -> list[DiscountTerm]:
    terms = []
    for entry in invoice.get("discount_terms") or ():
        try:
            terms.append(DiscountTerm.from_json_dict(entry))
        except (KeyError, TypeError, ValueError, InvalidOperation, SkontoError):
            continue  # raw_json keeps what was read; a row needs a term that holds
    return terms


def _amount(value) -> Decimal | None:
    try:
        number = Decimal(str(value)) if value not in (None, "") else None
    except InvalidOperation:
        return None
    return (
        number if number is not None and number.is_finite() and abs(number) < MAX_AMOUNT else None
    )


def _day(value) -> date | None:
    try:
        return date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _fits(term: DiscountTerm) -> bool:
    return term.base_amount is None or abs(term.base_amount) < MAX_AMOUNT


def discount_rows(organization_id: int, document_id: int, invoice: dict) -> list[dict]:
    """One row per discount step of a read invoice, its last day and worth computed."""
    terms = [t for t in _terms(invoice) if _fits(t)]
    if not terms:
        return []
    return [
        {
            "organization_id": organization_id,
            "incoming_invoice_id": document_id,
            "step": step,
            "days": term.days,
            "percent": term.percent,
            "base_amount": term.base_amount,
            "start_date": term.start,
            "source": term.source,
            **_worth(term, _day(invoice.get("issue_date")), _amount(invoice.get("amount_due"))),
        }
        for step, term in enumerate(terms, start=1)
    ]


def _worth(term: DiscountTerm, issue_date: date | None, amount_due: Decimal | None) -> dict:
    (offer,) = offers([term], issue_date, amount_due) or (None,)
    if offer is None:
        return {"last_day": None, "discount": None, "pay": None}
    return {"last_day": offer.last_day, "discount": offer.discount, "pay": offer.pay}


def recompute(conn, organization_id: int, document_id: int) -> None:
    """Last days and amounts again from the document's values as they are now (after a person
    corrected its issue date or amount due in review)."""
    d, t = incoming_discounts.c, incoming_invoices.c
    document = conn.execute(
        select(t.issue_date, t.amount_due).where(
            t.organization_id == organization_id, t.id == document_id
        )
    ).first()
    if document is None:
        return
    for row in conn.execute(
        select(d.id, d.days, d.percent, d.base_amount, d.start_date, d.source).where(
            d.incoming_invoice_id == document_id
        )
    ).all():
        term = DiscountTerm(row.days, row.percent, row.base_amount, row.start_date, row.source)
        conn.execute(
            update(incoming_discounts)
            .where(d.id == row.id)
            .values(**_worth(term, document.issue_date, document.amount_due))
        )


def discounts_of(conn, ids: Sequence[int]) -> dict[int, list[dict]]:
    """Each document's discount steps (days, percent, last day, discount, to pay), by step."""
    found: dict[int, list[dict]] = {i: [] for i in ids}
    if not ids:
        return found
    d = incoming_discounts.c
    for row in conn.execute(
        select(
            d.incoming_invoice_id,
            d.days,
            d.percent,
            d.base_amount,
            d.source,
            d.last_day,
            d.discount,
            d.pay,
        )
        .where(d.incoming_invoice_id.in_(list(ids)))
        .order_by(d.incoming_invoice_id, d.step)
    ).mappings():
        entry = dict(row)
        found[entry.pop("incoming_invoice_id")].append(entry)
    return found


def running_discount(steps: Iterable[dict], today: date) -> dict | None:
    """The step a payment today still earns, the largest of those running (None: none left)."""
    running = [s for s in steps if s["last_day"] is not None and today <= s["last_day"]]
    return max(running, key=lambda s: s["discount"] or 0, default=None)


def expiring_discounts(conn, today: date, within_days: int) -> list[dict]:
    """Discounts of booked incoming invoices (VALIDATED, EXPORTED) whose last day is today or
    within `within_days`, every organization's, soonest first: one statement."""
    d, t, o = incoming_discounts.c, incoming_invoices.c, organizations.c
    until = today + timedelta(days=within_days)
    rows = conn.execute(
        select(
            o.slug,
            t.id,
            t.invoice_number,
            t.seller_name,
            t.currency,
            t.amount_due,
            d.percent,
            d.last_day,
            d.discount,
            d.pay,
        )
        .select_from(
            incoming_discounts.join(
                incoming_invoices, incoming_invoices.c.id == d.incoming_invoice_id
            ).join(organizations, organizations.c.id == d.organization_id)
        )
        .where(
            and_(d.last_day >= today, d.last_day <= until),
            t.status.in_(OPEN_STATUSES),
            d.discount > 0,
        )
        .order_by(d.last_day, o.slug, t.id)
    ).mappings()
    return [dict(r) for r in rows]
