"""CreditMemo as QBO keeps it: lines, totals, RemainingCredit and Balance, SyncToken updates, the
faults for missing and unknown references, and applying it to an invoice the way QBO does: a
Payment of TotalAmt 0 with one line linked to the invoice and one linked to the credit memo.
Query, CDC, batch, requestid replay, webhooks and a restart see credit memos like the other
transactions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from invoice_pipelines_devtools.qbo_simulator import Limits, QboSimulator
from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import (
    Qbo,
    customer,
    fault_code,
    invoice_body,
    item,
)
from invoice_pipelines_tests.devtools.qbo_simulator.test_webhooks import Receiver

D = Decimal


def _memo_body(customer_id: str, item_id: str, qty: str, price: str, tax: str, **fields) -> dict:
    return {
        "CustomerRef": {"value": customer_id},
        "DocNumber": fields.pop("DocNumber", "GS-2026-000001"),
        "TxnDate": "2026-11-05",
        "Line": [
            {
                "Amount": str((D(qty) * D(price)).quantize(D("0.01"))),
                "DetailType": "SalesItemLineDetail",
                "Description": "one hour not worked",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_id},
                    "Qty": qty,
                    "UnitPrice": price,
                    "TaxCodeRef": {"value": "TAX"},
                },
            }
        ],
        "TxnTaxDetail": {"TotalTax": tax},
        **fields,
    }


def _invoice(qbo: Qbo, customer_id: str, item_id: str, net: str, tax: str, **fields) -> dict:
    body = invoice_body(customer_id, item_id, net, TxnTaxDetail={"TotalTax": tax}, **fields)
    return qbo.create("Invoice", body)


def _apply(customer_id: str, invoice_id: str, memo_id: str, amount: str, total="0") -> dict:
    """QBO's application of a credit memo: a payment whose lines link the invoice and the memo."""
    return {
        "CustomerRef": {"value": customer_id},
        "TotalAmt": total,
        "Line": [
            {"Amount": amount, "LinkedTxn": [{"TxnId": invoice_id, "TxnType": "Invoice"}]},
            {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]},
        ],
    }


def _balance(qbo: Qbo, entity: str, entity_id: str, field: str = "Balance") -> Decimal:
    return D(str(qbo.ok(qbo.get(f"{entity.lower()}/{entity_id}"))[entity][field]))


def test_a_credit_memo_is_totalled_like_an_invoice_and_credits_the_customer(qbo, sim):
    buyer = customer(qbo, "Gutschrift GmbH")
    hour = item(qbo, "Hour", "78.50")
    memo = qbo.create(
        "CreditMemo",
        _memo_body(
            buyer["Id"],
            hour["Id"],
            "1",
            "78.50",
            "14.92",
            PrivateNote="credit note GS-2026-000001 for invoice RE-2026-0600",
            CustomerMemo={"value": "Credit note GS-2026-000001 for invoice RE-2026-0600"},
        ),
    )
    assert (memo["Id"], memo["SyncToken"], memo["DocNumber"]) == ("1", "0", "GS-2026-000001")
    assert (D(str(memo["TotalAmt"])), D(str(memo["RemainingCredit"]))) == (D("93.42"), D("93.42"))
    assert D(str(memo["Balance"])) == D("93.42")
    assert memo["CustomerRef"] == {"value": buyer["Id"], "name": "Gutschrift GmbH"}
    assert memo["CustomerMemo"] == {"value": "Credit note GS-2026-000001 for invoice RE-2026-0600"}
    assert memo["Line"][0]["SalesItemLineDetail"]["TaxCodeRef"] == {"value": "TAX"}
    assert memo["Line"][-1]["DetailType"] == "SubTotalLineDetail"  # added by the server
    assert "DueDate" not in memo  # nothing is due on a credit
    assert memo["TxnDate"] == "2026-11-05"
    assert qbo.ok(qbo.get("creditmemo/1"))["CreditMemo"] == memo
    # the customer's balance counts the credit against what it owes
    assert _balance(qbo, "Customer", buyer["Id"]) == D("-93.42")

    # a client cannot set the amounts the server keeps
    sim.advance(60)
    sparse = qbo.create(
        "CreditMemo",
        {"Id": "1", "SyncToken": "0", "sparse": True, "PrivateNote": "edited", "TotalAmt": "1"},
    )
    assert sparse["SyncToken"] == "1" and sparse["PrivateNote"] == "edited"
    assert D(str(sparse["TotalAmt"])) == D("93.42") and sparse["Line"] == memo["Line"]
    stale = qbo.post(
        "creditmemo", {"Id": "1", "SyncToken": "0", "sparse": True, "PrivateNote": "x"}
    )
    assert fault_code(stale) == "5010"
    full = qbo.create(
        "CreditMemo",
        {"Id": "1", "SyncToken": "1", **_memo_body(buyer["Id"], hour["Id"], "2", "78.50", "29.83")},
    )
    assert "PrivateNote" not in full and "CustomerMemo" not in full  # a full update clears them
    assert D(str(full["TotalAmt"])) == D("186.83") == D(str(full["RemainingCredit"]))
    assert _balance(qbo, "Customer", buyer["Id"]) == D("-186.83")


