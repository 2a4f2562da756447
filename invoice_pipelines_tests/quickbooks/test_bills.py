"""Supplier invoices become QuickBooks bills: the real intake reads them, the production client
pushes them to the simulator over HTTP, on PostgreSQL and SQLite. Field by field, the documents
attached, EXPORTED afterwards, waiting with a finding for a vendor or an account, a credit note as
a vendor credit, a document processed again updating or deleting its bill."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import change_chosen
from invoice_pipelines.db.tables import sync_conflicts
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.quickbooks.domain.payables_settings import (
    set_exchange_rate,
    set_expense_account,
)
from invoice_pipelines_devtools.demo.invoices import (
    LOGISTICS_SUPPLIER,
    OFFICE_SUPPLIER,
    LineItem,
)
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.payables_books import (
    ISSUED,
    Books,
    pdf_of,
    supplier_invoice,
    xml_of,
)

D = Decimal


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    # a German company books in euros, like the organization
    return Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")


def test_a_validated_invoice_becomes_a_bill_field_by_field_with_its_documents(books):
    invoice = supplier_invoice("RE-2026-0042", skonto=((10, "2"),))
    xml = xml_of(invoice)
    (doc,) = books.receive({"schroeder.xml": xml}).values()
    assert doc["status"] == "VALIDATED"
    books.allow()
    counts = books.push()
    assert (counts.pushed, counts.failed, counts.held) == (1, 0, 0)  # the bill
    assert counts.of("vendors").pushed == 1  # its vendor, counted as a vendor

    (vendor,) = books.qbo_records("Vendor")
    assert vendor["DisplayName"] == OFFICE_SUPPLIER.name
    (bill,) = books.qbo_records("Bill")
    assert bill["VendorRef"]["value"] == vendor["Id"]
    assert bill["DocNumber"] == "RE-2026-0042"
    assert (bill["TxnDate"], bill["DueDate"]) == (
        ISSUED.isoformat(),
        (ISSUED + timedelta(days=30)).isoformat(),
    )
    assert D(str(bill["TotalAmt"])) == doc["gross_total"] == D("245.83")
    assert D(str(bill["TxnTaxDetail"]["TotalTax"])) == doc["tax_total"]
    office = books.account_id("Office Expenses")
    assert [
        (
            D(str(line["Amount"])),
            line["Description"],
            line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"],
            line["AccountBasedExpenseLineDetail"]["TaxCodeRef"]["value"],
        )
        for line in bill["Line"]
    ] == [
        (D("175.20"), "Kopierpapier A4, Karton", office, "TAX"),
        (D("34.90"), "Fachbuch Büroorganisation", office, "TAX"),
    ]
    # the supplier's 2 % in 10 days is the bill's term
    (term,) = [t for t in books.qbo_records("Term") if t["Id"] == bill["SalesTermRef"]["value"]]
    assert (term["Name"], D(str(term["DiscountPercent"])), term["DiscountDays"]) == (
        "2% 10, Net 30",
        D("2"),
        10,
    )

    # the original and a readable PDF, attached to the bill; the original byte for byte
    attached = {a["FileName"]: a for a in books.qbo_records("Attachable")}
    assert set(attached) == {"schroeder.xml", "schroeder.pdf"}
    for record in attached.values():
        assert record["AttachableRef"][0]["EntityRef"] == {"type": "Bill", "value": bill["Id"]}
    with books.qbo.client() as client:
        assert client.download_attachment(attached["schroeder.xml"]["Id"]) == xml
        readable = client.download_attachment(attached["schroeder.pdf"]["Id"])
    assert readable.startswith(b"%PDF")

    # booked: EXPORTED, and QuickBooks recorded as where it went
    assert books.document(doc["id"])["status"] == "EXPORTED"
    mapping = books.bills()[doc["id"]]
    assert (mapping["entity"], mapping["qbo_id"], mapping["state"]) == (
        "Bill",
        bill["Id"],
        "active",
    )
    assert mapping["total"] == D("245.83")
    # nothing to do the second time
    again = books.push()
    assert (again.pushed, again.failed) == (0, 0)
    assert len(books.qbo_records("Bill")) == 1 and len(books.qbo_records("Attachable")) == 2


def test_a_pdf_original_is_attached_as_it_is(books):
    invoice = supplier_invoice("DW-2026-11", seller=LOGISTICS_SUPPLIER)
    pdf = pdf_of(invoice)
    (doc,) = books.receive({"nordhafen.pdf": pdf}).values()
    if doc["status"] == "NEEDS_REVIEW":  # a text PDF waits for a person by the default policy
        review_document(
            books.qbo.engine,
            find_organization(books.qbo.engine, books.qbo.org_id),
            doc["id"],
            reviewed_by="anna",
            confirm=True,
            expected_version=doc["processing_version"],
        )
    books.allow()
    books.push()
    (bill,) = books.qbo_records("Bill")
    (attached,) = books.qbo_records("Attachable")
    assert (attached["FileName"], attached["ContentType"]) == ("nordhafen.pdf", "application/pdf")
    with books.qbo.client() as client:
        assert client.download_attachment(attached["Id"]) == pdf
    assert D(str(bill["TotalAmt"])) == books.document(doc["id"])["gross_total"]


def test_without_a_vendor_the_bill_waits_with_a_finding_naming_it(books):
    (doc,) = books.receive({"a.xml": xml_of(supplier_invoice("RE-1"))}).values()
    books.allow(create_vendors=False)
    counts = books.push()
    assert (counts.pushed, counts.held) == (0, 1)
    (row,) = books.queue()
    assert (row["status"], row["error_code"]) == ("failed", "vendor")
    assert f"create the vendor '{OFFICE_SUPPLIER.name}'" in row["error_message"]
    assert OFFICE_SUPPLIER.vat_id in row["error_message"]
    supplier_id = books.supplier_id(OFFICE_SUPPLIER.name)  # the first-invoice policy's
    slug = books.qbo.org["slug"]
    command = f"invoice-pipelines suppliers link-vendor --org {slug} --id {supplier_id} "
    assert command in row["error_message"]
    assert books.qbo_records("Bill") == [] and books.qbo_records("Vendor") == []
    assert books.document(doc["id"])["status"] == "VALIDATED"

    # a person creates it in QBO under a name of their own, with the VAT id as its tax id: QBO
    # answers that tax id masked, and a masked tax id is nobody's identity: still waiting
    made = books.qbo.sim.create_as_user(
        books.qbo.realm,
        "Vendor",
        {"DisplayName": "Schröder (Büro)", "TaxIdentifier": OFFICE_SUPPLIER.vat_id},
    )
    pulled = books.pull_vendors()
    assert pulled.pulled == 1
    counts = books.push()
    assert (counts.pushed, counts.held) == (0, 1)
    assert books.qbo_records("Bill") == []

    # the person links it in the register: the bill goes to it
    books.link_vendor(supplier_id, made["Id"])
    counts = books.push()
    assert counts.pushed == 1
    (bill,) = books.qbo_records("Bill")
    assert bill["VendorRef"] == {"value": made["Id"], "name": "Schröder (Büro)"}
    # nothing was learnt from the document: the vendor has no VAT id of ours
    (vendor,) = books.vendors()
    assert (vendor["vat_id"], vendor["tax_identifier"]) == (
        None,
        "XXXXXX" + OFFICE_SUPPLIER.vat_id[-5:],
    )


def test_a_vendor_named_like_the_supplier_is_a_suggestion_until_a_person_links_it(books):
    office = books.qbo.sim.create_as_user(
        books.qbo.realm, "Vendor", {"DisplayName": "BÜROBEDARF SCHRÖDER, GmbH"}
    )
    books.qbo.sim.create_as_user(
        books.qbo.realm, "Vendor", {"DisplayName": "Nordhafen Logistik GmbH & Co KG"}
    )
    books.pull_vendors()
    books.receive(
        {
            "a.xml": xml_of(supplier_invoice("RE-1")),
            "b.xml": xml_of(supplier_invoice("NH-7", seller=LOGISTICS_SUPPLIER)),
        }
    )
    books.allow(create_vendors=False)
    counts = books.push()
    assert (counts.pushed, counts.held) == (0, 2)
    assert books.qbo_records("Bill") == []
    waiting = {r["incoming_invoice_id"]: r for r in books.queue()}
    office_row = next(r for r in waiting.values() if OFFICE_SUPPLIER.name in r["error_message"])
    assert office_row["error_code"] == "vendor"
    assert "'BÜROBEDARF SCHRÖDER, GmbH' (Id " in office_row["error_message"]
    assert "a name is not an identity" in office_row["error_message"]
    # a name never teaches a vendor a VAT id
    assert {v["vat_id"] for v in books.vendors()} == {None}

    books.link_vendor(books.supplier_id(OFFICE_SUPPLIER.name), office["Id"])
    counts = books.push()
    assert (counts.pushed, counts.held) == (1, 1)
    (bill,) = books.qbo_records("Bill")
    assert bill["VendorRef"]["name"] == "BÜROBEDARF SCHRÖDER, GmbH"
    still = [r for r in books.queue() if r["status"] == "failed"]
    assert [r["error_code"] for r in still] == ["vendor"]
    assert LOGISTICS_SUPPLIER.name in still[0]["error_message"]


def test_without_an_expense_account_the_bill_waits_and_the_suppliers_own_wins(books):
    books.receive(
        {
            "a.xml": xml_of(supplier_invoice("RE-1")),
            "b.xml": xml_of(supplier_invoice("NH-7", seller=LOGISTICS_SUPPLIER)),
        }
    )
    books.allow(account=None)
    counts = books.push()
    assert (counts.held, len(books.qbo_records("Bill"))) == (2, 0)
    assert {r["error_code"] for r in books.queue()} == {"account"}
    assert "no QuickBooks expense account" in books.queue()[0]["error_message"]

    travel, office = books.account_id("Travel"), books.account_id("Office Expenses")
    set_expense_account(books.qbo.engine, books.qbo.org_id, office)
    set_expense_account(
        books.qbo.engine, books.qbo.org_id, travel, f"vat:{LOGISTICS_SUPPLIER.vat_id}"
    )
    counts = books.push()
    assert counts.held == 0 and len(books.qbo_records("Bill")) == 2
    accounts = {
        b["DocNumber"]: {
            line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for line in b["Line"]
        }
        for b in books.qbo_records("Bill")
    }
    assert accounts == {"RE-1": {office}, "NH-7": {travel}}


def test_an_unmapped_vat_rate_waits_with_the_rate_named(books):
    lines = [LineItem("Schulung", D("1"), D("100.00"), D("16"))]
    books.receive({"a.xml": xml_of(supplier_invoice("RE-16", lines=lines))})
    books.allow()
    counts = books.push()
    assert counts.held == 1
    (row,) = books.queue()
    assert row["error_code"] == "validation"
    assert "no QuickBooks tax code is mapped for VAT 16.00 %" in row["error_message"]


def test_an_invoice_in_another_currency_needs_the_rate_and_goes_with_it(db, simulator, tmp_path):
    # a US company in dollars with multicurrency; the supplier invoices in euros
    books = Books(connect(db, simulator, multicurrency=True), tmp_path / "uploads")
    (doc,) = books.receive({"a.xml": xml_of(supplier_invoice("RE-EUR"))}).values()
    books.allow()
    counts = books.push()
    assert counts.held == 1
    assert "no exchange rate EUR -> USD for 2026-11" in books.queue()[0]["error_message"]
    set_exchange_rate(books.qbo.engine, books.qbo.org_id, "EUR", D("1.0850"))
    set_exchange_rate(books.qbo.engine, books.qbo.org_id, "EUR", D("1.0790"), "2026-11")
    counts = books.push()
    assert counts.held == 0
    (vendor,) = books.qbo_records("Vendor")
    (bill,) = books.qbo_records("Bill")
    assert vendor["CurrencyRef"]["value"] == bill["CurrencyRef"]["value"] == "EUR"
    assert D(str(bill["ExchangeRate"])) == D("1.0790")  # the month's rate over the general one
    assert D(str(bill["TotalAmt"])) == doc["gross_total"]
    assert D(str(bill["HomeTotalAmt"])) == (doc["gross_total"] * D("1.0790")).quantize(D("0.01"))


def test_a_credit_note_becomes_a_vendor_credit(books):
    note = supplier_invoice("GS-2026-3", type_code="381", lines=[PAPER_LINE])
    (doc,) = books.receive({"credit.xml": xml_of(note)}).values()
    assert (doc["status"], doc["type_code"]) == ("VALIDATED", "381")
    books.allow()
    books.push()
    assert books.qbo_records("Bill") == []
    (credit,) = books.qbo_records("VendorCredit")
    assert credit["DocNumber"] == "GS-2026-3"
    assert D(str(credit["TotalAmt"])) == doc["gross_total"]
    assert books.bills()[doc["id"]]["entity"] == "VendorCredit"
    (attached,) = [a for a in books.qbo_records("Attachable") if a["FileName"] == "credit.xml"]
    assert attached["AttachableRef"][0]["EntityRef"]["type"] == "VendorCredit"
    assert books.document(doc["id"])["status"] == "EXPORTED"


PAPER_LINE = LineItem("Kopierpapier A4, Karton, zurück", D("2"), D("21.90"))


def test_a_document_processed_again_updates_its_bill_and_one_that_failed_deletes_it(books):
    (doc,) = books.receive({"a.xml": xml_of(supplier_invoice("RE-9"))}).values()
    books.allow()
    books.push()
    (bill,) = books.qbo_records("Bill")
    # a correction: EXPORTED -> VALIDATED (a new processing version), and the accountant books
    # it on another account now: the bill follows, the same bill, its files stay
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        moved, _ = change_chosen(
            conn, books.qbo.org_id, [doc["id"]], Status.EXPORTED, Status.VALIDATED, verb="reopened"
        )
    assert moved == [doc["id"]]
    set_expense_account(books.qbo.engine, books.qbo.org_id, books.account_id("Supplies"))
    counts = books.push()
    assert counts.pushed == 1
    (updated,) = books.qbo_records("Bill")
    assert updated["Id"] == bill["Id"] and updated["SyncToken"] != bill["SyncToken"]
    supplies = books.account_id("Supplies")
    assert {
        line["AccountBasedExpenseLineDetail"]["AccountRef"]["value"] for line in updated["Line"]
    } == {supplies}
    assert len(books.qbo_records("Attachable")) == 2
    assert books.document(doc["id"])["status"] == "EXPORTED"
    mapping = books.bills()[doc["id"]]
    assert mapping["document_version"] == books.document(doc["id"])["processing_version"] - 1

    # then a person finds it is not theirs: FAILED, and the bill goes from QuickBooks
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        change_chosen(
            conn, books.qbo.org_id, [doc["id"]], Status.EXPORTED, Status.FAILED, verb="failed"
        )
    counts = books.push()
    assert counts.pushed == 1
    assert books.qbo_records("Bill") == []
    assert bill["Id"] in books.qbo.sim.deleted(books.qbo.realm, "Bill")
    assert books.bills()[doc["id"]]["state"] == "deleted"


def test_a_paid_bill_of_a_failed_document_is_held_for_a_person(books):
    (doc,) = books.receive({"a.xml": xml_of(supplier_invoice("RE-P"))}).values()
    books.allow()
    books.push()
    (bill,) = books.qbo_records("Bill")
    books.pay(bill, "100.00")
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        change_chosen(
            conn, books.qbo.org_id, [doc["id"]], Status.EXPORTED, Status.FAILED, verb="failed"
        )
    counts = books.push()
    assert counts.conflicts == 1
    assert len(books.qbo_records("Bill")) == 1  # QBO keeps it; a person decides
    with tenant_transaction(books.qbo.engine, books.qbo.org_id) as conn:
        conflict = conn.execute(
            select(sync_conflicts.c.entity, sync_conflicts.c.status, sync_conflicts.c.reason).where(
                sync_conflicts.c.organization_id == books.qbo.org_id
            )
        ).one()
    assert conflict.entity == "bill" and conflict.status == "open"
    assert "is paid (100.00 of 245.83" in conflict.reason and "not deleted" in conflict.reason
