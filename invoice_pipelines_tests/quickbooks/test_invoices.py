"""Invoices pushed to the simulator: validation, batches, no duplicates, DocNumber links, voids."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select, update

from invoice_pipelines.db.tables import qbo_push_queue, sales_invoices, sync_conflicts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import realm_lease
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices, queue_counts
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines_tests.quickbooks.conftest import connect

D = Decimal


def _shop(qbo, invoices: int = 3):
    customer = qbo.add_customer("Müller Werkzeugbau GmbH", email="buch@mueller.example")
    item = qbo.add_item("TOOL", "24.90", "Drehmomentschlüssel")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    ids = [
        qbo.add_invoice(f"RE-2026-{n:04d}", customer, [(item, "2", "24.90"), (item, "1", "24.90")])
        for n in range(1, invoices + 1)
    ]
    return customer, item, ids


def _queue(qbo) -> dict[int, dict]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        rows = conn.execute(
            select(qbo_push_queue).where(qbo_push_queue.c.organization_id == qbo.org_id)
        ).mappings()
        return {(r["sales_invoice_id"], r["action"]): dict(r) for r in rows}


def test_invoices_are_pushed_with_our_number_lines_and_gross_total(qbo):
    _, _, ids = _shop(qbo)
    with qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert counts.pushed == 3 and counts.failed == 0
    pushed = {r["DocNumber"]: r for r in qbo.sim.records(qbo.realm, "Invoice")}
    assert sorted(pushed) == ["RE-2026-0001", "RE-2026-0002", "RE-2026-0003"]
    first = pushed["RE-2026-0001"]
    assert D(str(first["TotalAmt"])) == qbo.invoice(ids[0])["gross_total"] == D("88.89")
    assert [D(str(line["Amount"])) for line in first["Line"][:2]] == [D("49.80"), D("24.90")]
    assert qbo.mapping("invoice", ids[0])["qbo_id"] == first["Id"]
    # a second run has nothing to do
    with qbo.client() as client:
        again = push_invoices(qbo.engine, qbo.organization, client)
    assert again.pushed == 0 and len(qbo.sim.records(qbo.realm, "Invoice")) == 3


def test_an_invoice_that_cannot_be_pushed_fails_alone_with_the_reason(qbo):
    customer, item, ids = _shop(qbo, invoices=2)
    stranger = qbo.add_customer("Nicht Synchron AG")  # never synced: no QBO customer
    bad = qbo.add_invoice("RE-2026-0099", stranger, [(item, "1", "24.90")])
    with qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert counts.pushed == 2 and counts.failed == 1
    row = _queue(qbo)[(bad, "create")]
    assert row["status"] == "failed"
    assert row["error_message"] == f"customer {stranger} is not synced to QuickBooks yet"
    # once the customer is synced, the next push run checks it again and sends it
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        again = push_invoices(qbo.engine, qbo.organization, client)
    assert again.pushed == 1 and _queue(qbo)[(bad, "create")]["status"] == "pushed"


def test_a_batch_dropped_after_qbo_committed_it_creates_nothing_twice(db, simulator):
    # without DocNumber checks in QBO only the requestid stands between a retry and a duplicate
    qbo = connect(db, simulator, custom_txn_numbers=False)
    _shop(qbo, invoices=5)
    simulator.inject(qbo.realm, "drop_after_commit", count=1, path_contains="batch")
    with qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert counts.pushed == 5
    batches = [r for r in simulator.requests(qbo.realm) if r["path"].endswith("/batch")]
    # the invoices' batch was sent twice with one requestid: the second got the first's answer
    assert batches[-1]["requestid"] == batches[-2]["requestid"]
    numbers = [r["DocNumber"] for r in simulator.records(qbo.realm, "Invoice")]
    assert sorted(numbers) == sorted(set(numbers)) and len(numbers) == 5


def test_invoices_left_sending_by_a_dead_run_are_found_in_qbo_not_sent_again(db, simulator):
    qbo = connect(db, simulator, custom_txn_numbers=False)
    _, _, ids = _shop(qbo, invoices=3)
    with qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)
    # the state a run leaves when it dies after QBO created the invoices, before it recorded them
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(qbo_push_queue)
            .where(qbo_push_queue.c.organization_id == qbo.org_id)
            .values(status="sending", qbo_id=None)
        )
    # the next run holds the organization's lease, as every production run does: no other run
    # can be sending, so rows left `sending` are a dead run's whatever their age
    with realm_lease(qbo.engine, qbo.org_id, "next-run"), qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)
    assert len(simulator.records(qbo.realm, "Invoice")) == 3
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 3}


def test_an_existing_doc_number_is_linked_when_it_is_ours_and_a_conflict_otherwise(qbo):
    customer, item, ids = _shop(qbo, invoices=2)
    with qbo.client() as client:
        cust_qbo = qbo.mapping("customer", customer)["qbo_id"]
        item_qbo = qbo.mapping("item", item)["qbo_id"]
        # someone typed invoice 1 into QBO by hand, the same way; invoice 2 as something else
        for number, qty in (("RE-2026-0001", "3"), ("RE-2026-0002", "1")):
            qbo.sim.create_as_user(
                qbo.realm,
                "Invoice",
                {
                    "DocNumber": number,
                    "CustomerRef": {"value": cust_qbo},
                    "Line": [
                        {
                            "Amount": str(D(qty) * D("24.90")),
                            "DetailType": "SalesItemLineDetail",
                            "SalesItemLineDetail": {
                                "ItemRef": {"value": item_qbo},
                                "Qty": qty,
                                "UnitPrice": "24.90",
                            },
                        }
                    ],
                    "TxnTaxDetail": {"TotalTax": "14.19"},
                },
            )
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert counts.linked == 1 and counts.conflicts == 1 and counts.pushed == 0
    assert len(qbo.sim.records(qbo.realm, "Invoice")) == 2  # nothing duplicated
    queue = _queue(qbo)
    assert queue[(ids[0], "create")]["status"] == "pushed"
    assert queue[(ids[1], "create")]["status"] == "conflict"
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        conflict = (
            conn.execute(
                select(sync_conflicts).where(sync_conflicts.c.organization_id == qbo.org_id)
            )
            .mappings()
            .one()
        )
    assert conflict["local_id"] == ids[1] and conflict["status"] == "open"
    assert "RE-2026-0002" in conflict["reason"]


def test_a_cancelled_invoice_is_voided_in_qbo(qbo):
    _, _, ids = _shop(qbo, invoices=1)
    with qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(sales_invoices).where(sales_invoices.c.id == ids[0]).values(status="cancelled")
        )
    with qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)
    assert (counts.pushed, counts.extra["voided"]) == (0, 1)  # a void, no invoice
    (record,) = qbo.sim.records(qbo.realm, "Invoice")
    assert D(str(record["TotalAmt"])) == 0 and "Voided" in record.get("PrivateNote", "")
    assert qbo.mapping("invoice", ids[0])["qbo_state"] == "voided"
