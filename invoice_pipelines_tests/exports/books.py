"""Test data for exports: validated incoming invoices and sales invoices, written as the intake
and batch invoicing write them (rows in the real tables, on the real databases)."""

from __future__ import annotations

import hashlib
import itertools
from datetime import date
from decimal import Decimal

from sqlalchemy import insert, select

from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.db.tables import (
    customers,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction

D = Decimal
_seq = itertools.count(1)

DATEV = {"datev_berater_nr": 29098, "datev_mandant_nr": 55003, "datev_chart": "SKR03"}


def incoming(
    engine,
    org_id: int,
    number: str,
    *,
    day: date = date(2026, 11, 5),
    due: date | None = date(2026, 11, 19),
    seller: str = "Müller Werkzeugbau GmbH",
    vat_id: str | None = "DE123456789",
    currency: str = "EUR",
    type_code: str = "380",
    taxes: list[tuple[str | None, str | None, str, str]] = (("S", "19", "100.00", "19.00"),),
    status: str = "VALIDATED",
    lines: list[tuple[str, str, str, str]] | None = None,
) -> int:
    """One stored incoming invoice; taxes as (category, rate, basis, VAT)."""
    net = sum((D(t[2]) for t in taxes), D(0))
    tax = sum((D(t[3]) for t in taxes), D(0))
    with tenant_transaction(engine, org_id, write=True) as conn:
        doc_id = conn.execute(
            insert(incoming_invoices)
            .values(
                organization_id=org_id,
                status=status,
                processing_version=2,
                format="cii",
                content_hash=hashlib.sha256(f"{number}-{next(_seq)}".encode()).hexdigest(),
                invoice_number=number,
                invoice_number_key=invoice_number_key(number),
                type_code=type_code,
                seller_name=seller,
                seller_vat_id=vat_id,
                issue_date=day,
                due_date=due,
                currency=currency,
                net_total=net,
                tax_total=tax,
                gross_total=net + tax,
                amount_due=net + tax,
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
        conn.execute(
            insert(incoming_invoice_taxes),
            [
                {
                    "organization_id": org_id,
                    "incoming_invoice_id": doc_id,
                    "vat_category": category,
                    "vat_rate": None if rate is None else D(rate),
                    "basis": D(basis),
                    "amount": D(amount),
                }
                for category, rate, basis, amount in taxes
            ],
        )
        for no, (description, quantity, price, rate) in enumerate(lines or (), start=1):
            conn.execute(
                insert(incoming_invoice_lines).values(
                    organization_id=org_id,
                    incoming_invoice_id=doc_id,
                    line_no=no,
                    description=description,
                    quantity=D(quantity),
                    unit_code="C62",
                    unit_price=D(price),
                    net_amount=D(quantity) * D(price),
                    vat_category="S",
                    vat_rate=D(rate),
                )
            )
    return doc_id


def customer(engine, org_id: int, number: str, name: str, *, country="DE", vat_id=None) -> int:
    with tenant_transaction(engine, org_id, write=True) as conn:
        return conn.execute(
            insert(customers)
            .values(
                organization_id=org_id,
                customer_number=number,
                name=name,
                country=country,
                vat_id=vat_id,
                street="Hauptstraße 1",
                postal_code="10115",
                city="Berlin",
            )
            .returning(customers.c.id)
        ).scalar_one()


def sales_invoice(
    engine,
    org_id: int,
    customer_id: int,
    *,
    day: date = date(2026, 11, 10),
    type_code: str = "380",
    taxes: list[tuple[str, str, str, str]] = (("S", "19", "200.00", "38.00"),),
    currency: str = "EUR",
) -> int:
    net = sum((D(t[2]) for t in taxes), D(0))
    tax = sum((D(t[3]) for t in taxes), D(0))
    with tenant_transaction(engine, org_id, write=True) as conn:
        sequence = (
            conn.execute(
                select(sales_invoices.c.sequence_number)
                .where(sales_invoices.c.organization_id == org_id)
                .order_by(sales_invoices.c.sequence_number.desc())
                .limit(1)
            ).scalar()
            or 0
        ) + 1
        invoice_id = conn.execute(
            insert(sales_invoices)
            .values(
                organization_id=org_id,
                invoice_number=f"RE-2026-{sequence:06d}",
                sequence_number=sequence,
                customer_id=customer_id,
                type_code=type_code,
                issue_date=day,
                due_date=date.fromordinal(day.toordinal() + 14),
                currency=currency,
                net_total=net,
                tax_total=tax,
                gross_total=net + tax,
                amount_due=net + tax,
            )
            .returning(sales_invoices.c.id)
        ).scalar_one()
        for no, (category, rate, basis, amount) in enumerate(taxes, start=1):
            conn.execute(
                insert(sales_invoice_taxes).values(
                    organization_id=org_id,
                    sales_invoice_id=invoice_id,
                    vat_category=category,
                    vat_rate=D(rate),
                    basis=D(basis),
                    amount=D(amount),
                )
            )
            conn.execute(
                insert(sales_invoice_lines).values(
                    organization_id=org_id,
                    sales_invoice_id=invoice_id,
                    line_no=no,
                    description=f"Leistung {no}",
                    quantity=D(1),
                    unit_price=D(basis),
                    net_amount=D(basis),
                    vat_rate=D(rate),
                    vat_category=category,
                )
            )
    return invoice_id