def test_missing_and_unknown_references_get_the_faults_qbo_gives(qbo):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    body = _memo_body(buyer["Id"], hour["Id"], "1", "100.00", "19.00")

    no_customer = qbo.post("creditmemo", {k: v for k, v in body.items() if k != "CustomerRef"})
    assert (no_customer.status_code, fault_code(no_customer)) == (400, "2020")
    assert "CustomerRef" in loads(no_customer.content)["Fault"]["Error"][0]["Detail"]
    unknown_customer = qbo.post("creditmemo", {**body, "CustomerRef": {"value": "99"}})
    assert fault_code(unknown_customer) == "2500"
    line = body["Line"][0]
    unknown_item = dict(
        line, SalesItemLineDetail={**line["SalesItemLineDetail"], "ItemRef": {"value": "42"}}
    )
    assert fault_code(qbo.post("creditmemo", {**body, "Line": [unknown_item]})) == "2500"
    unknown_tax = dict(
        line, SalesItemLineDetail={**line["SalesItemLineDetail"], "TaxCodeRef": {"value": "VAT"}}
    )
    assert fault_code(qbo.post("creditmemo", {**body, "Line": [unknown_tax]})) == "2500"
    assert fault_code(qbo.post("creditmemo", {**body, "Line": []})) == "6000"
    qbo.create("CreditMemo", body)
    duplicate = qbo.post("creditmemo", body)
    assert fault_code(duplicate) == "6140"
    assert (
        "TxnType=CreditMemo with TxnId=1" in loads(duplicate.content)["Fault"]["Error"][0]["Detail"]
    )
    assert len(qbo.sim.records(qbo.realm, "CreditMemo")) == 1


def test_a_zero_payment_applies_the_credit_to_the_invoice_in_full_or_in_part(qbo):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    invoice = _invoice(qbo, buyer["Id"], hour["Id"], "200.00", "38.00")  # 238.00
    memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "100.00", "19.00"))

    part = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "19.00"))
    assert (D(str(part["TotalAmt"])), D(str(part["UnappliedAmt"]))) == (0, 0)
    assert _balance(qbo, "Invoice", invoice["Id"]) == D("219.00")
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == D("100.00")
    rest = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "100.00"))

    stored_invoice = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]
    stored_memo = qbo.ok(qbo.get(f"creditmemo/{memo['Id']}"))["CreditMemo"]
    assert D(str(stored_invoice["Balance"])) == D("119.00")
    assert D(str(stored_invoice["TotalAmt"])) == D("238.00")  # the invoice itself is unchanged
    assert (D(str(stored_memo["RemainingCredit"])), D(str(stored_memo["Balance"]))) == (0, 0)
    # the zero payments link the two: each side names the payments, not each other
    links = [
        {"TxnId": part["Id"], "TxnType": "Payment"},
        {"TxnId": rest["Id"], "TxnType": "Payment"},
    ]
    assert stored_invoice["LinkedTxn"] == links
    assert stored_memo["LinkedTxn"] == links
    assert stored_invoice["SyncToken"] == "2" and stored_memo["SyncToken"] == "2"
    # what the customer owes: the invoice's balance, the credit used up
    assert _balance(qbo, "Customer", buyer["Id"]) == D("119.00")


