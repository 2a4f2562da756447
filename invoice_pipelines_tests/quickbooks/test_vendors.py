"""Vendors pulled from the simulator into qbo_vendors (the initial import page by page, then the
changes), a webhook about a vendor asking for that pull, and the vendors sync creating the vendors
of waiting suppliers only where the organization allows it."""

from __future__ import annotations

import pytest

from invoice_pipelines.quickbooks.domain.sync.common import read_cursor
from invoice_pipelines.quickbooks.domain.sync.vendors import VendorSync
from invoice_pipelines.quickbooks.domain.webhooks import Notice, request_pulls
from invoice_pipelines_devtools.demo.invoices import LOGISTICS_SUPPLIER, OFFICE_SUPPLIER
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    return Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")


def test_the_initial_import_reads_every_vendor_page_by_page_then_only_changes(books):
    sim, realm = books.qbo.sim, books.qbo.realm
    made = [
        sim.create_as_user(realm, "Vendor", {"DisplayName": f"Lieferant {n:02d}"}) for n in range(7)
    ]
    sim.create_as_user(
        realm, "Vendor", {"DisplayName": "Steuer GmbH", "TaxIdentifier": "DE123456789"}
    )
    with books.qbo.client() as client:
        sync = VendorSync(books.qbo.engine, books.qbo.organization, client)
        sync.initial_import(page_size=3)
    assert sync.counts.pulled == 8
    state = read_cursor(books.qbo.engine, books.qbo.org_id, "vendor")
    assert (state["imported"], state["import_done"]) == (8, True)
    vendors = {v["display_name"]: v for v in books.vendors()}
    assert vendors["Steuer GmbH"]["tax_identifier"] == "XXXXXX56789"  # as QBO shows it
    assert vendors["Lieferant 03"]["name_key"] == "lieferant03"
    assert {v["origin"] for v in vendors.values()} == {"pulled"}

    # a person renames one and makes another inactive: the next pull takes only those
    sim.edit_as_user(realm, "Vendor", made[0]["Id"], {"DisplayName": "Lieferant Null"})
    sim.edit_as_user(realm, "Vendor", made[1]["Id"], {"Active": False})
    counts = books.pull_vendors()
    assert counts.pulled == 2
    vendors = {v["qbo_id"]: v for v in books.vendors()}
    assert vendors[made[0]["Id"]]["display_name"] == "Lieferant Null"
    assert vendors[made[1]["Id"]]["active"] is False
    assert len(vendors) == 8


def test_a_webhook_about_a_vendor_asks_for_the_vendors_pull(books):
    books.pull_vendors()
    requested = request_pulls(
        books.qbo.engine,
        books.qbo.db.system_engine,
        [Notice(books.qbo.realm, "vendor", "1", "create")],
    )
    assert requested == {books.qbo.org_id: {"vendor"}}
    assert read_cursor(books.qbo.engine, books.qbo.org_id, "vendor")["pull_requested_at"]
    books.pull_vendors()
    assert read_cursor(books.qbo.engine, books.qbo.org_id, "vendor")["pull_requested_at"] is None


def test_the_vendors_sync_creates_waiting_suppliers_vendors_only_where_allowed(books):
    books.receive(
        {
            "a.xml": xml_of(supplier_invoice("RE-1")),
            "b.xml": xml_of(supplier_invoice("RE-2")),
            "c.xml": xml_of(supplier_invoice("NH-1", seller=LOGISTICS_SUPPLIER)),
        }
    )
    books.allow(create_vendors=False, account=None)
    counts = books.pull_vendors()
    assert (counts.pushed, counts.held) == (0, 2)  # one finding per supplier, not per invoice
    assert any(OFFICE_SUPPLIER.name in e for e in counts.errors)
    assert books.qbo_records("Vendor") == []

    books.allow(create_vendors=True, account=None)
    counts = books.pull_vendors()
    assert counts.pushed == 2
    created = {v["DisplayName"]: v for v in books.qbo_records("Vendor")}
    assert set(created) == {OFFICE_SUPPLIER.name, LOGISTICS_SUPPLIER.name}
    office = created[OFFICE_SUPPLIER.name]
    assert office["TaxIdentifier"] == OFFICE_SUPPLIER.vat_id  # the simulator's records unmasked
    # the register holds no notice address for it: the address the invoice claims is not given
    assert "PrimaryEmailAddr" not in office
    ours = {v["display_name"]: v for v in books.vendors()}
    assert ours[OFFICE_SUPPLIER.name]["origin"] == "created"
    assert ours[OFFICE_SUPPLIER.name]["vat_id"] == OFFICE_SUPPLIER.vat_id
    # created once: the next sync finds them by VAT id
    assert books.pull_vendors().pushed == 0
    assert len(books.qbo_records("Vendor")) == 2


def test_a_suppliers_name_taken_by_a_customer_is_a_finding(books):
    books.qbo.sim.create_as_user(books.qbo.realm, "Customer", {"DisplayName": OFFICE_SUPPLIER.name})
    books.receive({"a.xml": xml_of(supplier_invoice("RE-1"))})
    books.allow()
    counts = books.push()
    assert counts.held == 1
    (row,) = books.queue()
    assert row["error_code"] == "vendor"
    assert (
        "is taken in QuickBooks by a customer, employee or another vendor" in row["error_message"]
    )
