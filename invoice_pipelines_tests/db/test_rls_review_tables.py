"""Row-level security of the tables migration 0019 adds (issue 36): a tenant neither sees nor
writes another's review records (incoming_reviews) or supplier notices (supplier_notices), even
when a query forgets its organization filter. PostgreSQL (SQLite has no row-level security)."""

import hashlib

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.tables import incoming_invoices, incoming_reviews, supplier_notices
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction


def _document_with_review_and_notice(db, org) -> int:
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        doc = conn.execute(
            insert(incoming_invoices)
            .values(
                organization_id=org["id"],
                status="FAILED",
                content_hash=hashlib.sha256(org["slug"].encode()).hexdigest(),
            )
            .returning(incoming_invoices.c.id)
        ).scalar_one()
        conn.execute(
            insert(incoming_reviews).values(
                organization_id=org["id"], incoming_invoice_id=doc, action="rejected",
                new_value="not ours", reviewed_by="anna",
            )
        )  # fmt: skip
        conn.execute(
            insert(supplier_notices).values(
                organization_id=org["id"], incoming_invoice_id=doc, recipient="a@b.example",
                subject="Not accepted", body="...",
            )
        )  # fmt: skip
    return doc


@pytest.mark.parametrize("table", ["incoming_reviews", "supplier_notices"])
def test_a_tenant_sees_and_writes_only_its_own_review_records_and_notices(pg_database, table):
    db = pg_database
    a, b = db.new_organization(name="Alpha GmbH"), db.new_organization(name="Beta LLC")
    doc_a = _document_with_review_and_notice(db, a)
    _document_with_review_and_notice(db, b)

    with tenant_transaction(db.engine, b["id"]) as conn:
        # deliberately no WHERE organization_id: the policy filters
        seen = conn.execute(text(f"SELECT organization_id FROM {table}")).scalars().all()
    assert set(seen) == {b["id"]}
    with system_transaction(db.engine) as conn:
        everyone = set(conn.execute(text(f"SELECT organization_id FROM {table}")).scalars())
    assert {a["id"], b["id"]} <= everyone

    # Beta cannot slip a record onto Alpha's document
    values = (
        {"action": "confirmed", "reviewed_by": "intruder"}
        if table == "incoming_reviews"
        else {"subject": "x", "body": "x", "recipient": "x@y.example"}
    )
    target = incoming_reviews if table == "incoming_reviews" else supplier_notices
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_transaction(db.engine, b["id"], write=True) as conn:
            conn.execute(
                insert(target).values(organization_id=a["id"], incoming_invoice_id=doc_a, **values)
            )
    with tenant_transaction(db.engine, a["id"]) as conn:
        mine = conn.execute(select(target.c.organization_id)).scalars().all()
    assert set(mine) == {a["id"]} and len(mine) == 1
