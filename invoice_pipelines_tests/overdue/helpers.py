"""Customers and sales invoices written straight into the test database for the overdue tests."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import (
    customers,
    dunning_notices,
    organizations,
    sales_invoice_payments,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction

_numbers = itertools.count(1)


def customer(
    db,
    org: dict,
    *,
    blocked: bool = False,
    language: str = "de",
    email: str | None = None,
    phone: str | None = None,
    name: str | None = None,
    **values,
) -> int:
    n = next(_numbers)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        return conn.execute(
            insert(customers)
            .values(
                organization_id=org["id"],
                customer_number=f"K-{n}",
                name=name or f"Kunde {n}",
                language=language,
                email=email,
                phone=phone,
                dunning_blocked=blocked,
                **values,
            )
            .returning(customers.c.id)
        ).scalar_one()


def invoice(
    db,
    org: dict,
    customer_id: int,
    due: date,
    *,
    amount_due: str = "119.00",
    gross: str = "119.00",
    status: str = "open",
    currency: str = "EUR",
    **values,
) -> int:
    n = next(_numbers)
    gross_total = Decimal(gross)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        return conn.execute(
            insert(sales_invoices)
            .values(
                organization_id=org["id"],
                invoice_number=f"RE-{n:06d}",
                sequence_number=n,
                customer_id=customer_id,
                issue_date=date(2026, 1, 1),
                due_date=due,
                currency=currency,
                net_total=(gross_total / Decimal("1.19")).quantize(Decimal("0.01")),
                tax_total=gross_total - (gross_total / Decimal("1.19")).quantize(Decimal("0.01")),
                gross_total=gross_total,
                amount_paid=gross_total - Decimal(amount_due),
                amount_due=Decimal(amount_due),
                status=status,
                **values,
            )
            .returning(sales_invoices.c.id)
        ).scalar_one()


def pay(
    db,
    org: dict,
    invoice_id: int,
    amount: str,
    on: date,
    status: str = "partially_paid",
    *,
    recorded: bool = True,
) -> None:
    """A payment as the QuickBooks pull sets it: the invoice's amounts and, `recorded`, its row
    in `sales_invoice_payments` (False: a payment whose day and amount are not known)."""
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == invoice_id)
            .values(
                amount_paid=sales_invoices.c.amount_paid + Decimal(amount),
                amount_due=sales_invoices.c.amount_due - Decimal(amount),
                status=status,
                last_payment_date=on,
            )
        )
        if recorded:
            conn.execute(
                insert(sales_invoice_payments).values(
                    organization_id=org["id"],
                    sales_invoice_id=invoice_id,
                    qbo_payment_id=f"P-{next(_numbers)}",
                    paid_on=on,
                    amount=Decimal(amount),
                    source="quickbooks",
                )
            )


def notices(db, org: dict) -> list[dict]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(dunning_notices)
            .where(dunning_notices.c.organization_id == org["id"])
            .order_by(dunning_notices.c.sales_invoice_id, dunning_notices.c.level)
        ).mappings()
        return [dict(r) for r in rows]


def levels_by_invoice(db, org: dict) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for n in notices(db, org):
        found.setdefault(n["sales_invoice_id"], []).append(n["level_name"])
    return found


def set_settings(db, org: dict, settings: dict) -> None:
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations).where(organizations.c.id == org["id"]).values(settings=settings)
        )
