"""Payments pulled from the simulator onto our sales invoices: partial, full, voided."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import sales_invoices
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.quickbooks.domain.client import request_id
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.domain.sync.payments import pull_payments

D = Decimal


def _pay(qbo, invoice_qbo_id: str, customer_qbo_id: str, amount: str, day: str) -> dict:
    return qbo.sim.create_as_user(
        qbo.realm,
        "Payment",
        {
            "CustomerRef": {"value": customer_qbo_id},
            "TotalAmt": amount,
            "TxnDate": day,
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_qbo_id, "TxnType": "Invoice"}]}
            ],
        },
    )


def void_payment(client, qbo, payment_id: str) -> None:
    """Void a payment in QBO as a user does (a sparse update with include=void)."""
    current = client.get("Payment", payment_id)
    client.request(
        "POST",
        "payment",
        params={
            "operation": "update",
            "include": "void",
            "requestid": request_id("void-payment", qbo.realm, payment_id),
        },
        body={"Id": payment_id, "SyncToken": current["SyncToken"], "sparse": True},
    )


def test_partial_full_and_voided_payments_set_amounts_status_and_last_payment(qbo):
    customer = qbo.add_customer("Zahler GmbH", email="ap@zahler.example")
    item = qbo.add_item("HOUR", "78.50")
    invoice_id = qbo.add_invoice("RE-2026-0500", customer, [(item, "2", "78.50")])  # 186.83
    untouched = qbo.add_invoice("RE-2026-0501", customer, [(item, "1", "78.50")])
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
        push_invoices(qbo.engine, qbo.organization, client)
    invoice_qbo = qbo.mapping("invoice", invoice_id)["qbo_id"]
    customer_qbo = qbo.mapping("customer", customer)["qbo_id"]

    _pay(qbo, invoice_qbo, customer_qbo, "100.00", "2026-11-10")
    with qbo.client() as client:
        pull_payments(qbo.engine, qbo.organization, client)
    partial = qbo.invoice(invoice_id)
    assert (partial["amount_paid"], partial["amount_due"], partial["status"]) == (
        D("100.00"),
        D("86.83"),
        "partially_paid",
    )

    second = _pay(qbo, invoice_qbo, customer_qbo, "86.83", "2026-11-12")
    with qbo.client() as client:
        pull_payments(qbo.engine, qbo.organization, client)
    paid = qbo.invoice(invoice_id)
    assert (paid["amount_paid"], paid["amount_due"], paid["status"]) == (
        D("186.83"),
        D("0.00"),
        "paid",
    )
    details = qbo.mapping("invoice", invoice_id)["details"]
    assert details["last_payment_date"] == "2026-11-12"
    assert details["last_payment_id"] == second["Id"]
    if "last_payment_date" in sales_invoices.c:
        assert paid["last_payment_date"] == date(2026, 11, 12)

    # the second payment is voided in QBO: the invoice is partly open again
    with qbo.client() as client:
        void_payment(client, qbo, second["Id"])
        pull_payments(qbo.engine, qbo.organization, client)
    reopened = qbo.invoice(invoice_id)
    assert (reopened["amount_paid"], reopened["amount_due"], reopened["status"]) == (
        D("100.00"),
        D("86.83"),
        "partially_paid",
    )
    assert qbo.mapping("invoice", invoice_id)["details"]["last_payment_date"] == "2026-11-10"
    # an invoice nobody paid is left as it was
    assert qbo.invoice(untouched)["status"] == "open"
    assert qbo.invoice(untouched)["amount_paid"] == D("0.00")


def test_an_invoice_voided_or_deleted_in_qbo_is_held_for_a_person_not_read_as_unpaid(qbo):
    from sqlalchemy import select

    from invoice_pipelines.db.tables import sync_conflicts
    from invoice_pipelines.db.tenancy import tenant_transaction

    customer = qbo.add_customer("Storno GmbH")
    item = qbo.add_item("HOUR", "78.50")
    voided = qbo.add_invoice("RE-2026-0600", customer, [(item, "1", "78.50")])
    deleted = qbo.add_invoice("RE-2026-0601", customer, [(item, "1", "78.50")])
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
        push_invoices(qbo.engine, qbo.organization, client)
        pull_payments(
            qbo.engine, qbo.organization, client
        )  # the cursor: later changes come from CDC
        for invoice_id, operation in ((voided, "void"), (deleted, "delete")):
            qbo_id = qbo.mapping("invoice", invoice_id)["qbo_id"]
            current = client.get("Invoice", qbo_id)
            client.request(
                "POST",
                "invoice",
                params={
                    "operation": operation,
                    "requestid": request_id(operation, qbo.realm, qbo_id),
                },
                body={"Id": qbo_id, "SyncToken": current["SyncToken"]},
            )
        counts = pull_payments(qbo.engine, qbo.organization, client)
    assert counts.conflicts == 2
    assert qbo.mapping("invoice", voided)["qbo_state"] == "voided"
    assert qbo.mapping("invoice", deleted)["qbo_state"] == "deleted"
    assert qbo.invoice(voided)["amount_due"] == qbo.invoice(voided)["gross_total"]
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        held = conn.execute(
            select(sync_conflicts.c.local_id, sync_conflicts.c.status).where(
                sync_conflicts.c.organization_id == qbo.org_id
            )
        ).all()
    assert sorted(held) == sorted([(voided, "open"), (deleted, "open")])


def test_a_credit_note_stays_credited_when_payments_are_pulled_and_is_no_qbo_invoice(qbo):
    customer = qbo.add_customer("Gutschrift GmbH", email="ap@gutschrift.example")
    item = qbo.add_item("HOUR", "78.50")
    invoice_id = qbo.add_invoice("RE-2026-0600", customer, [(item, "2", "78.50")])  # 186.83
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
        push_invoices(qbo.engine, qbo.organization, client)
    note = issue_credit_note(
        qbo.engine,
        find_organization(qbo.engine, qbo.org_id),
        "RE-2026-0600",
        reason="one hour not worked",
        lines={1: D(1)},
        issue_date=date(2026, 11, 5),
    )
    assert note.gross_total == D("93.42")  # 78.50 + 14.92
    with qbo.client() as client:
        pushed = push_invoices(qbo.engine, qbo.organization, client)
    # a credit note pushed as a QBO Invoice would bill the customer a second time: it is a
    # CreditMemo (test_credit_memos.py)
    assert qbo.mapping("invoice", note.id) is None
    assert pushed.extra["credit_memos_pushed"] == 1
    assert qbo.mapping("credit_memo", note.id) is not None

    _pay(
        qbo,
        qbo.mapping("invoice", invoice_id)["qbo_id"],
        qbo.mapping("customer", customer)["qbo_id"],
        "50.00",
        "2026-11-10",
    )
    with qbo.client() as client:
        pull_payments(qbo.engine, qbo.organization, client)
    invoice = qbo.invoice(invoice_id)
    # 186.83 - 93.42 credited - 50.00 paid: the pull does not give the credit back to dunning
    assert (invoice["amount_paid"], invoice["amount_due"], invoice["status"]) == (
        D("50.00"),
        D("43.41"),
        "partially_paid",
    )
