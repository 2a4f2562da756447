"""The payables entities as QBO keeps them: a new company's chart of accounts and terms; vendors
(DisplayName unique with the customers', tax id masked, deactivated, never deleted), terms and
accounts; bills (vendor, expense lines, totals, due date from terms, A/P account, DocNumber),
vendor credits and bill payments (Balance down to 0, void, delete), with QBO's errors, CDC,
webhooks, batch, faults and requestid replay applying to them as to the sales side."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from invoice_pipelines_devtools.qbo_simulator import QboSimulator
from invoice_pipelines_devtools.qbo_simulator.wire import Fault, dumps, loads
from invoice_pipelines_tests.devtools.qbo_simulator.conftest import (
    REALM,
    Qbo,
    customer,
    fault_code,
    item,
)
from invoice_pipelines_tests.devtools.qbo_simulator.test_webhooks import Receiver

D = Decimal


def error(response) -> dict:
    assert response.status_code == 400, response.text
    return loads(response.content)["Fault"]["Error"][0]


def account_id(qbo: Qbo, name: str) -> str:
    found = qbo.query(f"select * from Account where Name = '{name}'")["Account"]
    return found[0]["Id"]


def term_id(qbo: Qbo, name: str) -> str:
    return qbo.query(f"select * from Term where Name = '{name}'")["Term"][0]["Id"]


def vendor(qbo: Qbo, name: str, **fields) -> dict:
    return qbo.create("Vendor", {"DisplayName": name, **fields})


def expense(amount: str, account: str, **detail) -> dict:
    return {
        "Amount": amount,
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {"AccountRef": {"value": account}, **detail},
    }


def bill(qbo: Qbo, vendor_id: str, *amounts: str, **fields) -> dict:
    office = account_id(qbo, "Office Expenses")
    lines = [expense(amount, office) for amount in amounts]
    return qbo.create("Bill", {"VendorRef": {"value": vendor_id}, "Line": lines, **fields})


def pay(qbo: Qbo, vendor_id: str, total: str, *links: tuple[str, str, str], **fields) -> dict:
    """A bill payment by check of `total`, a line per (TxnType, TxnId, amount)."""
    lines = [
        {"Amount": amount, "LinkedTxn": [{"TxnId": txn_id, "TxnType": kind}]}
        for kind, txn_id, amount in links
    ]
    body = {
        "VendorRef": {"value": vendor_id},
        "PayType": "Check",
        "CheckPayment": {"BankAccountRef": {"value": account_id(qbo, "Checking")}},
        "TotalAmt": total,
        "Line": lines,
        **fields,
    }
    return qbo.create("BillPayment", body)


def read(qbo: Qbo, entity: str, entity_id: str) -> dict:
    return qbo.ok(qbo.get(f"{entity.lower()}/{entity_id}"))[entity]


def test_a_new_company_has_a_chart_of_accounts_with_expense_accounts_and_terms(qbo):
    expenses = qbo.query("select * from Account where AccountType = 'Expense' maxresults 100")
    names = [a["Name"] for a in expenses["Account"]]
    assert {"Advertising", "Office Expenses", "Rent or Lease", "Utilities"} <= set(names)
    assert {a["Classification"] for a in expenses["Account"]} == {"Expense"}
    payable = qbo.query("select * from Account where AccountType = 'Accounts Payable'")
    assert [a["Name"] for a in payable["Account"]] == ["Accounts Payable (A/P)"]
    assert account_id(qbo, "Services") == "1"  # the income account items name stays Id 1
    terms = {t["Name"]: t for t in qbo.query("select * from Term")["Term"]}
    assert {"Due on receipt", "Net 15", "Net 30", "Net 60"} <= set(terms)
    assert terms["Net 30"]["DueDays"] == 30 and terms["Net 30"]["Type"] == "STANDARD"
    skonto = terms["2% 10, Net 30"]
    assert (skonto["DiscountPercent"], skonto["DiscountDays"]) == (D("2"), 10)


def test_vendor_create_read_sparse_and_full_update_with_sync_token(qbo, sim):
    created = vendor(
        qbo,
        "Bürobedarf Schulz",
        CompanyName="Schulz GmbH",
        PrimaryEmailAddr={"Address": "ap@schulz.example"},
        TaxIdentifier="DE123456789",
        TermRef={"value": term_id(qbo, "Net 30")},
    )
    assert (created["Id"], created["SyncToken"], created["Active"]) == ("1", "0", True)
    assert created["TaxIdentifier"] == "XXXXXX56789"  # masked, as QBO answers a tax id
    assert created["TermRef"] == {"value": "4", "name": "Net 30"}
    assert created["Balance"] == 0
    assert read(qbo, "Vendor", "1") == created

    sparse = qbo.create(
        "Vendor",
        {"Id": "1", "SyncToken": "0", "sparse": True, "AcctNum": "K-4711", **created},
    )
    assert sparse["SyncToken"] == "1" and sparse["AcctNum"] == "K-4711"
    # the masked tax id read back and sent again keeps the real one
    assert sim.records(qbo.realm, "Vendor")[0]["TaxIdentifier"] == "DE123456789"

    stale = qbo.post("vendor", {"Id": "1", "SyncToken": "0", "sparse": True, "AcctNum": "x"})
    assert error(stale)["code"] == "5010"

    full = qbo.create("Vendor", {"Id": "1", "SyncToken": "1", "DisplayName": "Schulz Büro"})
    assert full["DisplayName"] == "Schulz Büro" and "PrimaryEmailAddr" not in full


def test_a_display_name_is_unique_across_customers_and_vendors(qbo):
    customer(qbo, "Acme")
    clash = qbo.post("vendor", {"DisplayName": "ACME"})
    assert error(clash)["code"] == "6240"
    assert "customer, vendor or employee" in error(clash)["Detail"]
    vendor(qbo, "Supplier Ltd")
    assert fault_code(qbo.post("customer", {"DisplayName": "supplier ltd"})) == "6240"
    nameless = error(qbo.post("vendor", {"CompanyName": ""}))
    assert (nameless["code"], nameless["element"]) == ("2020", "DisplayName")
    assert fault_code(qbo.post("vendor", {"DisplayName": "A:B"})) == "2040"
    # without DisplayName QBO builds it from the person's names
    assert vendor(qbo, "", GivenName="Jo", FamilyName="Meier")["DisplayName"] == "Jo Meier"


def test_vendors_terms_and_accounts_are_deactivated_never_deleted(qbo):
    vendor(qbo, "Old Supplier")
    for entity, entity_id in (("vendor", "1"), ("term", "1"), ("account", "8")):
        deleted = qbo.post(
            entity, {"Id": entity_id, "SyncToken": "0"}, params={"operation": "delete"}
        )
        assert error(deleted)["code"] == "500", entity
    qbo.create("Vendor", {"Id": "1", "SyncToken": "0", "sparse": True, "Active": False})
    assert qbo.query("select * from Vendor") == {}
    both = qbo.query("select * from Vendor where Active in (true, false)")["Vendor"]
    assert [v["DisplayName"] for v in both] == ["Old Supplier"]
    # an inactive vendor cannot be billed
    assert error(qbo.post("bill", {"VendorRef": {"value": "1"}, "Line": []}))["code"] == "610"


def test_terms_need_a_unique_name_and_days(qbo):
    created = qbo.create("Term", {"Name": "Net 45", "DueDays": 45})
    assert (created["Type"], created["DueDays"], created["Active"]) == ("STANDARD", 45, True)
    assert fault_code(qbo.post("term", {"Name": "net 45", "DueDays": 45})) == "6240"
    missing = error(qbo.post("term", {"Name": "Someday"}))
    assert (missing["code"], missing["element"]) == ("2020", "DueDays")
    assert fault_code(qbo.post("term", {"Name": "Odd", "DueDays": "ten"})) == "2010"
    bad = {"Name": "Too much", "DueDays": 30, "DiscountPercent": "150"}
    assert fault_code(qbo.post("term", bad)) == "2010"
    monthly = qbo.create(
        "Term", {"Name": "15th next month", "DayOfMonthDue": 15, "DueNextMonthDays": 5}
    )
    assert monthly["Type"] == "DATE_DRIVEN"


def test_accounts_need_a_known_type_and_a_unique_full_name(qbo):
    created = qbo.create("Account", {"Name": "Software", "AccountType": "Expense"})
    assert (created["Classification"], created["FullyQualifiedName"]) == ("Expense", "Software")
    assert created["CurrentBalance"] == 0 and created["SubAccount"] is False
    sub = qbo.create(
        "Account",
        {"Name": "Licences", "AccountType": "Expense", "ParentRef": {"value": created["Id"]}},
    )
    assert (sub["FullyQualifiedName"], sub["SubAccount"]) == ("Software:Licences", True)
    assert fault_code(qbo.post("account", {"Name": "software", "AccountType": "Expense"})) == "6240"
    assert fault_code(qbo.post("account", {"Name": "Misc", "AccountType": "Spending"})) == "2010"
    assert error(qbo.post("account", {"Name": "Misc"}))["element"] == "AccountType"
    assert fault_code(qbo.post("account", {"Name": "A:B", "AccountType": "Expense"})) == "2040"


def test_a_bill_has_total_balance_due_date_from_its_terms_and_the_ap_account(qbo):
    supplier = vendor(qbo, "Schulz", TermRef={"value": term_id(qbo, "Net 15")})
    rent = account_id(qbo, "Rent or Lease")
    part = item(qbo, "Paper", price="2.50")
    lines = [
        expense("100.00", rent, TaxCodeRef={"value": "NON"}),
        {
            "DetailType": "ItemBasedExpenseLineDetail",
            "ItemBasedExpenseLineDetail": {
                "ItemRef": {"value": part["Id"]},
                "Qty": 4,
                "UnitPrice": "2.50",
            },
        },
    ]
    created = qbo.create(
        "Bill",
        {
            "VendorRef": {"value": supplier["Id"]},
            "Line": lines,
            "TxnDate": "2026-11-02",
            "DocNumber": "RE-2026-117",
            # what python-quickbooks sends for the fields it leaves empty
            "Balance": 0,
            "TotalAmt": "",
            "DueDate": "",
            "ExchangeRate": 0,
        },
    )
    assert (created["TotalAmt"], created["Balance"]) == (D("110.00"), D("110.00"))
    assert created["DueDate"] == "2026-11-17"  # the vendor's Net 15
    assert created["VendorRef"] == {"value": supplier["Id"], "name": "Schulz"}
    assert created["APAccountRef"]["name"] == "Accounts Payable (A/P)"
    assert [line["LineNum"] for line in created["Line"]] == [1, 2]
    assert (
        created["Line"][0]["AccountBasedExpenseLineDetail"]["AccountRef"]["name"] == "Rent or Lease"
    )
    assert created["CurrencyRef"] == {"value": "USD"} and "ExchangeRate" not in created
    assert read(qbo, "Vendor", supplier["Id"])["Balance"] == D("110.00")

    termed = bill(
        qbo,
        supplier["Id"],
        "10.00",
        TxnDate="2026-11-02",
        SalesTermRef={"value": term_id(qbo, "Net 60")},
    )
    assert termed["DueDate"] == "2027-01-01"
    explicit = bill(qbo, supplier["Id"], "10.00", TxnDate="2026-11-02", DueDate="2026-11-30")
    assert explicit["DueDate"] == "2026-11-30"
    monthly = qbo.create("Term", {"Name": "10th", "DayOfMonthDue": 10, "DueNextMonthDays": 3})
    on_the_8th = bill(
        qbo, supplier["Id"], "1.00", TxnDate="2026-11-08", SalesTermRef={"value": monthly["Id"]}
    )
    assert on_the_8th["DueDate"] == "2026-12-10"  # within 3 days of the 10th: next month's
    on_the_2nd = bill(
        qbo, supplier["Id"], "1.00", TxnDate="2026-11-02", SalesTermRef={"value": monthly["Id"]}
    )
    assert on_the_2nd["DueDate"] == "2026-11-10"


def test_a_bill_refused_with_qbos_errors_changes_nothing(qbo):
    supplier = vendor(qbo, "Schulz")
    office = account_id(qbo, "Office Expenses")

    def refused(body: dict) -> dict:
        return error(qbo.post("bill", body))

    no_vendor = refused({"Line": [expense("1.00", office)]})
    assert (no_vendor["code"], no_vendor["element"]) == ("2020", "VendorRef")
    assert (
        refused({"VendorRef": {"value": "99"}, "Line": [expense("1.00", office)]})["code"] == "2500"
    )
    unknown = refused({"VendorRef": {"value": supplier["Id"]}, "Line": [expense("1.00", "999")]})
    assert unknown["code"] == "2500" and "Account" in unknown["Detail"]
    no_account = {
        "Amount": "1.00",
        "DetailType": "AccountBasedExpenseLineDetail",
        "AccountBasedExpenseLineDetail": {},
    }
    assert (
        refused({"VendorRef": {"value": supplier["Id"]}, "Line": [no_account]})["element"]
        == "AccountRef"
    )
    assert refused({"VendorRef": {"value": supplier["Id"]}, "Line": []})["code"] == "6000"
    not_ap = {
        "VendorRef": {"value": supplier["Id"]},
        "Line": [expense("1.00", office)],
        "APAccountRef": {"value": office},
    }
    assert refused(not_ap)["code"] == "6000"
    bad_tax = {
        "VendorRef": {"value": supplier["Id"]},
        "Line": [expense("1.00", office, TaxCodeRef={"value": "X"})],
    }
    assert refused(bad_tax)["code"] == "2500"
    unpriced = {
        "Amount": "5.00",
        "DetailType": "ItemBasedExpenseLineDetail",
        "ItemBasedExpenseLineDetail": {
            "ItemRef": {"value": item(qbo, "Paper")["Id"]},
            "Qty": 3,
            "UnitPrice": "2.00",
        },
    }
    assert refused({"VendorRef": {"value": supplier["Id"]}, "Line": [unpriced]})["code"] == "6070"
    assert qbo.query("select count(*) from Bill") == {"totalCount": 0}


def test_a_vendors_bill_number_may_repeat_unless_the_company_refuses_it(qbo, sim):
    schulz, meier = vendor(qbo, "Schulz")["Id"], vendor(qbo, "Meier")["Id"]
    first = bill(qbo, schulz, "10.00", DocNumber="R-1")
    assert (
        bill(qbo, schulz, "10.00", DocNumber="R-1")["DocNumber"] == "R-1"
    )  # accepted (unverified)

    sim.configure(qbo.realm, unique_bill_numbers=True)
    duplicate = error(
        qbo.post(
            "bill",
            {"VendorRef": {"value": schulz}, "Line": [expense("1.00", "11")], "DocNumber": "r-1"},
        )
    )
    assert duplicate["code"] == "6140" and f"TxnId={first['Id']}" in duplicate["Detail"]
    assert bill(qbo, meier, "10.00", DocNumber="R-1")["DocNumber"] == "R-1"  # another vendor's
    allowed = qbo.post(
        "bill",
        {"VendorRef": {"value": schulz}, "Line": [expense("1.00", "11")], "DocNumber": "R-1"},
        params={"include": "allowduplicatedocnum"},
    )
    assert qbo.ok(allowed)["Bill"]["DocNumber"] == "R-1"
    assert (
        fault_code(
            qbo.post(
                "bill",
                {
                    "VendorRef": {"value": meier},
                    "Line": [expense("1.00", "11")],
                    "DocNumber": "x" * 22,
                },
            )
        )
        == "2010"
    )


def test_bill_payments_bring_the_balance_to_zero_and_a_void_reopens_it(qbo):
    supplier = vendor(qbo, "Schulz")["Id"]
    owed = bill(qbo, supplier, "300.00", "50.50")
    assert owed["Balance"] == D("350.50")

    first = pay(qbo, supplier, "100.00", ("Bill", owed["Id"], "100.00"))
    assert read(qbo, "Bill", owed["Id"])["Balance"] == D("250.50")
    second = pay(qbo, supplier, "250.50", ("Bill", owed["Id"], "250.50"), DocNumber="CHK-7")
    paid = read(qbo, "Bill", owed["Id"])
    assert (paid["Balance"], paid["TotalAmt"]) == (D("0.00"), D("350.50"))
    assert paid["LinkedTxn"] == [
        {"TxnId": first["Id"], "TxnType": "BillPaymentCheck"},
        {"TxnId": second["Id"], "TxnType": "BillPaymentCheck"},
    ]
    assert int(paid["SyncToken"]) == 2  # each payment moved the bill
    assert read(qbo, "Vendor", supplier)["Balance"] == D("0.00")
    assert second["CheckPayment"]["BankAccountRef"]["name"] == "Checking"

    # a paid bill is not deleted under its payments
    refused = qbo.post(
        "bill", {"Id": owed["Id"], "SyncToken": paid["SyncToken"]}, params={"operation": "delete"}
    )
    assert error(refused)["code"] == "6000"

    voided = qbo.ok(
        qbo.post(
            "billpayment",
            {"Id": second["Id"], "SyncToken": second["SyncToken"], "sparse": True},
            params={"operation": "update", "include": "void"},
        )
    )["BillPayment"]
    assert voided["TotalAmt"] == 0 and voided["PrivateNote"].startswith("Voided")
    assert read(qbo, "Bill", owed["Id"])["Balance"] == D("250.50")
    deleted = qbo.ok(
        qbo.post(
            "billpayment",
            {"Id": first["Id"], "SyncToken": first["SyncToken"]},
            params={"operation": "delete"},
        )
    )
    assert deleted["BillPayment"]["status"] == "Deleted"
    reopened = read(qbo, "Bill", owed["Id"])
    assert reopened["Balance"] == D("350.50") and reopened["LinkedTxn"] == []
    assert read(qbo, "Vendor", supplier)["Balance"] == D("350.50")
    gone = qbo.ok(
        qbo.post(
            "bill",
            {"Id": owed["Id"], "SyncToken": reopened["SyncToken"]},
            params={"operation": "delete"},
        )
    )
    assert gone["Bill"]["status"] == "Deleted"
    assert read(qbo, "Vendor", supplier)["Balance"] == D("0.00")


def test_bill_payments_refused_with_qbos_errors(qbo):
    schulz, meier = vendor(qbo, "Schulz")["Id"], vendor(qbo, "Meier")["Id"]
    owed = bill(qbo, schulz, "100.00")
    checking = account_id(qbo, "Checking")

    def refused(**body) -> dict:
        payment = {
            "VendorRef": {"value": schulz},
            "PayType": "Check",
            "CheckPayment": {"BankAccountRef": {"value": checking}},
            "TotalAmt": "100.00",
            "Line": [{"Amount": "100.00", "LinkedTxn": [{"TxnId": owed["Id"], "TxnType": "Bill"}]}],
        }
        return error(qbo.post("billpayment", {**payment, **body}))

    assert (
        refused(
            Line=[{"Amount": "100.01", "LinkedTxn": [{"TxnId": owed["Id"], "TxnType": "Bill"}]}],
            TotalAmt="100.01",
        )["code"]
        == "6000"
    )
    assert refused(VendorRef={"value": meier})["code"] == "6000"  # another vendor's bill
    assert refused(TotalAmt="60.00")["code"] == "6000"  # the lines pay more than the payment
    assert refused(TotalAmt="-1")["code"] == "6000"
    assert refused(PayType=None)["element"] == "PayType"
    assert refused(CheckPayment={})["element"] == "CheckPayment.BankAccountRef"
    office = account_id(qbo, "Office Expenses")
    assert refused(CheckPayment={"BankAccountRef": {"value": office}})["code"] == "6000"
    assert (
        refused(Line=[{"Amount": "1", "LinkedTxn": [{"TxnId": "1", "TxnType": "Invoice"}]}])["code"]
        == "2010"
    )
    assert (
        refused(Line=[{"Amount": "1", "LinkedTxn": [{"TxnId": "77", "TxnType": "Bill"}]}])["code"]
        == "2500"
    )
    assert read(qbo, "Bill", owed["Id"])["Balance"] == D("100.00")

    by_card = qbo.create(
        "BillPayment",
        {
            "VendorRef": {"value": schulz},
            "PayType": "CreditCard",
            "CreditCardPayment": {"CCAccountRef": {"value": account_id(qbo, "Visa")}},
            "TotalAmt": "120.00",  # 20.00 more than the lines: the vendor's credit (Intuit)
            "Line": [{"Amount": "100.00", "LinkedTxn": [{"TxnId": owed["Id"], "TxnType": "Bill"}]}],
        },
    )
    assert read(qbo, "Bill", owed["Id"])["LinkedTxn"] == [
        {"TxnId": by_card["Id"], "TxnType": "BillPaymentCreditCard"}
    ]


def test_a_vendor_credit_taken_in_a_bill_payment(qbo):
    supplier = vendor(qbo, "Schulz")["Id"]
    owed = bill(qbo, supplier, "200.00")
    office = account_id(qbo, "Office Expenses")
    credit = qbo.create(
        "VendorCredit",
        {"VendorRef": {"value": supplier}, "Line": [expense("50.00", office)], "DocNumber": "GS-1"},
    )
    assert (credit["TotalAmt"], credit["Balance"]) == (D("50.00"), D("50.00"))
    assert read(qbo, "Vendor", supplier)["Balance"] == D("150.00")
    assert fault_code(qbo.post("vendorcredit", {"Line": [expense("1.00", office)]})) == "2020"

    pay(
        qbo,
        supplier,
        "150.00",
        ("Bill", owed["Id"], "200.00"),
        ("VendorCredit", credit["Id"], "50.00"),
    )
    assert read(qbo, "Bill", owed["Id"])["Balance"] == D("0.00")
    taken = read(qbo, "VendorCredit", credit["Id"])
    assert taken["Balance"] == D("0.00") and taken["LinkedTxn"][0]["TxnType"] == "BillPaymentCheck"
    assert read(qbo, "Vendor", supplier)["Balance"] == D("0.00")


def test_a_bill_update_needs_its_sync_token_and_keeps_what_is_paid(qbo):
    supplier = vendor(qbo, "Schulz")["Id"]
    owed = bill(qbo, supplier, "100.00", DocNumber="R-9")
    pay(qbo, supplier, "60.00", ("Bill", owed["Id"], "60.00"))
    current = read(qbo, "Bill", owed["Id"])
    office = account_id(qbo, "Office Expenses")
    changed = qbo.create(
        "Bill",
        {
            "Id": owed["Id"],
            "SyncToken": current["SyncToken"],
            "sparse": True,
            "Line": [expense("80.00", office)],
        },
    )
    assert (changed["TotalAmt"], changed["Balance"], changed["DocNumber"]) == (
        D("80.00"),
        D("20.00"),
        "R-9",
    )
    below = {
        "Id": owed["Id"],
        "SyncToken": changed["SyncToken"],
        "sparse": True,
        "Line": [expense("50.00", office)],
    }
    assert error(qbo.post("bill", below))["code"] == "6000"
    stale = {
        "Id": owed["Id"],
        "SyncToken": current["SyncToken"],
        "sparse": True,
        "PrivateNote": "x",
    }
    assert error(qbo.post("bill", stale))["code"] == "5010"
    other = vendor(qbo, "Meier")["Id"]
    moved = {
        "Id": owed["Id"],
        "SyncToken": changed["SyncToken"],
        "sparse": True,
        "VendorRef": {"value": other},
    }
    assert error(qbo.post("bill", moved))["code"] == "6000"


def test_a_bill_in_the_vendors_foreign_currency_needs_multicurrency_and_a_rate(qbo, sim):
    refused = error(
        qbo.post("vendor", {"DisplayName": "Lieferant GmbH", "CurrencyRef": {"value": "EUR"}})
    )
    assert refused["code"] == "6000"
    sim.configure(qbo.realm, multicurrency=True)
    assert (
        qbo.ok(qbo.get("preferences"))["Preferences"]["CurrencyPrefs"]["MultiCurrencyEnabled"]
        is True
    )
    supplier = vendor(qbo, "Lieferant GmbH", CurrencyRef={"value": "EUR"})["Id"]
    no_rate = error(
        qbo.post("bill", {"VendorRef": {"value": supplier}, "Line": [expense("100.00", "11")]})
    )
    assert no_rate["element"] == "ExchangeRate"
    mismatch = {
        "VendorRef": {"value": supplier},
        "Line": [expense("1.00", "11")],
        "CurrencyRef": {"value": "USD"},
    }
    assert error(qbo.post("bill", mismatch))["code"] == "6000"
    foreign = bill(qbo, supplier, "100.00", ExchangeRate="1.0825")
    assert foreign["CurrencyRef"] == {"value": "EUR"}
    assert (foreign["TotalAmt"], foreign["HomeTotalAmt"], foreign["HomeBalance"]) == (
        D("100.00"),
        D("108.25"),
        D("108.25"),
    )


def test_cdc_and_webhooks_tell_of_vendors_bills_and_payments(qbo, sim):
    since = datetime.fromtimestamp(sim.now() - 1, UTC).isoformat()
    with Receiver() as hook:
        sim.configure_webhook(qbo.realm, hook.url, "verifier", fmt="legacy")
        supplier = vendor(qbo, "Schulz")["Id"]
        owed = bill(qbo, supplier, "10.00")
        payment = pay(qbo, supplier, "10.00", ("Bill", owed["Id"], "10.00"))
        qbo.post(
            "billpayment", {"Id": payment["Id"], "SyncToken": "0"}, params={"operation": "delete"}
        )
        sent = sim.webhook_deliveries(qbo.realm)
    events = [
        (e["name"], e["id"], e["operation"])
        for d in sent
        for n in loads(d["body"])["eventNotifications"]
        for e in n["dataChangeEvent"]["entities"]
    ]
    assert events == [
        ("Vendor", supplier, "Create"),
        ("Bill", owed["Id"], "Create"),
        ("BillPayment", payment["Id"], "Create"),
        ("BillPayment", payment["Id"], "Delete"),
    ]
    cdc = qbo.ok(
        qbo.get("cdc", params={"entities": "Vendor,Bill,BillPayment", "changedSince": since})
    )
    parts = {
        k: v
        for p in cdc["CDCResponse"][0]["QueryResponse"]
        for k, v in p.items()
        if isinstance(v, list)
    }
    assert [v["DisplayName"] for v in parts["Vendor"]] == ["Schulz"]
    assert [b["Balance"] for b in parts["Bill"]] == [D("10.00")]  # open again
    assert parts["BillPayment"] == [
        {
            "Id": payment["Id"],
            "status": "Deleted",
            "domain": "QBO",
            "MetaData": parts["BillPayment"][0]["MetaData"],
        }
    ]


def test_batch_items_create_bills_and_void_a_bill_payment(qbo):
    supplier = vendor(qbo, "Schulz")["Id"]
    owed = bill(qbo, supplier, "40.00")
    payment = pay(qbo, supplier, "40.00", ("Bill", owed["Id"], "40.00"))
    items = [
        {
            "bId": "b1",
            "operation": "create",
            "Bill": {"VendorRef": {"value": supplier}, "Line": [expense("5.00", "11")]},
        },
        {"bId": "b2", "operation": "create", "Bill": {"Line": [expense("5.00", "11")]}},
        {
            "bId": "v",
            "operation": "update",
            "optionsData": "void",
            "BillPayment": {"Id": payment["Id"], "SyncToken": "0", "sparse": True},
        },
        {"bId": "q", "Query": "select count(*) from Bill"},
    ]
    answers = {
        a["bId"]: a
        for a in qbo.ok(qbo.post("batch", {"BatchItemRequest": items}))["BatchItemResponse"]
    }
    assert answers["b1"]["Bill"]["TotalAmt"] == D("5.00")
    assert answers["b2"]["Fault"]["Error"][0]["code"] == "2020"
    assert answers["v"]["BillPayment"]["TotalAmt"] == 0
    assert answers["q"]["QueryResponse"] == {"totalCount": 1}  # the bill b1 made is not seen
    assert read(qbo, "Bill", owed["Id"])["Balance"] == D("40.00")


def test_faults_and_requestid_replay_apply_to_payables(qbo, sim):
    supplier = vendor(qbo, "Schulz")["Id"]
    body = {"VendorRef": {"value": supplier}, "Line": [expense("10.00", "11")]}
    sim.inject(qbo.realm, "503", path_contains="/bill")
    assert qbo.post("bill", body, params={"requestid": "bill-1"}).status_code == 503
    sim.inject(qbo.realm, "429", path_contains="/bill")
    assert qbo.post("bill", body, params={"requestid": "bill-1"}).status_code == 429
    sim.inject(qbo.realm, "drop_after_commit", path_contains="/bill")
    with pytest.raises(httpx.RemoteProtocolError):  # closed unanswered, the bill is made
        qbo.post("bill", body, params={"requestid": "bill-1"})
    again = qbo.post("bill", body, params={"requestid": "bill-1"})
    assert again.headers["X-Simulator-Replay"] == "true"
    assert qbo.ok(again)["Bill"]["Id"] == "1"
    assert qbo.query("select count(*) from Bill") == {"totalCount": 1}


def test_payables_survive_a_restart_with_the_data_dir(tmp_path):
    with QboSimulator(port=0, data_dir=tmp_path) as first:
        client = Qbo(first, first.create_company(realm_id=REALM))
        supplier = vendor(client, "Schulz")["Id"]
        owed = bill(client, supplier, "10.00", DocNumber="R-1")
        client.close()
    with QboSimulator(port=0, data_dir=tmp_path) as second:
        [stored] = second.records(REALM, "Bill")
        assert (stored["Id"], stored["DocNumber"]) == (owed["Id"], "R-1")
        second.configure(REALM, unique_bill_numbers=True)
        company = second.sim.company(REALM)
        # the indexes came back: the name and the vendor's bill number are taken
        with pytest.raises(Fault, match="6240"):
            company.create_as_user("Customer", {"DisplayName": "schulz"})
        with pytest.raises(Fault, match="6140"):
            company.create_as_user(
                "Bill",
                {
                    "VendorRef": {"value": supplier},
                    "Line": [expense("1.00", "11")],
                    "DocNumber": "R-1",
                },
            )


def test_a_company_saved_before_the_payables_gets_their_accounts_and_terms(tmp_path):
    """The demo's companies were saved with four accounts and no terms: after the upgrade they
    have what a new company has, so bills can be booked in them."""
    with QboSimulator(port=0, data_dir=tmp_path) as first:
        first.create_company(realm_id=REALM)
    path = tmp_path / "qbo-simulator.json"
    state = loads(path.read_bytes())
    [saved] = state["companies"]
    saved["records"]["Account"] = [
        a for a in saved["records"]["Account"] if int(a["data"]["Id"]) <= 4
    ]
    for key in ("Term", "Vendor", "Bill", "VendorCredit", "BillPayment", "Attachable"):
        saved["records"].pop(key)
        saved["next_ids"].pop(key)
    saved["next_ids"]["Account"] = 5
    del saved["files"], saved["file_secret"]
    path.write_bytes(dumps(state))

    with QboSimulator(port=0, data_dir=tmp_path) as second:
        accounts = {a["Name"]: a["Id"] for a in second.records(REALM, "Account")}
        assert accounts["Services"] == "1" and accounts["Accounts Payable (A/P)"] == "5"
        assert len(accounts) == 16 and "Office Expenses" in accounts
        assert "Net 30" in {t["Name"] for t in second.records(REALM, "Term")}