def test_money_and_credit_in_one_payment_settle_the_invoice(qbo):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    invoice = _invoice(qbo, buyer["Id"], hour["Id"], "100.00", "19.00")  # 119.00
    memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "25.21", "4.79"))
    payment = qbo.create(
        "Payment",
        {
            "CustomerRef": {"value": buyer["Id"]},
            "TotalAmt": "89.00",
            "Line": [
                {"Amount": "119.00", "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]},
                {"Amount": "30.00", "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]},
            ],
        },
    )
    assert D(str(payment["UnappliedAmt"])) == 0
    assert _balance(qbo, "Invoice", invoice["Id"]) == 0
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == 0
    assert _balance(qbo, "Customer", buyer["Id"]) == 0


def test_a_credit_cannot_be_applied_beyond_what_either_side_has(qbo):
    buyer = customer(qbo, "Acme")
    other = customer(qbo, "Other")
    hour = item(qbo, "Hour")
    invoice = _invoice(qbo, buyer["Id"], hour["Id"], "50.00", "9.50")  # 59.50
    memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "40.00", "7.60"))
    foreign = qbo.create(
        "CreditMemo",
        _memo_body(other["Id"], hour["Id"], "1", "10.00", "1.90", DocNumber="GS-2026-000002"),
    )

    more_than_the_credit = _apply(buyer["Id"], invoice["Id"], memo["Id"], "47.61")
    assert fault_code(qbo.post("payment", more_than_the_credit)) == "6000"
    small = qbo.create("Invoice", invoice_body(buyer["Id"], hour["Id"], "10.00", DocNumber="RE-2"))
    more_than_the_invoice = _apply(buyer["Id"], small["Id"], memo["Id"], "47.60")
    assert fault_code(qbo.post("payment", more_than_the_invoice)) == "6000"
    assert (
        fault_code(qbo.post("payment", _apply(buyer["Id"], invoice["Id"], foreign["Id"], "1")))
        == "6000"
    )
    assert fault_code(qbo.post("payment", _apply(buyer["Id"], invoice["Id"], "77", "1"))) == "2500"
    credit_alone = {
        "CustomerRef": {"value": buyer["Id"]},
        "TotalAmt": "0",
        "Line": [{"Amount": "5", "LinkedTxn": [{"TxnId": memo["Id"], "TxnType": "CreditMemo"}]}],
    }
    assert fault_code(qbo.post("payment", credit_alone)) == "6000"
    # nothing of it happened
    assert _balance(qbo, "Invoice", invoice["Id"]) == D("59.50")
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == D("47.60")
    assert qbo.sim.records(qbo.realm, "Payment") == []


def test_deleting_or_voiding_the_application_or_the_credit_memo_reopens_the_invoice(qbo, sim):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    invoice = _invoice(qbo, buyer["Id"], hour["Id"], "100.00", "19.00")
    memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "50.00", "9.50"))

    first = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "59.50"))
    qbo.ok(
        qbo.post("payment", {"Id": first["Id"], "SyncToken": "0"}, params={"operation": "delete"})
    )
    assert _balance(qbo, "Invoice", invoice["Id"]) == D("119.00")
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == D("59.50")
    assert qbo.ok(qbo.get(f"creditmemo/{memo['Id']}"))["CreditMemo"]["LinkedTxn"] == []

    second = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "59.50"))
    voided = qbo.ok(
        qbo.post(
            "payment",
            {"Id": second["Id"], "SyncToken": "0", "sparse": True},
            params={"operation": "update", "include": "void"},
        )
    )["Payment"]
    assert D(str(voided["TotalAmt"])) == 0
    assert _balance(qbo, "Invoice", invoice["Id"]) == D("119.00")
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == D("59.50")

    third = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "20.00"))
    token = qbo.ok(qbo.get(f"creditmemo/{memo['Id']}"))["CreditMemo"]["SyncToken"]
    deleted = qbo.post(
        "creditmemo", {"Id": memo["Id"], "SyncToken": token}, params={"operation": "delete"}
    )
    assert qbo.ok(deleted)["CreditMemo"]["status"] == "Deleted"
    assert sim.deleted(qbo.realm, "CreditMemo") == [memo["Id"]]
    # what the credit paid is open on the invoice again; the zero payment keeps nothing
    assert _balance(qbo, "Invoice", invoice["Id"]) == D("119.00")
    payment = qbo.ok(qbo.get(f"payment/{third['Id']}"))["Payment"]
    assert payment["Line"] == [] and D(str(payment["UnappliedAmt"])) == 0
    assert _balance(qbo, "Customer", buyer["Id"]) == D("119.00")


