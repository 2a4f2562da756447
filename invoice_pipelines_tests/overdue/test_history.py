"""History (invoices a migration brought in) is never dunned: no notice, fee or interest for it,
and a notice still waiting for an invoice marked history is withdrawn before it is sent."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select, update

from invoice_pipelines.db.tables import dunning_notices, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.overdue.domain.notice_sending import withdraw_stale
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines_tests.overdue.helpers import (
    customer,
    invoice,
    levels_by_invoice,
    set_settings,
)

TODAY = date(2026, 11, 20)
LEVELS = {
    "deliver": True,
    "law": "none",
    "interest": {"base_rate_percent": "1.27", "margin_percent": "9"},
    "levels": [
        {"name": "reminder", "days": 1, "channel": "email"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "5.00", "channel": "email"},
    ],
}


def _org(db):
    org = db.new_organization(timezone="UTC")
    set_settings(db, org, {"dunning": LEVELS})
    return org


def test_history_gets_no_notice_fee_or_interest(db):
    org = _org(db)
    kunde = customer(db, org, email="einkauf@kunde.example")
    long_ago = TODAY - timedelta(days=400)
    past = invoice(db, org, kunde, long_ago, history=True)
    today = invoice(db, org, kunde, long_ago)

    result = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)

    assert set(levels_by_invoice(db, org)) == {today}
    assert result.notices_created == 1 and result.scanned == 1
    assert result.fees == 5 and result.interest > 0  # the ordinary invoice's, nothing of past's
    # a second run finds nothing more to do, for either
    assert (
        run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY).notices_created
        == 0
    )
    assert past not in levels_by_invoice(db, org)


def test_a_waiting_notice_of_an_invoice_marked_history_is_withdrawn(db):
    org = _org(db)
    kunde = customer(db, org, email="einkauf@kunde.example")
    marked = invoice(db, org, kunde, TODAY - timedelta(days=3))
    kept = invoice(db, org, kunde, TODAY - timedelta(days=3))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=TODAY)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(sales_invoices).where(sales_invoices.c.id == marked).values(history=True)
        )

    withdrawn = withdraw_stale(db.engine, org["id"])

    n = dunning_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = dict(
            conn.execute(
                select(n.sales_invoice_id, n.delivery_status).where(n.organization_id == org["id"])
            ).all()
        )
    assert rows == {marked: "failed", kept: "pending"}
    assert list(withdrawn.values()) == [
        "withdrawn before sending: the invoice is history (a migration brought it in)"
    ]
