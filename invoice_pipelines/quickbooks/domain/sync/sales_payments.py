"""The money payments applied to sales invoices (`sales_invoice_payments`), for the books.

Whoever reads payments (the QuickBooks payment pull) hands `record_payments` what each invoice's
payments are now, on the connection of the transaction that sets the invoice's amounts: rows that
are already right are left alone, a payment no longer applied (voided or deleted in QBO) loses its
row, a changed one (another day or amount) is written again. A second call with the same payments
writes nothing. The sales export reads the rows of a month (exports/domain/payments.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import delete, insert, select, tuple_
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import sales_invoice_payments

# invoice id -> {payment id: (day, money applied to the invoice)}
Wanted = Mapping[int, Mapping[str, tuple[date, Decimal]]]


def record_payments(
    conn: Connection,
    organization_id: int,
    invoice_ids: Sequence[int],
    wanted: Wanted,
    source: str,
) -> int:
    """Make the payment rows of `invoice_ids` what `wanted` says (an invoice missing from it has
    no payment any more). Payments of no money (0 or less applied) are not rows. Returns how many
    rows were written or removed."""
    if not invoice_ids:
        return 0
    p = sales_invoice_payments.c
    current = {
        (invoice_id, payment_id): (paid_on, Decimal(amount))
        for invoice_id, payment_id, paid_on, amount in conn.execute(
            select(p.sales_invoice_id, p.qbo_payment_id, p.paid_on, p.amount).where(
                p.organization_id == organization_id, p.sales_invoice_id.in_(list(invoice_ids))
            )
        )
    }
    target = {
        (invoice_id, str(payment_id)): (day, amount)
        for invoice_id in invoice_ids
        for payment_id, (day, amount) in (wanted.get(invoice_id) or {}).items()
        if amount > 0
    }
    stale = [key for key, value in current.items() if target.get(key) != value]
    new = [key for key, value in target.items() if current.get(key) != value]
    if stale:
        conn.execute(
            delete(sales_invoice_payments).where(
                p.organization_id == organization_id,
                tuple_(p.sales_invoice_id, p.qbo_payment_id).in_(stale),
            )
        )
    if new:
        conn.execute(
            insert(sales_invoice_payments),
            [
                {
                    "organization_id": organization_id,
                    "sales_invoice_id": invoice_id,
                    "qbo_payment_id": payment_id,
                    "paid_on": target[(invoice_id, payment_id)][0],
                    "amount": target[(invoice_id, payment_id)][1],
                    "source": source,
                }
                for invoice_id, payment_id in new
            ],
        )
    return len(stale) + len(new)
