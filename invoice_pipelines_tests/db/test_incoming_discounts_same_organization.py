"""An incoming invoice's discount row belongs to an invoice of its own organization (migration 0029).

The foreign key named `incoming_invoices.id` alone: a discount row of one organization could
point at another organization's invoice, and row-level security (which checks the row's own
organization) let it through. Now the key is `(organization_id, incoming_invoice_id)`, as the
sales invoices' discounts and payments have it.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from invoice_pipelines.db.tables import incoming_discounts, incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction


def _invoice(db, organization_id: int) -> int:
    with tenant_transaction(db.engine, organization_id, write=True) as conn:
        return conn.execute(
            insert(incoming_invoices)
            .values(organization_id=organization_id, content_hash=uuid.uuid4().hex)
            .returning(incoming_invoices.c.id)
        ).scalar_one()


def _discount(organization_id: int, invoice_id: int) -> dict:
    return {
        "organization_id": organization_id,
        "incoming_invoice_id": invoice_id,
        "step": 1,
        "days": 10,
        "percent": Decimal("2.00"),
        "source": "test",
    }


def test_a_discount_cannot_point_at_another_organizations_invoice(db) -> None:
    ours, theirs = db.new_organization(), db.new_organization()
    our_invoice, their_invoice = _invoice(db, ours["id"]), _invoice(db, theirs["id"])

    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        with tenant_transaction(db.engine, ours["id"], write=True) as conn:
            conn.execute(insert(incoming_discounts).values(_discount(ours["id"], their_invoice)))

    # its own invoice's discount is stored, and goes with its invoice
    with tenant_transaction(db.engine, ours["id"], write=True) as conn:
        conn.execute(insert(incoming_discounts).values(_discount(ours["id"], our_invoice)))
    with tenant_transaction(db.engine, ours["id"], write=True) as conn:
        conn.execute(incoming_invoices.delete().where(incoming_invoices.c.id == our_invoice))
        left = conn.execute(
            select(func.count())
            .select_from(incoming_discounts)
            .where(incoming_discounts.c.incoming_invoice_id == our_invoice)
        ).scalar_one()
    assert left == 0
