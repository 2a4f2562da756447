"""Entities as QBO keeps them: ids and SyncTokens, sparse and full updates, stale objects, unique
names and document numbers, references, void and delete, payments applied to invoices, requestid
replay, minorversion, timestamps with the company's offset."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from invoice_pipelines_devtools.qbo_simulator.wire import loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import (
    Qbo,
    customer,
    fault_code,
    invoice_body,
    item,
)


def test_create_read_and_sparse_update_move_the_sync_token_and_keep_other_fields(qbo, sim):
    created = customer(qbo, "Müller GmbH", PrimaryEmailAddr={"Address": "a@mueller.example"})
    assert (created["Id"], created["SyncToken"], created["Active"]) == ("1", "0", True)
    assert created["MetaData"]["CreateTime"].endswith("-07:00")  # company-local, with offset

    sim.advance(90)
    updated = qbo.create(
        "Customer",
        {"Id": "1", "SyncToken": "0", "sparse": True, "CompanyName": "Müller"},
    )
    assert updated["SyncToken"] == "1"
    assert updated["PrimaryEmailAddr"] == {"Address": "a@mueller.example"}  # sparse kept it
    before = datetime.fromisoformat(created["MetaData"]["LastUpdatedTime"])
    after = datetime.fromisoformat(updated["MetaData"]["LastUpdatedTime"])
    assert (after - before).total_seconds() == 90
    assert qbo.ok(qbo.get("customer/1"))["Customer"] == updated


def test_full_update_clears_fields_it_does_not_send(qbo):
    customer(qbo, "Acme", PrimaryEmailAddr={"Address": "x@acme.example"})
    updated = qbo.create("Customer", {"Id": "1", "SyncToken": "0", "DisplayName": "Acme Inc"})
    assert "PrimaryEmailAddr" not in updated
    assert updated["DisplayName"] == "Acme Inc"


def test_a_stale_sync_token_is_refused_with_5010_and_changes_nothing(qbo, sim):
    customer(qbo, "Acme")
    sim.edit_as_user(qbo.realm, "Customer", "1", {"CompanyName": "Edited in QBO"})
    response = qbo.post("customer", {"Id": "1", "SyncToken": "0", "sparse": True, "Notes": "x"})
    assert response.status_code == 400
    body = loads(response.content)
    assert body["Fault"]["type"] == "ValidationFault"
    assert body["Fault"]["Error"][0]["code"] == "5010"
    assert body["Fault"]["Error"][0]["Message"] == "Stale Object Error"
    assert "time" in body
    stored = sim.records(qbo.realm, "Customer")[0]
    assert stored["SyncToken"] == "1" and "Notes" not in stored


def test_duplicate_display_name_is_6240_also_against_an_inactive_customer(qbo, sim):
    customer(qbo, "Acme")
    assert fault_code(qbo.post("customer", {"DisplayName": "ACME"})) == "6240"
    qbo.create("Customer", {"Id": "1", "SyncToken": "0", "sparse": True, "Active": False})
    assert fault_code(qbo.post("customer", {"DisplayName": "Acme"})) == "6240"
    sim.configure(qbo.realm, inactive_names_conflict=False)
    assert customer(qbo, "Acme")["Id"] == "2"


def test_customers_and_items_cannot_be_deleted_only_deactivated(qbo):
    customer(qbo, "Acme")
    response = qbo.post("customer", {"Id": "1", "SyncToken": "0"}, params={"operation": "delete"})
    assert response.status_code == 400 and fault_code(response) == "500"
    inactive = qbo.create(
        "Customer", {"Id": "1", "SyncToken": "0", "sparse": True, "Active": False}
    )
    assert inactive["Active"] is False
    assert qbo.ok(qbo.get("customer/1"))["Customer"]["Active"] is False


def test_item_needs_a_unique_name_and_an_income_account(qbo):
    item(qbo, "Consulting")
    assert (
        fault_code(qbo.post("item", {"Name": "consulting", "IncomeAccountRef": {"value": "1"}}))
        == "6240"
    )
    missing = qbo.post("item", {"Name": "Training"})
    assert fault_code(missing) == "2020" and "IncomeAccountRef" in missing.text


def test_invoice_totals_lines_balance_due_date_and_exact_decimals(qbo):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    invoice = qbo.create(
        "Invoice",
        invoice_body("1", "1", "0.10", "0.20", DocNumber="RE-2026-0001", TxnDate="2026-03-01"),
    )
    assert invoice["TotalAmt"] == Decimal("0.30") and invoice["Balance"] == Decimal("0.30")
    assert [line["Id"] for line in invoice["Line"][:2]] == ["1", "2"]
    assert invoice["Line"][-1]["DetailType"] == "SubTotalLineDetail"
    assert invoice["Line"][-1]["Amount"] == Decimal("0.30")
    assert invoice["DueDate"] == "2026-03-31"
    assert invoice["DocNumber"] == "RE-2026-0001"
    assert invoice["LinkedTxn"] == []
    assert qbo.ok(qbo.get("customer/1"))["Customer"]["Balance"] == Decimal("0.30")


def test_amount_must_equal_quantity_times_unit_price(qbo):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    body = invoice_body("1", "1", "150.00")
    body["Line"][0]["SalesItemLineDetail"].update(Qty="1.5", UnitPrice="100")
    assert qbo.create("Invoice", body)["TotalAmt"] == Decimal("150.00")
    body["Line"][0]["Amount"] = "151.00"
    assert fault_code(qbo.post("invoice", body)) == "6070"


def test_duplicate_doc_number_is_6140_unless_allowed_or_auto_numbered(qbo, sim):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    qbo.create("Invoice", invoice_body("1", "1", "10.00", DocNumber="A-1"))
    response = qbo.post("invoice", invoice_body("1", "1", "10.00", DocNumber="A-1"))
    error = loads(response.content)["Fault"]["Error"][0]
    assert error["code"] == "6140"
    assert "DocNumber=A-1 is assigned to TxnType=Invoice with TxnId=1" in error["Detail"]
    allowed = qbo.post(
        "invoice",
        invoice_body("1", "1", "10.00", DocNumber="A-1"),
        params={"include": "allowduplicatedocnum"},
    )
    assert qbo.ok(allowed)["Invoice"]["DocNumber"] == "A-1"

    sim.configure(qbo.realm, custom_txn_numbers=False)
    prefs = qbo.ok(qbo.get("preferences"))["Preferences"]
    assert prefs["SalesFormsPrefs"]["CustomTxnNumbers"] is False
    auto = qbo.create("Invoice", invoice_body("1", "1", "10.00"))
    assert auto["DocNumber"] == "1001"


def test_references_to_missing_or_inactive_records_and_invoices_without_lines(qbo):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    assert fault_code(qbo.post("invoice", invoice_body("99", "1", "1.00"))) == "2500"
    assert fault_code(qbo.post("invoice", invoice_body("1", "42", "1.00"))) == "2500"
    qbo.create("Item", {"Id": "1", "SyncToken": "0", "sparse": True, "Active": False})
    assert fault_code(qbo.post("invoice", invoice_body("1", "1", "1.00"))) == "610"
    assert fault_code(qbo.post("invoice", {"CustomerRef": {"value": "1"}, "Line": []})) == "6000"
    assert fault_code(qbo.get("invoice/77")) == "610"
    assert qbo.query("select count(*) from Invoice") == {"totalCount": 0}


def _paid_invoice(qbo, total="100.00", paid="40.00"):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    invoice = qbo.create("Invoice", invoice_body("1", "1", total, DocNumber="P-1"))
    payment = qbo.create(
        "Payment",
        {
            "CustomerRef": {"value": "1"},
            "TotalAmt": paid,
            "TxnDate": "2026-03-05",
            "Line": [
                {"Amount": paid, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
            ],
        },
    )
    return invoice, payment


def test_a_payment_lowers_the_invoice_balance_and_links_itself(qbo):
    invoice, payment = _paid_invoice(qbo)
    assert payment["UnappliedAmt"] == Decimal("0")
    after = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]
    assert after["Balance"] == Decimal("60.00") and after["TotalAmt"] == Decimal("100.00")
    assert after["LinkedTxn"] == [{"TxnId": payment["Id"], "TxnType": "Payment"}]
    assert after["SyncToken"] == "1"
    assert qbo.ok(qbo.get("customer/1"))["Customer"]["Balance"] == Decimal("60.00")


def test_over_applying_a_payment_is_6000_and_leftover_money_is_unapplied(qbo):
    invoice, _ = _paid_invoice(qbo)
    too_much = {
        "CustomerRef": {"value": "1"},
        "TotalAmt": "100.00",
        "Line": [
            {"Amount": "60.01", "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}
        ],
    }
    assert fault_code(qbo.post("payment", too_much)) == "6000"
    too_much["Line"][0]["Amount"] = "60.00"
    rest = qbo.create("Payment", too_much)
    assert rest["UnappliedAmt"] == Decimal("40.00")
    assert qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]["Balance"] == Decimal("0.00")


def test_voiding_a_payment_gives_the_invoice_its_balance_back(qbo):
    invoice, payment = _paid_invoice(qbo)
    voided = qbo.ok(
        qbo.post(
            "payment",
            {"Id": payment["Id"], "SyncToken": payment["SyncToken"], "sparse": True},
            params={"operation": "update", "include": "void"},
        )
    )["Payment"]
    assert voided["TotalAmt"] == Decimal("0") and voided["PrivateNote"].startswith("Voided")
    after = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]
    assert after["Balance"] == Decimal("100.00") and after["LinkedTxn"] == []


def test_void_invoice_zeroes_amounts_and_keeps_the_record(qbo, sim):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    invoice = qbo.create("Invoice", invoice_body("1", "1", "80.00", PrivateNote="wrong rate"))
    stale = qbo.post("invoice", {"Id": "1", "SyncToken": "7"}, params={"operation": "void"})
    assert fault_code(stale) == "5010"
    voided = qbo.ok(
        qbo.post(
            "invoice", {"Id": "1", "SyncToken": invoice["SyncToken"]}, params={"operation": "void"}
        )
    )["Invoice"]
    assert voided["TotalAmt"] == Decimal("0") and voided["Balance"] == Decimal("0")
    assert all(line["Amount"] == Decimal("0") for line in voided["Line"])
    assert voided["PrivateNote"] == "Voided - wrong rate"
    assert voided["SyncToken"] == "1"
    assert len(sim.records(qbo.realm, "Invoice")) == 1
    assert qbo.ok(qbo.get("customer/1"))["Customer"]["Balance"] == Decimal("0")


def test_delete_removes_an_invoice_for_good(qbo, sim):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    qbo.create("Invoice", invoice_body("1", "1", "80.00"))
    deleted = qbo.ok(
        qbo.post("invoice", {"Id": "1", "SyncToken": "0"}, params={"operation": "delete"})
    )
    assert deleted["Invoice"] == {"status": "Deleted", "domain": "QBO", "Id": "1"}
    assert fault_code(qbo.get("invoice/1")) == "610"
    assert sim.records(qbo.realm, "Invoice") == [] and sim.deleted(qbo.realm, "Invoice") == ["1"]


def test_requestid_replay_answers_the_first_response_byte_for_byte_and_creates_nothing(qbo, sim):
    first = qbo.post("customer", {"DisplayName": "Acme"}, params={"requestid": "r-1"})
    sim.advance(5)
    again = qbo.post("customer", {"DisplayName": "Acme"}, params={"requestid": "r-1"})
    assert again.status_code == 200 and again.content == first.content
    # even a different body: the requestid decides
    third = qbo.post("customer", {"DisplayName": "Other"}, params={"requestid": "r-1"})
    assert third.content == first.content
    assert [c["DisplayName"] for c in sim.records(qbo.realm, "Customer")] == ["Acme"]
    # a refused write is answered the same way again, too
    refused = qbo.post("customer", {"DisplayName": "Acme"}, params={"requestid": "r-2"})
    assert qbo.post("customer", {"DisplayName": "Zed"}, params={"requestid": "r-2"}).content == (
        refused.content
    )
    too_long = qbo.post("customer", {"DisplayName": "B"}, params={"requestid": "x" * 51})
    assert too_long.status_code == 400 and len(sim.records(qbo.realm, "Customer")) == 1


def test_minorversion_is_recorded_and_old_ones_count_as_75(qbo, sim):
    qbo.get("companyinfo/" + qbo.realm, params={"minorversion": "65"})
    qbo.get("companyinfo/" + qbo.realm, params={"minorversion": "75"})
    qbo.http.get(f"{qbo.url}/companyinfo/{qbo.realm}", headers=qbo.headers())
    assert [r["minorversion"] for r in sim.requests(qbo.realm)] == [75, 75, 75]
    qbo.get("companyinfo/" + qbo.realm, params={"minorversion": "76"})
    assert sim.requests(qbo.realm)[-1]["minorversion"] == 76


def test_company_info_and_intuit_tid_header(qbo):
    response = qbo.get(f"companyinfo/{qbo.realm}")
    info = qbo.ok(response)["CompanyInfo"]
    assert info["CompanyName"] and info["Country"] == "US"
    assert response.headers["intuit_tid"]


def test_edit_as_user_bumps_sync_token_and_last_updated_time(qbo, sim):
    created = customer(qbo, "Acme")
    sim.advance(3600)
    edited = sim.edit_as_user(qbo.realm, "Customer", created["Id"], {"DisplayName": "Acme AG"})
    assert edited["SyncToken"] == "1" and edited["DisplayName"] == "Acme AG"
    assert edited["MetaData"]["LastUpdatedTime"] > created["MetaData"]["LastUpdatedTime"]
    assert edited["MetaData"]["CreateTime"] == created["MetaData"]["CreateTime"]


def test_faults_come_as_xml_when_the_client_accepts_xml(qbo):
    customer(qbo, "Acme")
    response = qbo.post(
        "customer", {"Id": "1", "SyncToken": "9", "sparse": True}, accept="application/xml"
    )
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/xml")
    assert b'<Fault type="ValidationFault"><Error code="5010">' in response.content


def test_a_sparse_invoice_update_with_lines_replaces_all_lines(qbo):
    customer(qbo, "Acme")
    item(qbo, "Consulting")
    invoice = qbo.create("Invoice", invoice_body("1", "1", "10.00", "20.00"))
    changed = qbo.create(
        "Invoice",
        {"Id": invoice["Id"], "SyncToken": "0", "sparse": True, **invoice_body("1", "1", "5.00")},
    )
    assert [line["Amount"] for line in changed["Line"]] == [Decimal("5.00"), Decimal("5.00")]
    assert changed["TotalAmt"] == Decimal("5.00")


def test_deleting_a_payment_reopens_the_invoice(qbo, sim):
    invoice, payment = _paid_invoice(qbo)
    qbo.ok(
        qbo.post(
            "payment",
            {"Id": payment["Id"], "SyncToken": payment["SyncToken"]},
            params={"operation": "delete"},
        )
    )
    after = qbo.ok(qbo.get(f"invoice/{invoice['Id']}"))["Invoice"]
    assert after["Balance"] == Decimal("100.00") and after["LinkedTxn"] == []
    assert sim.deleted(qbo.realm, "Payment") == [payment["Id"]]


def test_timestamps_and_default_dates_use_the_company_offset(sim):
    company = sim.create_company(realm_id="42", tz_offset="+14:00")
    qbo = Qbo(sim, company)
    customer(qbo, "Kiribati Ltd")
    item(qbo, "Consulting")
    created = qbo.create("Invoice", invoice_body("1", "1", "1.00"))
    assert created["MetaData"]["CreateTime"].endswith("+14:00")
    local_today = datetime.fromtimestamp(sim.now(), timezone(timedelta(hours=14))).date()
    assert created["TxnDate"] == local_today.isoformat()
    qbo.close()
