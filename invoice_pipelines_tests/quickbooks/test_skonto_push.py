"""QuickBooks agrees with our Skonto (issue 49): a discount the payment pull settled reaches the
simulator (over real HTTP, through the production client, on SQLite and PostgreSQL) as a
CreditMemo with one line per VAT rate, applied to the invoice, so the invoice has Balance 0 there
too; once, under 429s, 5xx, timeouts, lost answers and a push process killed mid-request; a
discount not settled pushes nothing, a second run nothing new, and nothing comes back on the pull
as a payment or a second discount."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from invoice_pipelines.db.tables import (
    qbo_connections,
    qbo_push_queue,
    sales_invoice_payments,
    sync_conflicts,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.sync.common import realm_lease
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.test_payments import void_payment
from invoice_pipelines_tests.quickbooks.test_skonto_payments import (
    DUE,
    LAST_DAY,
    _discounts,
    _offer,
    _pay,
    _pull,
    _push,
    _state,
    _two_rate_invoice,
)

D = Decimal


@pytest.fixture
def documents(tmp_path) -> LocalFiles:
    return LocalFiles(str(tmp_path / "documents"))


def _discount_item(qbo) -> str:
    """The QBO item the organization books discounts on, set on its connection."""
    item = qbo.sim.create_as_user(
        qbo.realm,
        "Item",
        {"Name": "Gewährte Skonti", "Type": "Service", "IncomeAccountRef": {"value": "1"}},
    )
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        settings = conn.execute(
            select(qbo_connections.c.settings).where(
                qbo_connections.c.organization_id == qbo.org_id
            )
        ).scalar_one()
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == qbo.org_id)
            .values(settings={**settings, "discount_item_id": item["Id"]})
        )
    return item["Id"]


def _settled_two_rate_invoice(qbo, documents) -> tuple[int, int, str]:
    """RE-2026-0700 (1000.00 at 19 %, 500.00 at 7 %, 1725.00) in QBO, paid 1690.50 on its
    discount's last day and pulled: 34.50 discount, 23.80 at 19 % and 10.70 at 7 %."""
    _offer(qbo)
    customer = qbo.add_customer("Skonto Zwei Sätze GmbH", email="ap@zwei.example")
    invoice_id = _two_rate_invoice(qbo, customer)
    item = _discount_item(qbo)
    _push(qbo, documents)
    _pay(qbo, invoice_id, customer, "1690.50", LAST_DAY)
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")
    return invoice_id, customer, item


def _push_now(qbo):
    with qbo.client() as client:
        return push_invoices(qbo.engine, qbo.organization, client)


def _in_qbo(qbo, entity: str, qbo_id: str) -> dict:
    return next(r for r in qbo.sim.records(qbo.realm, entity) if r["Id"] == qbo_id)


def _invoice_in_qbo(qbo, invoice_id: int) -> dict:
    return _in_qbo(qbo, "Invoice", qbo.mapping("invoice", invoice_id)["qbo_id"])


def _posts(qbo, path: str) -> list[dict]:
    return [
        r for r in qbo.sim.requests(qbo.realm) if r["method"] == "POST" and r["path"].endswith(path)
    ]


def _writes(qbo) -> list[dict]:
    """Every request that may change QBO (a POST that is not a query)."""
    return [
        r
        for r in qbo.sim.requests(qbo.realm)
        if r["method"] == "POST" and not r["path"].endswith("/query")
    ]


def _queue(qbo, invoice_id: int) -> dict[str, dict]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        rows = conn.execute(
            select(qbo_push_queue).where(qbo_push_queue.c.sales_invoice_id == invoice_id)
        ).mappings()
        return {r["action"]: dict(r) for r in rows}


def _money_rows(qbo, invoice_id: int) -> list[tuple]:
    p = sales_invoice_payments.c
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(p.qbo_payment_id, p.paid_on, p.amount).where(
                    p.sales_invoice_id == invoice_id
                )
            )
        ]


