"""A supplier's Skonto taken closes its bill in QuickBooks (the simulator over real HTTP, through
the production client), exactly once: a VendorCredit of the discount with the bill's accounts and
its share of the tax, applied by a BillPayment of no money; a late payment earns nothing and
closes nothing; 429s, 5xx and answers lost after QBO committed never double a credit or an
application; a run that gives up leaves its rows `sending` and the next finds them in QBO."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from invoice_pipelines.core.money import round_cents
from invoice_pipelines.db.tables import qbo_bill_discounts
from invoice_pipelines.quickbooks.domain.sync.common import realm_lease
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.payables_books import (
    ISSUED,
    Books,
    supplier_invoice,
    xml_of,
)

D = Decimal
IN_TIME = ISSUED + timedelta(days=10)


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    books = Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    return books


def _paid_with_skonto(books: Books, number: str, day=IN_TIME) -> tuple[dict, dict, Decimal]:
    """A bill of a 2 %-in-10-days invoice, paid in QBO less the discount on `day`."""
    invoice = supplier_invoice(number, skonto=((10, "2"),))
    (doc,) = books.receive({f"{number}.xml": xml_of(invoice)}).values()
    books.push()
    (bill,) = [b for b in books.qbo_records("Bill") if b["DocNumber"] == number]
    discount = round_cents(doc["gross_total"] * D("0.02"))
    books.pay(bill, str(doc["gross_total"] - discount), day)
    return doc, bill, discount


def _bill(books: Books, bill_id: str) -> dict:
    (bill,) = [b for b in books.qbo_records("Bill") if b["Id"] == bill_id]
    return bill


def _closings(books: Books) -> list[dict]:
    return books._rows(qbo_bill_discounts, qbo_bill_discounts.c.id)


def _closed_once(books: Books, bill: dict, discount: Decimal, number: str) -> None:
    """The bill's balance is 0 in QBO: one VendorCredit of the discount (nothing left of it),
    applied by one BillPayment of no money; no other money moved."""
    assert D(str(_bill(books, bill["Id"])["Balance"])) == 0
    (credit,) = books.qbo_records("VendorCredit")
    assert (credit["DocNumber"], D(str(credit["TotalAmt"])), D(str(credit["Balance"]))) == (
        f"{number}-SK",
        discount,
        0,
    )
    assert credit["VendorRef"]["value"] == bill["VendorRef"]["value"]
    zero = [p for p in books.qbo_records("BillPayment") if D(str(p["TotalAmt"])) == 0]
    assert len(zero) == 1
    assert sorted((x["LinkedTxn"][0]["TxnType"], D(str(x["Amount"]))) for x in zero[0]["Line"]) == [
        ("Bill", discount),
        ("VendorCredit", discount),
    ]
    assert len(books.qbo_records("BillPayment")) == 2  # the money, and the application
    assert {(r["action"], r["status"]) for r in _closings(books)} == {
        ("credit", "pushed"),
        ("apply", "pushed"),
    }


def test_a_skonto_taken_closes_the_bill_in_quickbooks_once(books):
    doc, bill, discount = _paid_with_skonto(books, "RE-SK1")
    counts = books.pull_payments()
    assert counts.pushed == 1 and counts.failed == 0, counts.errors
    _closed_once(books, bill, discount, "RE-SK1")
    (credit,) = books.qbo_records("VendorCredit")
    # the discount lowers the costs where the bill booked them, and their input tax with them
    bill_tax = D(str(bill["TxnTaxDetail"]["TotalTax"]))
    tax = round_cents(discount * bill_tax / D(str(bill["TotalAmt"])))
    assert D(str(credit["TxnTaxDetail"]["TotalTax"])) == tax
    accounts = {x["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for x in bill["Line"]}
    assert {x["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for x in credit["Line"]} <= (
        accounts
    )
    assert credit["TxnDate"] == IN_TIME.isoformat()
    # our side: paid with the discount, the bill's balance 0, the application no payment of money
    settled = books.settlements()[doc["id"]]
    assert (settled["status"], settled["discount"]) == ("paid", discount)
    assert books.bills()[doc["id"]]["balance"] == 0
    again = books.pull_payments()
    assert (again.pushed, again.failed, again.conflicts) == (0, 0, 0)
    assert [p["amount"] for p in books.payments()] == [doc["gross_total"] - discount]
    assert books.settlements()[doc["id"]]["discount"] == discount
    _closed_once(books, bill, discount, "RE-SK1")


def test_a_late_payment_earns_no_skonto_and_closes_nothing(books):
    doc, bill, discount = _paid_with_skonto(books, "RE-SK2", ISSUED + timedelta(days=11))
    books.pull_payments()
    assert books.settlements()[doc["id"]]["status"] == "partially_paid"
    assert books.qbo_records("VendorCredit") == []
    assert D(str(_bill(books, bill["Id"])["Balance"])) == discount
    assert _closings(books) == []


def test_429_5xx_and_lost_answers_never_double_a_credit_or_an_application(books):
    doc, bill, discount = _paid_with_skonto(books, "RE-SK3")
    sim, realm = books.qbo.sim, books.qbo.realm
    for path in ("/vendorcredit?", "/billpayment?"):
        sim.inject(realm, "429", path_contains=path)
        sim.inject(realm, "500", path_contains=path)
        sim.inject(realm, "drop_after_commit", count=2, path_contains=path)
    counts = books.pull_payments()
    assert counts.failed == 0, counts.errors
    _closed_once(books, bill, discount, "RE-SK3")
    replays = [r for r in sim.requests(realm) if r.get("injected") == "drop_after_commit"]
    assert len(replays) >= 4  # the answers were there to be lost


@pytest.mark.parametrize(("step", "entity"), [("credit", "vendorcredit"), ("apply", "billpayment")])
def test_a_run_that_gives_up_leaves_its_row_sending_the_next_finds_it_in_qbo(books, step, entity):
    doc, bill, discount = _paid_with_skonto(books, "RE-SK4")
    sim, realm = books.qbo.sim, books.qbo.realm
    # every answer to the step's write is lost, more often than the client retries: QBO has
    # the write, but this run never learns it
    sim.inject(realm, "drop_after_commit", count=20, path_contains=f"/{entity}?")
    books.pull_payments()
    assert (step, "sending") in [(r["action"], r["status"]) for r in _closings(books)]
    assert len(books.qbo_records("VendorCredit")) == 1
    sim.clear_faults(realm)
    before = len(sim.requests(realm))
    # the next run holds the organization's lease, as every production run does: a row left
    # `sending` is a dead run's, looked up in QBO before anything is sent
    with realm_lease(books.qbo.engine, books.qbo.org_id, "next-run"):
        second = books.pull_payments()
    assert second.linked == 1 and second.failed == 0, second.errors
    posted = [
        r
        for r in sim.requests(realm)[before:]
        if r["method"] == "POST" and r["path"].endswith(f"/{entity}")
    ]
    assert posted == []
    _closed_once(books, bill, discount, "RE-SK4")
