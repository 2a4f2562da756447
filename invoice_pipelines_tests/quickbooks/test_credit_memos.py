"""Credit notes pushed to the simulator as CreditMemos and applied to their invoices, through the
production client over HTTP, on SQLite and PostgreSQL: full and partial credits, the payment pull
not counting an applied credit twice, replays and dead runs creating nothing twice, a credit note
waiting for its invoice, and one credit note's fault not stopping the others."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import delete, select, update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import (
    dunning_notices,
    qbo_mappings,
    qbo_push_queue,
    sync_conflicts,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.quickbooks.domain.sync.common import read_cursor, realm_lease
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.domain.sync.payments import pull_payments
from invoice_pipelines.quickbooks.domain.webhooks import parse_notices, request_pulls
from invoice_pipelines_tests.quickbooks.conftest import connect

D = Decimal
CREDITED_ON = date(2026, 11, 5)


def _credit(qbo, number: str, lines: dict[int, str] | None = None, reason="one hour not worked"):
    return issue_credit_note(
        qbo.engine,
        find_organization(qbo.engine, qbo.org_id),
        number,
        reason=reason,
        lines=None if lines is None else {n: D(q) for n, q in lines.items()},
        issue_date=CREDITED_ON,
    )


def _synced_shop(qbo, *names: str):
    """Customers (one per name) and an hour item, synced to QBO."""
    customers = [
        qbo.add_customer(name, email=f"ap{n}@credit.example") for n, name in enumerate(names)
    ]
    item = qbo.add_item("HOUR", "78.50")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    return customers, item


def _push(qbo):
    with qbo.client() as client:
        return push_invoices(qbo.engine, qbo.organization, client)


def _pull(qbo):
    with qbo.client() as client:
        return pull_payments(qbo.engine, qbo.organization, client)


def _in_qbo(qbo, entity: str, local_id: int) -> dict:
    """The QBO record our row is mapped to, as the simulator holds it now."""
    qbo_id = qbo.mapping(entity, local_id)["qbo_id"]
    name = {"invoice": "Invoice", "credit_memo": "CreditMemo"}[entity]
    return next(r for r in qbo.sim.records(qbo.realm, name) if r["Id"] == qbo_id)


def _queue(qbo) -> dict[tuple[int, str], dict]:
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        rows = conn.execute(
            select(qbo_push_queue).where(qbo_push_queue.c.organization_id == qbo.org_id)
        ).mappings()
        return {(r["sales_invoice_id"], r["action"]): dict(r) for r in rows}


def _pay(qbo, invoice_id: int, customer_id: int, amount: str, day: str = "2026-11-10") -> dict:
    return qbo.sim.create_as_user(
        qbo.realm,
        "Payment",
        {
            "CustomerRef": {"value": qbo.mapping("customer", customer_id)["qbo_id"]},
            "TotalAmt": amount,
            "TxnDate": day,
            "Line": [
                {
                    "Amount": amount,
                    "LinkedTxn": [
                        {
                            "TxnId": qbo.mapping("invoice", invoice_id)["qbo_id"],
                            "TxnType": "Invoice",
                        }
                    ],
                }
            ],
        },
    )


def _amounts(qbo, invoice_id: int) -> tuple:
    row = qbo.invoice(invoice_id)
    return row["amount_paid"], row["amount_due"], row["status"]


def test_full_and_partial_credit_notes_become_credit_memos_applied_to_their_invoices(qbo):
    (buyer,), hour = _synced_shop(qbo, "Gutschrift GmbH")
    partly = qbo.add_invoice("RE-2026-0700", buyer, [(hour, "2", "78.50")])  # 186.83
    wholly = qbo.add_invoice("RE-2026-0701", buyer, [(hour, "1", "78.50")])  # 93.42
    _push(qbo)
    part = _credit(qbo, "RE-2026-0700", {1: "1"})  # 93.42
    whole = _credit(qbo, "RE-2026-0701", reason="order cancelled")  # 93.42

    counts = _push(qbo)

    assert (counts.pushed, counts.extra["credit_memos_pushed"], counts.failed) == (0, 2, 0)
    memo = _in_qbo(qbo, "credit_memo", part.id)
    assert memo["DocNumber"] == part.number
    assert memo["TxnDate"] == "2026-11-05"
    assert memo["CustomerRef"]["value"] == qbo.mapping("customer", buyer)["qbo_id"]
    assert D(str(memo["TotalAmt"])) == part.gross_total == D("93.42")
    line = memo["Line"][0]
    assert (D(str(line["Amount"])), line["SalesItemLineDetail"]["Qty"]) == (D("78.50"), D(1))
    assert line["SalesItemLineDetail"]["ItemRef"]["value"] == qbo.mapping("item", hour)["qbo_id"]
    assert line["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "TAX"}
    assert memo["CustomerMemo"]["value"] == (
        f"Credit note {part.number} for invoice RE-2026-0700: one hour not worked"
    )
    assert "RE-2026-0700" in memo["PrivateNote"]
    # applied: the invoices' balances in QBO fell by the credits, nothing is left on the memos
    assert D(str(_in_qbo(qbo, "invoice", partly)["Balance"])) == D("93.41")
    assert D(str(_in_qbo(qbo, "invoice", wholly)["Balance"])) == 0
    assert D(str(memo["RemainingCredit"])) == 0
    assert D(str(_in_qbo(qbo, "credit_memo", whole.id)["RemainingCredit"])) == 0
    applications = qbo.sim.records(qbo.realm, "Payment")
    assert sorted(D(str(p["TotalAmt"])) for p in applications) == [0, 0]  # no money moved
    assert {row["status"] for row in _queue(qbo).values()} == {"pushed"}
    # nothing more to do on the next run
    again = _push(qbo)
    assert again.extra["credit_memos_pushed"] == 0
    assert len(qbo.sim.records(qbo.realm, "CreditMemo")) == 2

    # the customer pays the rest of the partly credited invoice; the pull reads both invoices
    _pay(qbo, partly, buyer, "93.41")
    _pull(qbo)
    assert _amounts(qbo, partly) == (D("93.41"), D("0.00"), "paid")
    # the credit is no payment: nothing was paid on the fully credited invoice, nothing is due
    assert _amounts(qbo, wholly) == (D("0.00"), D("0.00"), "open")
    assert qbo.invoice(wholly)["last_payment_date"] is None
    # and dunning leaves both alone
    run_overdue(qbo.engine, find_organization(qbo.engine, qbo.org["slug"]), on=date(2027, 3, 1))
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        notices = conn.execute(
            select(dunning_notices.c.sales_invoice_id).where(
                dunning_notices.c.organization_id == qbo.org_id
            )
        ).all()
    assert notices == []


def test_the_pull_subtracts_a_credit_note_once_whether_or_not_qbo_has_it(qbo):
    (buyer,), hour = _synced_shop(qbo, "Zweimal GmbH")
    # 2 x 78.50 + 1 x 100.00 = 257.00 net, 48.83 VAT, 305.83
    invoice = qbo.add_invoice("RE-2026-0710", buyer, [(hour, "2", "78.50"), (hour, "1", "100.00")])
    _push(qbo)
    first = _credit(qbo, "RE-2026-0710", {1: "1"})  # 93.42, pushed and applied in QBO
    _push(qbo)
    _pay(qbo, invoice, buyer, "50.00")
    second = _credit(qbo, "RE-2026-0710", {2: "1"})  # 119.00, not in QBO yet
    assert (first.gross_total, second.gross_total) == (D("93.42"), D("119.00"))
    assert D(str(_in_qbo(qbo, "invoice", invoice)["Balance"])) == D("162.41")

    _pull(qbo)
    # paid 50.00; due 305.83 - 50.00 - 93.42 - 119.00: the applied credit is not paid money and
    # is taken off once (QBO's Balance has it), the other one is taken off by us
    assert _amounts(qbo, invoice) == (D("50.00"), D("43.41"), "partially_paid")

    _push(qbo)  # the second credit note reaches QBO and is applied too
    assert D(str(_in_qbo(qbo, "invoice", invoice)["Balance"])) == D("43.41")
    _pull(qbo)
    assert _amounts(qbo, invoice) == (D("50.00"), D("43.41"), "partially_paid")
    assert qbo.invoice(invoice)["last_payment_date"] == date(2026, 11, 10)


def test_a_credit_note_of_an_invoice_paid_in_qbo_stays_as_the_customers_credit(qbo):
    (buyer,), hour = _synced_shop(qbo, "Bezahlt GmbH")
    invoice = qbo.add_invoice("RE-2026-0720", buyer, [(hour, "2", "78.50")])  # 186.83
    _push(qbo)
    _pay(qbo, invoice, buyer, "186.83")
    note = _credit(qbo, "RE-2026-0720", {1: "1"})

    counts = _push(qbo)

    assert (counts.extra["credit_memos_pushed"], counts.failed) == (1, 0)
    memo = _in_qbo(qbo, "credit_memo", note.id)
    assert D(str(memo["RemainingCredit"])) == D("93.42")  # QBO keeps it for the customer
    apply_row = _queue(qbo)[(note.id, "apply")]
    assert apply_row["status"] == "pushed" and "nothing applied" in apply_row["error_message"]
    _pull(qbo)
    # paid in full, then credited: we owe the customer the credit
    assert _amounts(qbo, invoice) == (D("186.83"), D("-93.42"), "paid")


def test_answers_lost_after_qbo_committed_create_nothing_twice(db, simulator):
    # without DocNumber checks in QBO only the requestid stands between a retry and a duplicate
    qbo = connect(db, simulator, custom_txn_numbers=False)
    (buyer,), hour = _synced_shop(qbo, "Verloren GmbH")
    invoice = qbo.add_invoice("RE-2026-0730", buyer, [(hour, "2", "78.50")])
    _push(qbo)
    note = _credit(qbo, "RE-2026-0730", {1: "1"})
    simulator.inject(qbo.realm, "drop_after_commit", count=1, path_contains="/creditmemo")
    simulator.inject(qbo.realm, "drop_after_commit", count=1, path_contains="/payment")

    counts = _push(qbo)

    assert counts.extra["credit_memos_pushed"] == 1
    assert len(simulator.records(qbo.realm, "CreditMemo")) == 1
    assert len(simulator.records(qbo.realm, "Payment")) == 1
    assert D(str(_in_qbo(qbo, "invoice", invoice)["Balance"])) == D("93.41")
    for path in ("/creditmemo", "/payment"):
        sent = [
            r
            for r in simulator.requests(qbo.realm)
            if r["path"].endswith(path) and r["method"] == "POST"
        ]
        # sent twice with one requestid: the second got the first's answer
        assert len(sent) == 2 and sent[0]["requestid"] == sent[1]["requestid"]
    assert (
        qbo.mapping("credit_memo", note.id)["qbo_id"] == _in_qbo(qbo, "credit_memo", note.id)["Id"]
    )


def test_credit_notes_left_sending_by_a_dead_run_are_found_in_qbo_not_sent_again(db, simulator):
    qbo = connect(db, simulator, custom_txn_numbers=False)
    (buyer,), hour = _synced_shop(qbo, "Abgestürzt GmbH")
    invoice = qbo.add_invoice("RE-2026-0740", buyer, [(hour, "2", "78.50")])
    other = qbo.add_invoice("RE-2026-0741", buyer, [(hour, "2", "78.50")])
    _push(qbo)
    created = _credit(qbo, "RE-2026-0740", {1: "1"})
    applied = _credit(qbo, "RE-2026-0741", {1: "1"})
    _push(qbo)
    # what a run leaves when it dies after QBO answered, before it recorded the answers: the
    # first credit note's CreditMemo made but not mapped, the second one's application made
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        conn.execute(
            delete(qbo_mappings).where(
                qbo_mappings.c.entity == "credit_memo", qbo_mappings.c.local_id == created.id
            )
        )
        conn.execute(
            delete(qbo_push_queue).where(
                qbo_push_queue.c.sales_invoice_id == created.id, qbo_push_queue.c.action == "apply"
            )
        )
        for local_id, action in ((created.id, "credit"), (applied.id, "apply")):
            conn.execute(
                update(qbo_push_queue)
                .where(
                    qbo_push_queue.c.sales_invoice_id == local_id,
                    qbo_push_queue.c.action == action,
                )
                .values(status="sending", qbo_id=None)
            )
    writes_before = len([r for r in simulator.requests(qbo.realm) if r["method"] == "POST"])

    # the next run holds the organization's lease, as production runs do: rows left `sending`
    # are a dead run's whatever their age
    with realm_lease(qbo.engine, qbo.org_id, "next-run"), qbo.client() as client:
        push_invoices(qbo.engine, qbo.organization, client)

    assert len(simulator.records(qbo.realm, "CreditMemo")) == 2
    assert len(simulator.records(qbo.realm, "Payment")) == 2
    posts = [r for r in simulator.requests(qbo.realm) if r["method"] == "POST"]
    assert all(
        "creditmemo" not in r["path"] and "payment" not in r["path"] for r in posts[writes_before:]
    )
    assert qbo.mapping("credit_memo", created.id) is not None
    assert {row["status"] for row in _queue(qbo).values()} == {"pushed"}
    for local in (invoice, other):
        assert D(str(_in_qbo(qbo, "invoice", local)["Balance"])) == D("93.41")


def test_a_credit_note_waits_for_its_invoice_and_follows_it(qbo):
    _, hour = _synced_shop(qbo, "Früh GmbH")
    late = qbo.add_customer("Spät AG")  # not synced yet: its invoice cannot be pushed
    invoice = qbo.add_invoice("RE-2026-0750", late, [(hour, "2", "78.50")])
    note = _credit(qbo, "RE-2026-0750", {1: "1"})

    counts = _push(qbo)

    assert (counts.held, counts.pushed, counts.extra["credit_memos_pushed"]) == (1, 0, 0)
    row = _queue(qbo)[(note.id, "credit")]
    assert row["status"] == "failed"
    assert row["error_message"] == "waits for invoice RE-2026-0750 to reach QuickBooks"
    assert qbo.sim.records(qbo.realm, "CreditMemo") == []

    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
    counts = _push(qbo)

    # the invoice, then its credit note
    assert (counts.pushed, counts.extra["credit_memos_pushed"], counts.held) == (1, 1, 0)
    assert D(str(_in_qbo(qbo, "invoice", invoice)["Balance"])) == D("93.41")
    assert _queue(qbo)[(note.id, "apply")]["status"] == "pushed"


def test_one_credit_note_failing_in_qbo_does_not_stop_the_others(qbo):
    (kept, dropped), hour = _synced_shop(qbo, "Bleibt GmbH", "Geht AG")
    good = qbo.add_invoice("RE-2026-0760", kept, [(hour, "2", "78.50")])
    qbo.add_invoice("RE-2026-0761", dropped, [(hour, "2", "78.50")])
    _push(qbo)
    bad_note = _credit(qbo, "RE-2026-0761", {1: "1"})
    good_note = _credit(qbo, "RE-2026-0760", {1: "1"})
    # someone made the second customer inactive in QBO: QBO refuses a credit memo for it
    qbo.sim.edit_as_user(
        qbo.realm, "Customer", qbo.mapping("customer", dropped)["qbo_id"], {"Active": False}
    )

    counts = _push(qbo)

    assert (counts.extra["credit_memos_pushed"], counts.failed) == (1, 1)
    row = _queue(qbo)[(bad_note.id, "credit")]
    assert (row["status"], row["error_code"]) == ("failed", "610")
    assert "Object Not Found" in row["error_message"]
    assert any(bad_note.number in e for e in counts.errors)
    assert qbo.mapping("credit_memo", bad_note.id) is None
    assert D(str(_in_qbo(qbo, "invoice", good)["Balance"])) == D("93.41")
    assert _queue(qbo)[(good_note.id, "apply")]["status"] == "pushed"


def test_an_existing_credit_memo_number_is_linked_when_it_is_ours_and_a_conflict_otherwise(qbo):
    (buyer,), hour = _synced_shop(qbo, "Doppelt GmbH")
    qbo.add_invoice("RE-2026-0770", buyer, [(hour, "2", "78.50")])
    qbo.add_invoice("RE-2026-0771", buyer, [(hour, "2", "78.50")])
    _push(qbo)
    ours = _credit(qbo, "RE-2026-0770", {1: "1"})
    theirs = _credit(qbo, "RE-2026-0771", {1: "1"})
    customer_qbo = qbo.mapping("customer", buyer)["qbo_id"]
    item_qbo = qbo.mapping("item", hour)["qbo_id"]

    def typed_in_qbo(number: str, price: str, tax: str) -> dict:
        return qbo.sim.create_as_user(
            qbo.realm,
            "CreditMemo",
            {
                "CustomerRef": {"value": customer_qbo},
                "DocNumber": number,
                "Line": [
                    {
                        "Amount": price,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {"ItemRef": {"value": item_qbo}},
                    }
                ],
                "TxnTaxDetail": {"TotalTax": tax},
            },
        )

    same = typed_in_qbo(ours.number, "78.50", "14.92")  # the same credit, typed in by hand
    typed_in_qbo(theirs.number, "10.00", "0")  # another credit under our number

    counts = _push(qbo)

    assert (counts.linked, counts.conflicts) == (1, 1)
    assert qbo.mapping("credit_memo", ours.id)["qbo_id"] == same["Id"]
    assert _queue(qbo)[(theirs.id, "credit")]["status"] == "conflict"
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        held = conn.execute(
            select(sync_conflicts.c.entity, sync_conflicts.c.local_id).where(
                sync_conflicts.c.organization_id == qbo.org_id
            )
        ).all()
    assert held == [("credit_memo", theirs.id)]
    assert len(qbo.sim.records(qbo.realm, "CreditMemo")) == 2
    assert D(str(_in_qbo(qbo, "credit_memo", ours.id)["RemainingCredit"])) == 0  # applied


def test_a_credit_memo_deleted_in_qbo_asks_for_the_payment_pull_and_keeps_our_credit(qbo):
    (buyer,), hour = _synced_shop(qbo, "Gelöscht GmbH")
    invoice = qbo.add_invoice("RE-2026-0780", buyer, [(hour, "2", "78.50")])  # 186.83
    _push(qbo)
    note = _credit(qbo, "RE-2026-0780", {1: "1"})
    _push(qbo)
    memo = _in_qbo(qbo, "credit_memo", note.id)
    # a QBO user deletes the CreditMemo: QBO opens the invoice again, Intuit notifies us
    with qbo.client() as client:
        client.request(
            "POST",
            "creditmemo",
            params={"operation": "delete"},
            body={"Id": memo["Id"], "SyncToken": memo["SyncToken"]},
        )
    notice = (
        b'{"eventNotifications":[{"realmId":"%s","dataChangeEvent":{"entities":['
        b'{"name":"CreditMemo","id":"%s","operation":"Delete","lastUpdated":"2026-11-23T01:00:00Z"}]}}]}'
        % (qbo.realm.encode(), memo["Id"].encode())
    )
    assert request_pulls(qbo.engine, qbo.db.system_engine, parse_notices(notice)) == {
        qbo.org_id: {"payment"}
    }
    assert read_cursor(qbo.engine, qbo.org_id, "payment")["pull_requested_at"] is not None

    _pull(qbo)
    # QBO no longer has the credit; our credit note still credits the invoice, once
    assert D(str(_in_qbo(qbo, "invoice", invoice)["Balance"])) == D("186.83")
    assert _amounts(qbo, invoice) == (D("0.00"), D("93.41"), "open")
