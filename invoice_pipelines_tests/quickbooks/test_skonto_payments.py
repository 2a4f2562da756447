"""Early-payment discount (Skonto) settled by payments pulled from QuickBooks (the simulator over
real HTTP): a payment of the discounted amount within the period settles the invoice, books the
discount per VAT rate and keeps dunning away; a late one, or a partial one in time, does not; a
credit note lowers what the discount applies to; a customer's own steps win over the default; the
steps are those the invoice's document stated, whatever the terms are by the time it is paid."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.billing.domain.customer_terms import set_customer_skonto
from invoice_pipelines.db.tables import (
    organizations,
    sales_invoice_discounts,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.domain.sync.payments import pull_payments
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.overdue.helpers import notices
from invoice_pipelines_tests.quickbooks.test_payments import void_payment

D = Decimal
ISSUED = date(2026, 11, 2)  # the fixture's issue date; 2 % within 10 days: until 2026-11-12
DUE = date(2026, 11, 16)
LAST_DAY = date(2026, 11, 12)
TWO_PERCENT = [{"days": 10, "percent": "2"}]


@pytest.fixture
def documents(tmp_path) -> LocalFiles:
    return LocalFiles(str(tmp_path / "documents"))


def _offer(qbo, steps=TWO_PERCENT) -> None:
    with system_transaction(qbo.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == qbo.org_id)
            .values(settings={"seller": SELLER, "skonto": steps})
        )


def _two_rate_invoice(qbo, customer: int) -> int:
    """RE-2026-0700: 1000.00 net at 19 % and 500.00 at 7 %, 1725.00 gross."""
    hour, book = qbo.add_item("HOUR", "100.00"), qbo.add_item("BOOK", "50.00", rate="7.00")
    invoice_id = qbo.add_invoice("RE-2026-0700", customer, [(hour, "10", "100.00")], due=DUE)
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == invoice_id)
            .values(
                net_total=D("1500.00"),
                tax_total=D("225.00"),
                gross_total=D("1725.00"),
                amount_due=D("1725.00"),
            )
        )
        conn.execute(
            insert(sales_invoice_lines).values(
                organization_id=qbo.org_id,
                sales_invoice_id=invoice_id,
                line_no=2,
                item_id=book,
                description="line 2",
                quantity=D("10"),
                unit_price=D("50.00"),
                net_amount=D("500.00"),
                vat_rate=D("7.00"),
            )
        )
        conn.execute(
            insert(sales_invoice_taxes).values(
                organization_id=qbo.org_id,
                sales_invoice_id=invoice_id,
                vat_category="S",
                vat_rate=D("7.00"),
                basis=D("500.00"),
                amount=D("35.00"),
            )
        )
    return invoice_id


def _push(qbo, documents) -> None:
    """Issue the new invoices: their documents are written (which fixes their discount terms),
    then they go to QuickBooks."""
    summary = generate_documents(qbo.engine, documents, find_organization(qbo.engine, qbo.org_id))
    assert summary.failed == {}, summary.failed
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
        push_invoices(qbo.engine, qbo.organization, client)


def _pay(qbo, invoice_id: int, customer_id: int, amount: str, day: date) -> dict:
    invoice_qbo = qbo.mapping("invoice", invoice_id)["qbo_id"]
    return qbo.sim.create_as_user(
        qbo.realm,
        "Payment",
        {
            "CustomerRef": {"value": qbo.mapping("customer", customer_id)["qbo_id"]},
            "TotalAmt": amount,
            "TxnDate": day.isoformat(),
            "Line": [
                {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_qbo, "TxnType": "Invoice"}]}
            ],
        },
    )


def _pull(qbo):
    with qbo.client() as client:
        return pull_payments(qbo.engine, qbo.organization, client)


def _state(qbo, invoice_id: int) -> tuple:
    row = qbo.invoice(invoice_id)
    return row["amount_paid"], row["amount_due"], row["status"]


def _discounts(qbo, invoice_id: int) -> list[tuple]:
    d = sales_invoice_discounts.c
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(d.vat_rate, d.gross, d.net, d.vat, d.percent, d.last_day, d.paid_on)
                .where(d.sales_invoice_id == invoice_id)
                .order_by(d.vat_rate.desc())
            )
        ]


def _dunned(qbo, invoice_id: int) -> list[Decimal]:
    run_overdue(qbo.engine, find_organization(qbo.engine, qbo.org_id), on=date(2026, 12, 21))
    org = {"id": qbo.org_id}
    return [n["amount_open"] for n in notices(qbo.db, org) if n["sales_invoice_id"] == invoice_id]


def test_the_discounted_amount_paid_on_the_last_day_settles_books_per_rate_and_is_not_dunned(
    qbo, documents
):
    _offer(qbo)
    customer = qbo.add_customer("Skonto GmbH", email="ap@skonto.example")
    invoice_id = _two_rate_invoice(qbo, customer)
    _push(qbo, documents)
    # 2 % of 1725.00 = 34.50: 1690.50 to pay until 2026-11-12
    _pay(qbo, invoice_id, customer, "1690.50", LAST_DAY)
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")
    # split by gross (1190 : 535): 23.80 at 19 % (20.00 net, 3.80 VAT), 10.70 at 7 % (10.00, 0.70)
    assert _discounts(qbo, invoice_id) == [
        (D("19.00"), D("23.80"), D("20.00"), D("3.80"), D("2.00"), LAST_DAY, LAST_DAY),
        (D("7.00"), D("10.70"), D("10.00"), D("0.70"), D("2.00"), LAST_DAY, LAST_DAY),
    ]
    assert _dunned(qbo, invoice_id) == []
    # pulled again: the same state, the discount booked once
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")
    assert len(_discounts(qbo, invoice_id)) == 2


def test_the_discounted_amount_paid_a_day_late_leaves_the_discount_open_for_dunning(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Spätzahler KG")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0701", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    # 1190.00; 2 % = 23.80; 1166.20 paid on 2026-11-13, one day after the last day
    _pay(qbo, invoice_id, customer, "1166.20", date(2026, 11, 13))
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1166.20"), D("23.80"), "partially_paid")
    assert _discounts(qbo, invoice_id) == []
    assert _dunned(qbo, invoice_id) == [D("23.80")]


def test_a_partial_payment_in_time_earns_no_discount_on_the_rest(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Teilzahler AG")
    item = qbo.add_item("HOUR", "500.00")
    late = qbo.add_invoice("RE-2026-0702", customer, [(item, "2", "500.00")], due=DUE)
    together = qbo.add_invoice("RE-2026-0703", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    # 500.00 in time, the rest of the discounted amount (666.20) after the last day: no discount
    _pay(qbo, late, customer, "500.00", date(2026, 11, 5))
    _pull(qbo)
    assert _state(qbo, late) == (D("500.00"), D("690.00"), "partially_paid")
    _pay(qbo, late, customer, "666.20", date(2026, 11, 20))
    # two payments that reach the discounted amount together within the period: settled
    _pay(qbo, together, customer, "500.00", date(2026, 11, 5))
    _pay(qbo, together, customer, "666.20", date(2026, 11, 12))
    _pull(qbo)
    assert _state(qbo, late) == (D("1166.20"), D("23.80"), "partially_paid")
    assert _discounts(qbo, late) == []
    assert _state(qbo, together) == (D("1166.20"), D("0.00"), "paid")
    assert [row[1] for row in _discounts(qbo, together)] == [D("23.80")]
    run_overdue(qbo.engine, find_organization(qbo.engine, qbo.org_id), on=date(2026, 12, 21))
    dunned = {n["sales_invoice_id"]: n["amount_open"] for n in notices(qbo.db, {"id": qbo.org_id})}
    assert dunned == {late: D("23.80")}


def test_a_partly_credited_invoice_is_discounted_on_what_it_still_bills(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Gutschrift Skonto GmbH", email="ap@gs.example")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0704", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    note = issue_credit_note(
        qbo.engine,
        find_organization(qbo.engine, qbo.org_id),
        "RE-2026-0704",
        reason="one hour not worked",
        lines={1: D(1)},
        issue_date=date(2026, 11, 4),
    )
    assert note.gross_total == D("595.00")
    with qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)  # the credit note as a CreditMemo
    # 1190.00 - 595.00 = 595.00 billed; 2 % = 11.90: 583.10 settles it (not 1166.20 - 595.00)
    _pay(qbo, invoice_id, customer, "583.10", date(2026, 11, 10))
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("583.10"), D("0.00"), "paid")
    assert _discounts(qbo, invoice_id) == [
        (D("19.00"), D("11.90"), D("10.00"), D("1.90"), D("2.00"), LAST_DAY, date(2026, 11, 10))
    ]
    assert _dunned(qbo, invoice_id) == []


def test_a_customers_own_steps_win_over_the_organizations(qbo, documents):
    _offer(qbo)
    own = qbo.add_customer(
        "Drei Prozent GmbH", customer_number="K-3", skonto=[{"days": 7, "percent": "3"}]
    )
    none = qbo.add_customer("Ohne Skonto GmbH", customer_number="K-0", skonto=[])
    item = qbo.add_item("HOUR", "500.00")
    three = qbo.add_invoice("RE-2026-0705", own, [(item, "2", "500.00")], due=DUE)
    without = qbo.add_invoice("RE-2026-0706", none, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    # 3 % of 1190.00 = 35.70 until 2026-11-09; the organization's 2 % would ask 1166.20
    _pay(qbo, three, own, "1154.30", date(2026, 11, 9))
    _pay(qbo, without, none, "1166.20", date(2026, 11, 9))
    _pull(qbo)
    assert _state(qbo, three) == (D("1154.30"), D("0.00"), "paid")
    assert [(r[1], r[4], r[5]) for r in _discounts(qbo, three)] == [
        (D("35.70"), D("3.00"), date(2026, 11, 9))
    ]
    assert _state(qbo, without) == (D("1166.20"), D("23.80"), "partially_paid")
    assert _discounts(qbo, without) == []


def test_a_voided_payment_takes_the_discount_back(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Storno Zahler GmbH")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0707", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    payment = _pay(qbo, invoice_id, customer, "1166.20", date(2026, 11, 10))
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1166.20"), D("0.00"), "paid")
    with qbo.client() as client:
        void_payment(client, qbo, payment["Id"])
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("0.00"), D("1190.00"), "open")
    assert _discounts(qbo, invoice_id) == []


def test_a_credit_note_after_a_discounted_payment_takes_the_discount_back_on_the_next_pull(
    qbo, documents
):
    _offer(qbo)
    customer = qbo.add_customer("Nachher Gutschrift GmbH", email="ap@ng.example")
    item = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0708", customer, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    _pay(qbo, invoice_id, customer, "1166.20", date(2026, 11, 10))
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1166.20"), D("0.00"), "paid")
    issue_credit_note(
        qbo.engine,
        find_organization(qbo.engine, qbo.org_id),
        "RE-2026-0708",
        reason="one hour not worked",
        lines={1: D(1)},
        issue_date=date(2026, 11, 14),
    )
    with qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)  # the CreditMemo, applied in QBO
    _pull(qbo)
    # 595.00 still billed, 1166.20 paid: the payments leave nothing open, so nothing is taken
    # off; the customer is owed what was paid beyond what is billed
    paid, due, _ = _state(qbo, invoice_id)
    assert (paid, due) == (D("1166.20"), D("-571.20"))
    assert _discounts(qbo, invoice_id) == []
    assert _dunned(qbo, invoice_id) == []


def _steps(qbo, invoice_id: int):
    return qbo.invoice(invoice_id)["skonto_steps"]


def test_terms_changed_after_the_document_was_written_do_not_change_the_invoices(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Alte Bedingungen GmbH", customer_number="K-A")
    own = qbo.add_customer(
        "Eigene Bedingungen GmbH", customer_number="K-E", skonto=[{"days": 7, "percent": "3"}]
    )
    item = qbo.add_item("HOUR", "500.00")
    default = qbo.add_invoice("RE-2026-0710", customer, [(item, "2", "500.00")], due=DUE)
    raised = qbo.add_invoice("RE-2026-0711", customer, [(item, "2", "500.00")], due=DUE)
    customers_own = qbo.add_invoice("RE-2026-0712", own, [(item, "2", "500.00")], due=DUE)
    _push(qbo, documents)
    assert _steps(qbo, default) == TWO_PERCENT
    assert _steps(qbo, customers_own) == [{"days": 7, "percent": "3"}]
    # after the documents went out: the organization offers 5 % within 20 days, the customer
    # with its own steps is moved to none
    _offer(qbo, [{"days": 20, "percent": "5"}])
    set_customer_skonto(qbo.engine, qbo.org_id, "K-E", "none", requested_by="test")
    # 1190.00 each: the document's 2 % asks 1166.20 by 2026-11-12, the customer's 3 % 1154.30
    # by 2026-11-09; the new 5 % would ask 1130.50 by 2026-11-22
    _pay(qbo, default, customer, "1166.20", LAST_DAY)
    _pay(qbo, raised, customer, "1130.50", date(2026, 11, 10))
    _pay(qbo, customers_own, own, "1154.30", date(2026, 11, 9))
    _pull(qbo)
    assert _state(qbo, default) == (D("1166.20"), D("0.00"), "paid")
    assert [(r[1], r[4], r[5]) for r in _discounts(qbo, default)] == [
        (D("23.80"), D("2.00"), LAST_DAY)
    ]
    assert _state(qbo, raised) == (D("1130.50"), D("59.50"), "partially_paid")
    assert _discounts(qbo, raised) == []
    assert _state(qbo, customers_own) == (D("1154.30"), D("0.00"), "paid")
    assert [(r[1], r[4], r[5]) for r in _discounts(qbo, customers_own)] == [
        (D("35.70"), D("3.00"), date(2026, 11, 9))
    ]
    assert _steps(qbo, default) == TWO_PERCENT
    assert _dunned(qbo, raised) == [D("59.50")]


def test_an_invoice_whose_document_stated_no_steps_earns_none_after_steps_are_added(qbo, documents):
    customer = qbo.add_customer("Ohne Bedingungen GmbH", customer_number="K-N")
    item = qbo.add_item("HOUR", "500.00")
    stated_none = qbo.add_invoice("RE-2026-0713", customer, [(item, "2", "500.00")], due=DUE)
    _offer(qbo, [])
    _push(qbo, documents)
    assert _steps(qbo, stated_none) == []
    # an invoice that went to QuickBooks without any document written: no terms told, none earned
    unwritten = qbo.add_invoice("RE-2026-0714", customer, [(item, "2", "500.00")], due=DUE)
    _offer(qbo)
    with qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)
    assert _steps(qbo, unwritten) is None
    _pay(qbo, stated_none, customer, "1166.20", date(2026, 11, 10))
    _pay(qbo, unwritten, customer, "1166.20", date(2026, 11, 10))
    _pull(qbo)
    for invoice_id in (stated_none, unwritten):
        assert _state(qbo, invoice_id) == (D("1166.20"), D("23.80"), "partially_paid")
        assert _discounts(qbo, invoice_id) == []
    run_overdue(qbo.engine, find_organization(qbo.engine, qbo.org_id), on=date(2026, 12, 21))
    dunned = {n["sales_invoice_id"]: n["amount_open"] for n in notices(qbo.db, {"id": qbo.org_id})}
    assert dunned == {stated_none: D("23.80"), unwritten: D("23.80")}
