"""What was paid of incoming invoices, as the `incoming` commands show it: paid, partly paid or
open, the day, the money and the supplier's early-payment discount (Skonto) taken.

The QuickBooks bill payment pull writes it (incoming_invoice_settlements, one row an invoice, and
incoming_invoice_payments, one row a payment); an invoice whose bill is in QuickBooks with no
payment yet is open for its amount due. An invoice that never went to QuickBooks has no payment
state here (None): nothing is known of its payment.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, select

from invoice_pipelines.db.tables import (
    incoming_invoice_payments,
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_bills,
)

CHUNK = 5000


def payments_of(conn: Connection, ids: list[int], *, each: bool = False) -> dict[int, dict]:
    """Each document's payment state (of those among `ids` that have one): `status` (paid,
    partially_paid, open), `amount_paid`, `amount_open`, `last_paid_on`, `discount` (the Skonto
    taken, or None), `discount_percent`, `discount_paid_on`; with `each`, also `payments`: every
    payment's day and amount, oldest first."""
    found: dict[int, dict] = {}
    s, b, t = incoming_invoice_settlements.c, qbo_bills.c, incoming_invoices.c
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        for row in conn.execute(
            select(
                t.id,
                t.amount_due,
                t.gross_total,
                s.status,
                s.amount_paid,
                s.amount_open,
                s.last_paid_on,
                s.discount,
                s.discount_percent,
                s.discount_paid_on,
                b.state.label("bill_state"),
            )
            .select_from(
                incoming_invoices.outerjoin(
                    incoming_invoice_settlements, s.incoming_invoice_id == t.id
                ).outerjoin(qbo_bills, b.incoming_invoice_id == t.id)
            )
            .where(t.id.in_(chunk))
        ).mappings():
            state = _state(row)
            if state is not None:
                found[row["id"]] = state
    if each and found:
        _add_payments(conn, found)
    return found


def _state(row) -> dict | None:
    if row["status"] is not None:
        return {
            "status": row["status"],
            "amount_paid": row["amount_paid"],
            "amount_open": row["amount_open"],
            "last_paid_on": row["last_paid_on"],
            "discount": row["discount"],
            "discount_percent": row["discount_percent"],
            "discount_paid_on": row["discount_paid_on"],
        }
    if row["bill_state"] != "active":
        return None  # never in QuickBooks (or its bill was deleted there): nothing known
    due = row["amount_due"] if row["amount_due"] is not None else row["gross_total"]
    return {
        "status": "open",
        "amount_paid": Decimal("0.00"),
        "amount_open": due,
        "last_paid_on": None,
        "discount": None,
        "discount_percent": None,
        "discount_paid_on": None,
    }


def _add_payments(conn: Connection, found: dict[int, dict]) -> None:
    p = incoming_invoice_payments.c
    for state in found.values():
        state["payments"] = []
    ids = list(found)
    for start in range(0, len(ids), CHUNK):
        for row in conn.execute(
            select(p.incoming_invoice_id, p.paid_on, p.amount)
            .where(p.incoming_invoice_id.in_(ids[start : start + CHUNK]))
            .order_by(p.incoming_invoice_id, p.paid_on, p.id)
        ):
            found[row.incoming_invoice_id]["payments"].append(
                {"paid_on": row.paid_on, "amount": row.amount}
            )


def payment_line(payment: dict, currency: str | None) -> str:
    """One line a person reads: 'paid 2026-11-12: 1166.20 EUR, Skonto 23.80 EUR (2 %) taken',
    'partly paid: 100.00 EUR (last 2026-11-22), 1090.00 EUR open', 'open: 1190.00 EUR'."""
    money = f" {currency}" if currency else ""
    status = payment["status"]
    if status == "paid":
        day = payment["last_paid_on"] or payment["discount_paid_on"]
        line = f"paid {day or ''}: {payment['amount_paid']}{money}".replace(" :", ":")
        if payment["discount"]:
            percent = format(Decimal(payment["discount_percent"] or 0).normalize(), "f")
            line += f", Skonto {payment['discount']}{money} ({percent} %) taken"
        return line
    if status == "partially_paid":
        return (
            f"partly paid: {payment['amount_paid']}{money} (last {payment['last_paid_on']}), "
            f"{payment['amount_open']}{money} open"
        )
    return f"open: {payment['amount_open']}{money}"