def _conflicts(qbo) -> list[tuple]:
    c = sync_conflicts.c
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(c.entity, c.local_id, c.status, c.reason)
                .where(c.organization_id == qbo.org_id)
                .order_by(c.id)
            )
        ]


def _sales_lines(memo: dict) -> list[tuple]:
    return [
        (
            D(str(line["Amount"])),
            line["SalesItemLineDetail"]["TaxCodeRef"]["value"],
            line["SalesItemLineDetail"]["ItemRef"]["value"],
            line["Description"],
        )
        for line in memo["Line"]
        if line["DetailType"] == "SalesItemLineDetail"
    ]


def _assert_closed_once(qbo, invoice_id: int, item: str) -> None:
    """One CreditMemo with a line per VAT rate, applied once: the QBO invoice has Balance 0."""
    (memo,) = qbo.sim.records(qbo.realm, "CreditMemo")
    assert memo["DocNumber"] == "RE-2026-0700-SK"
    assert memo["TxnDate"] == LAST_DAY.isoformat()
    assert _sales_lines(memo) == [
        (D("20.00"), "TAX", item, "Skonto 2 % on invoice RE-2026-0700, VAT 19 %"),
        (D("10.00"), "TAX", item, "Skonto 2 % on invoice RE-2026-0700, VAT 7 %"),
    ]
    assert D(str(memo["TxnTaxDetail"]["TotalTax"])) == D("4.50")
    assert D(str(memo["TotalAmt"])) == D("34.50")
    assert D(str(memo["RemainingCredit"])) == 0
    invoice = _invoice_in_qbo(qbo, invoice_id)
    assert D(str(invoice["Balance"])) == 0
    payments = sorted(
        (D(str(p["TotalAmt"])), p["TxnDate"]) for p in qbo.sim.records(qbo.realm, "Payment")
    )
    # the customer's money, and the application of the credit (no money moved)
    assert payments == [(D("0"), LAST_DAY.isoformat()), (D("1690.50"), LAST_DAY.isoformat())]
    assert qbo.mapping("credit_memo", invoice_id)["qbo_id"] == memo["Id"]
    queue = _queue(qbo, invoice_id)
    assert (queue["discount"]["status"], queue["dapply"]["status"]) == ("pushed", "pushed")


def test_a_skonto_on_two_rates_closes_the_qbo_invoice_once_under_throttles_5xx_and_timeouts(
    db, simulator, documents
):
    # without DocNumber checks in QBO only the requestid and our lookups stand between a retry
    # and a second credit
    qbo = connect(db, simulator, custom_txn_numbers=False)
    invoice_id, _customer, item = _settled_two_rate_invoice(qbo, documents)
    assert D(str(_invoice_in_qbo(qbo, invoice_id)["Balance"])) == D("34.50")
    for fault, seconds in (("429", None), ("500", None), ("timeout", 6), ("drop_after_commit", 0)):
        simulator.inject(qbo.realm, fault, path_contains="/creditmemo?", seconds=seconds)
    for fault in ("503", "timeout", "drop_after_commit"):
        simulator.inject(qbo.realm, fault, path_contains="/payment?", seconds=6)

    counts = _push_now(qbo)

    pushed = counts.extra["discounts_pushed"]
    assert (pushed, counts.failed, counts.conflicts) == (1, 0, 0), counts.errors
    _assert_closed_once(qbo, invoice_id, item)
    for path in ("/creditmemo", "/payment"):
        sent = _posts(qbo, path)
        # every attempt with one requestid: the last got the answer of the one QBO committed
        assert len(sent) >= 4 and len({r["requestid"] for r in sent}) == 1, sent

    # the pull reads the credit as a credit: the invoice stays paid with the customer's money,
    # its discount as it was, and the application is no payment of money
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")
    assert [(r[0], r[1]) for r in _discounts(qbo, invoice_id)] == [
        (D("19.00"), D("23.80")),
        (D("7.00"), D("10.70")),
    ]
    assert [(day, amount) for _, day, amount in _money_rows(qbo, invoice_id)] == [
        (LAST_DAY, D("1690.50"))
    ]

    # nothing new on the next runs: not one write
    writes = len(_writes(qbo))
    again = _push_now(qbo)
    _pull(qbo)
    assert (again.extra["discounts_pushed"], again.conflicts) == (0, 0)
    assert len(_writes(qbo)) == writes
    _assert_closed_once(qbo, invoice_id, item)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")