def test_deleting_the_invoice_gives_the_credit_back_to_the_credit_memo(qbo):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    invoice = _invoice(qbo, buyer["Id"], hour["Id"], "100.00", "19.00")
    memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "50.00", "9.50"))
    application = qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "59.50"))
    token = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]["SyncToken"]
    qbo.ok(
        qbo.post(
            "invoice", {"Id": invoice["Id"], "SyncToken": token}, params={"operation": "delete"}
        )
    )
    assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == D("59.50")
    payment = qbo.ok(qbo.get(f"payment/{application['Id']}"))["Payment"]
    assert payment["Line"] == [] and D(str(payment["UnappliedAmt"])) == 0
    assert _balance(qbo, "Customer", buyer["Id"]) == D("-59.50")


def test_query_cdc_batch_requestid_and_webhooks_know_credit_memos(qbo, sim):
    buyer = customer(qbo, "Acme")
    hour = item(qbo, "Hour")
    sim.advance(600)
    since = sim.now()
    with Receiver() as hook:
        sim.configure_webhook(qbo.realm, hook.url, "verifier-1")
        body = _memo_body(buyer["Id"], hour["Id"], "1", "100.00", "19.00")
        first = qbo.post("creditmemo", body, params={"requestid": "ip-1-si-7-credit"})
        again = qbo.post("creditmemo", body, params={"requestid": "ip-1-si-7-credit"})
        assert again.content == first.content and again.headers["X-Simulator-Replay"] == "true"
        answers = qbo.ok(
            qbo.post(
                "batch",
                {
                    "BatchItemRequest": [
                        {
                            "bId": "1",
                            "operation": "create",
                            "CreditMemo": _memo_body(
                                buyer["Id"], hour["Id"], "2", "10.00", "3.80", DocNumber="GS-2"
                            ),
                        },
                        {"bId": "2", "Query": "select * from CreditMemo where DocNumber = 'GS-2'"},
                        {
                            "bId": "3",
                            "operation": "delete",
                            "CreditMemo": {"Id": "1", "SyncToken": "0"},
                        },
                    ]
                },
            )
        )["BatchItemResponse"]
        assert D(str(answers[0]["CreditMemo"]["TotalAmt"])) == D("23.80")
        assert answers[1]["QueryResponse"] == {}  # a batch item does not see an earlier one's
        assert answers[2]["CreditMemo"]["status"] == "Deleted"
        found = qbo.query("SELECT * FROM CreditMemo WHERE DocNumber = 'GS-2'")["CreditMemo"]
        assert [m["Id"] for m in found] == ["2"]
        deliveries = sim.webhook_deliveries(qbo.realm, wait=30)
        events = [json.loads(body)[0]["type"] for _, body in hook.received]
    assert [d["status"] for d in deliveries] == [200, 200, 200]
    assert events == [
        "qbo.creditmemo.created.v1",
        "qbo.creditmemo.created.v1",
        "qbo.creditmemo.deleted.v1",
    ]
    stamp = datetime.fromtimestamp(since, UTC).isoformat()
    cdc = qbo.ok(qbo.get("cdc", params={"entities": "CreditMemo", "changedSince": stamp}))
    changed = cdc["CDCResponse"][0]["QueryResponse"][0]["CreditMemo"]
    assert [(m["Id"], m.get("status")) for m in changed] == [("1", "Deleted"), ("2", None)]


def test_credit_memos_and_their_applications_survive_a_restart(tmp_path):
    with QboSimulator(data_dir=tmp_path, limits=Limits(enabled=False)) as first:
        company = first.create_company(realm_id="556")
        qbo = Qbo(first, company)
        buyer = customer(qbo, "Acme")
        hour = item(qbo, "Hour")
        invoice = _invoice(qbo, buyer["Id"], hour["Id"], "100.00", "19.00")
        memo = qbo.create("CreditMemo", _memo_body(buyer["Id"], hour["Id"], "1", "10.00", "1.90"))
        qbo.create("Payment", _apply(buyer["Id"], invoice["Id"], memo["Id"], "11.90"))
        qbo.close()
    with QboSimulator(data_dir=tmp_path, limits=Limits(enabled=False)) as second:
        qbo = Qbo(second, company)
        assert _balance(qbo, "Invoice", invoice["Id"]) == D("107.10")
        assert _balance(qbo, "CreditMemo", memo["Id"], "RemainingCredit") == 0
        duplicate = qbo.post("creditmemo", _memo_body(buyer["Id"], hour["Id"], "1", "1", "0"))
        assert fault_code(duplicate) == "6140"  # its DocNumber is still known
        qbo.close()
