"""Row-level security of the QuickBooks payables tables (migration 0032): a tenant neither sees
nor writes another's vendors, expense accounts, bill queue rows, bills, payments or settlements,
even when a query forgets its organization filter; and no tenant table is without the policy.
PostgreSQL (SQLite has no row-level security)."""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.rls import policy_tables
from invoice_pipelines.db.tables import (
    TENANT_TABLES,
    incoming_invoice_payments,
    incoming_invoice_settlements,
    incoming_invoices,
    qbo_bill_queue,
    qbo_bills,
    qbo_expense_accounts,
    qbo_vendors,
)
from invoice_pipelines.db.tenancy import tenant_transaction

D = Decimal
TABLES = {
    "qbo_vendors": qbo_vendors,
    "qbo_expense_accounts": qbo_expense_accounts,
    "qbo_bill_queue": qbo_bill_queue,
    "qbo_bills": qbo_bills,
    "incoming_invoice_payments": incoming_invoice_payments,
    "incoming_invoice_settlements": incoming_invoice_settlements,
}


# a key of its own for the intruder's row, so only the policy can refuse it
OTHER_KEY = {
    "qbo_vendors": {"qbo_id": "2"},
    "qbo_expense_accounts": {"supplier_key": "vat:X"},
    "qbo_bill_queue": {"version": 2},
    "incoming_invoice_payments": {"qbo_payment_id": "4"},
}


def _row(table: str, organization_id: int, document_id: int) -> dict:
    values = {
        "qbo_vendors": {"qbo_id": "1", "display_name": "V", "name_key": "v", "origin": "pulled"},
        "qbo_expense_accounts": {"supplier_key": "", "account_id": "11"},
        "qbo_bill_queue": {
            "incoming_invoice_id": document_id,
            "version": 1,
            "action": "push",
            "request_id": f"ip-{organization_id}-ii-{document_id}-v1-push",
        },
        "qbo_bills": {
            "incoming_invoice_id": document_id,
            "entity": "Bill",
            "qbo_id": "7",
            "vendor_qbo_id": "1",
            "document_version": 1,
            "fingerprint": "f",
        },
        "incoming_invoice_payments": {
            "incoming_invoice_id": document_id,
            "qbo_payment_id": "3",
            "paid_on": date(2026, 11, 20),
            "amount": D("10.00"),
            "source": "quickbooks",
        },
        "incoming_invoice_settlements": {
            "incoming_invoice_id": document_id,
            "status": "paid",
            "amount_paid": D("10.00"),
            "amount_open": D("0"),
            "source": "quickbooks",
        },
    }[table]
    return {"organization_id": organization_id, **values}


def _tenant(db, name: str) -> tuple[dict, int]:
    org = db.new_organization(name=name)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        document = conn.execute(
            insert(incoming_invoices)
            .values(
                organization_id=org["id"],
                status="VALIDATED",
                content_hash=hashlib.sha256(org["slug"].encode()).hexdigest(),
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
        for table, target in TABLES.items():
            conn.execute(insert(target).values(_row(table, org["id"], document)))
    return org, document


def test_every_tenant_table_has_the_tenant_policy(pg_database):
    with pg_database.owner_engine.connect() as conn:
        protected = policy_tables(conn)
    assert set(TENANT_TABLES) - set(protected) == set()
    assert set(TABLES) <= set(protected)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_tenant_sees_and_writes_only_its_own_payables(pg_database, table):
    db = pg_database
    (a, doc_a), (b, _doc_b) = _tenant(db, "Alpha Inc"), _tenant(db, "Beta LLC")
    with tenant_transaction(db.engine, b["id"]) as conn:
        # deliberately no WHERE organization_id: the policy filters
        seen = conn.execute(text(f"SELECT organization_id FROM {table}")).scalars().all()
    assert set(seen) == {b["id"]}
    # Beta cannot put a row of its own onto Alpha's organization (or Alpha's document)
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_transaction(db.engine, b["id"], write=True) as conn:
            row = {**_row(table, a["id"], doc_a), **OTHER_KEY.get(table, {})}
            conn.execute(insert(TABLES[table]).values(row))
    with tenant_transaction(db.engine, a["id"]) as conn:
        mine = conn.execute(select(TABLES[table].c.organization_id)).scalars().all()
    assert mine == [a["id"]]