def test_a_discount_not_settled_pushes_nothing(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Pünktlich und Spät GmbH")
    hour = qbo.add_item("HOUR", "500.00")
    late = qbo.add_invoice("RE-2026-0790", customer, [(hour, "2", "500.00")], due=DUE)
    partly = qbo.add_invoice("RE-2026-0791", customer, [(hour, "2", "500.00")], due=DUE)
    in_time = qbo.add_invoice("RE-2026-0792", customer, [(hour, "2", "500.00")], due=DUE)
    _discount_item(qbo)
    _push(qbo, documents)
    # 1190.00 each, 2 %: 1166.20 by 2026-11-12 earns 23.80; a day late, or part in time, not
    _pay(qbo, late, customer, "1166.20", date(2026, 11, 13))
    _pay(qbo, partly, customer, "1000.00", date(2026, 11, 5))
    _pay(qbo, in_time, customer, "1166.20", LAST_DAY)
    _pull(qbo)

    counts = _push_now(qbo)

    assert counts.extra["discounts_pushed"] == 1
    (memo,) = qbo.sim.records(qbo.realm, "CreditMemo")
    assert memo["DocNumber"] == "RE-2026-0792-SK" and D(str(memo["TotalAmt"])) == D("23.80")
    assert D(str(_invoice_in_qbo(qbo, in_time)["Balance"])) == 0
    # the others keep what is open, in QBO and here, and nothing waits to be pushed for them
    assert D(str(_invoice_in_qbo(qbo, late)["Balance"])) == D("23.80")
    assert D(str(_invoice_in_qbo(qbo, partly)["Balance"])) == D("190.00")
    assert _state(qbo, late) == (D("1166.20"), D("23.80"), "partially_paid")
    assert set(_queue(qbo, late)) == set(_queue(qbo, partly)) == {"create"}


def test_an_invoice_qbo_closed_already_gets_no_credit_and_owes_nothing(qbo, documents):
    """A person wrote the discount off in QBO (a credit memo of their own, applied) before our pull
    read the payment: nothing is pushed, and the discount is not taken off a second time here."""
    _offer(qbo)
    customer = qbo.add_customer("Schon Ausgebucht GmbH")
    hour = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0793", customer, [(hour, "2", "500.00")], due=DUE)
    item = _discount_item(qbo)
    _push(qbo, documents)
    _pay(qbo, invoice_id, customer, "1166.20", LAST_DAY)
    customer_qbo = qbo.mapping("customer", customer)["qbo_id"]
    theirs = qbo.sim.create_as_user(
        qbo.realm,
        "CreditMemo",
        {
            "CustomerRef": {"value": customer_qbo},
            "DocNumber": "SK-HAND-1",
            "Line": [
                {
                    "Amount": "23.80",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": item}},
                }
            ],
        },
    )
    invoice_qbo = qbo.mapping("invoice", invoice_id)["qbo_id"]
    qbo.sim.create_as_user(
        qbo.realm,
        "Payment",
        {
            "CustomerRef": {"value": customer_qbo},
            "TotalAmt": "0",
            "TxnDate": LAST_DAY.isoformat(),
            "Line": [
                {"Amount": "23.80", "LinkedTxn": [{"TxnId": invoice_qbo, "TxnType": "Invoice"}]},
                {
                    "Amount": "23.80",
                    "LinkedTxn": [{"TxnId": theirs["Id"], "TxnType": "CreditMemo"}],
                },
            ],
        },
    )
    _pull(qbo)
    _paid, due, status = _state(qbo, invoice_id)
    assert (due, status) == (D("0.00"), "paid")
    assert [r[1] for r in _discounts(qbo, invoice_id)] == [D("23.80")]

    counts = _push_now(qbo)

    assert counts.extra["discounts_pushed"] == 0
    assert [m["Id"] for m in qbo.sim.records(qbo.realm, "CreditMemo")] == [theirs["Id"]]
    assert _posts(qbo, "/creditmemo") == []
    row = _queue(qbo, invoice_id)["discount"]
    assert row["status"] == "pushed" and "nothing open in QuickBooks" in row["error_message"]
    assert D(str(_invoice_in_qbo(qbo, invoice_id)["Balance"])) == 0
    assert D(str(_in_qbo(qbo, "Customer", customer_qbo)["Balance"])) == 0


def test_a_discount_taken_back_after_its_credit_went_to_qbo_is_held_for_a_person(qbo, documents):
    _offer(qbo)
    customer = qbo.add_customer("Zurückgebucht GmbH")
    hour = qbo.add_item("HOUR", "500.00")
    invoice_id = qbo.add_invoice("RE-2026-0794", customer, [(hour, "2", "500.00")], due=DUE)
    _discount_item(qbo)
    _push(qbo, documents)
    payment = _pay(qbo, invoice_id, customer, "1166.20", LAST_DAY)
    _pull(qbo)
    _push_now(qbo)
    assert D(str(_invoice_in_qbo(qbo, invoice_id)["Balance"])) == 0
    # the customer's payment bounces: voided in QBO
    with qbo.client() as client:
        void_payment(client, qbo, payment["Id"])
    _pull(qbo)
    # here the whole invoice is due again: the credit in QBO is no payment of ours
    assert _state(qbo, invoice_id) == (D("0.00"), D("1190.00"), "open")
    assert _discounts(qbo, invoice_id) == []

    counts = _push_now(qbo)
    again = _push_now(qbo)

    assert (counts.conflicts, again.conflicts) == (1, 0)
    ((entity, local_id, status, reason),) = _conflicts(qbo)
    memo_id = qbo.mapping("credit_memo", invoice_id)["qbo_id"]
    assert (entity, local_id, status) == ("credit_memo", invoice_id, "open")
    assert f"credit memo {memo_id}" in reason and "RE-2026-0794" in reason
    assert len(qbo.sim.records(qbo.realm, "CreditMemo")) == 1  # nothing pushed on top


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_push_killed_while_qbo_holds_its_credit_memo_request_creates_it_once(
    db, simulator, documents
):
    qbo = connect(db, simulator, custom_txn_numbers=False)
    invoice_id, _customer, item = _settled_two_rate_invoice(qbo, documents)
    # QBO holds the CreditMemo request (600 s on its clock) while the process is killed
    simulator.inject(qbo.realm, "delay", path_contains="/creditmemo?", seconds=600)
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoice_pipelines_tests.quickbooks.push_worker",
            db.url,
            str(qbo.org_id),
            simulator.base_url,
            simulator.token_url,
            TOKEN_KEY,
            str(TIME_SCALE),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(
            lambda: not simulator.sim.pending_faults(qbo.realm) or worker.poll() is not None,
            60,
            "the push's CreditMemo request",
        )
        assert worker.poll() is None, worker.communicate()
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)
    assert worker.returncode == -signal.SIGKILL
    assert _queue(qbo, invoice_id)["discount"]["status"] == "sending"
    # QBO goes on with the request of the dead process and commits it
    simulator.advance(600)
    _wait_for(lambda: len(simulator.records(qbo.realm, "CreditMemo")) == 1, 30, "QBO's CreditMemo")

    # the next run holds the organization's lease: the row left `sending` is a dead run's; it
    # finds the CreditMemo in QBO, links it, and applies it
    with realm_lease(qbo.engine, qbo.org_id, "next-run"), qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client)

    assert (counts.extra["discounts_pushed"], counts.failed) == (1, 0), counts.errors
    _assert_closed_once(qbo, invoice_id, item)
    assert len(_posts(qbo, "/creditmemo")) == 1  # the dead process's only
    _pull(qbo)
    assert _state(qbo, invoice_id) == (D("1690.50"), D("0.00"), "paid")
