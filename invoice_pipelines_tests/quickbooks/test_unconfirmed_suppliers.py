"""A supplier registered by its first invoice waits for a person before QuickBooks (issue 72): its
invoice is VALIDATED, but no vendor is created and no bill pushed; the bill waits with the
finding `supplier`, naming the supplier and the command that confirms it, listed by
`qbo-payables` and the check `bills_waiting`. Once a person confirmed it, the next push creates
the vendor and the bill, once. The real intake, the production client and the simulator over
HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

from dagster import build_asset_check_context

from invoice_pipelines.cli import main
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.checks import qbo_bills_waiting_check
from invoice_pipelines.quickbooks.domain.watch import waiting_bills
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.supplier_register import confirm_supplier
from invoice_pipelines_devtools.demo.invoices import OFFICE_SUPPLIER
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of


def _books(database, simulator, tmp_path) -> Books:
    books = Books(connect(database, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow(create_vendors=True)
    return books


def _payables(books: Books, url: str, monkeypatch, capsys) -> str:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)
    capsys.readouterr()
    assert main(["qbo-payables", "--org", books.qbo.org["slug"]]) == 0
    return capsys.readouterr().out


def test_an_unconfirmed_suppliers_bill_waits_for_a_person_then_goes_once(
    fresh_db, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(fresh_db, simulator, tmp_path)
    docs = books.receive({"re-1.xml": xml_of(supplier_invoice("RE-U-1"))}, confirm=False)
    doc = docs["re-1.xml"]
    assert doc["status"] == "VALIDATED"  # accepted and exportable, not yet payable
    (supplier,) = books.suppliers()
    assert supplier["origin"] == "first_invoice" and supplier["confirmed_at"] is None

    for _ in range(2):  # taken again each run, and each run it waits
        counts = books.push()
        assert (counts.pushed, counts.held, counts.failed) == (0, 1, 0)
        assert counts.of("vendors").pushed == 0
    assert books.qbo_records("Vendor") == [] and books.qbo_records("Bill") == []
    assert books.bills() == {}
    (row,) = books.queue()
    assert (row["status"], row["error_code"]) == ("failed", "supplier")
    slug = books.qbo.org["slug"]
    why = row["error_message"]
    assert f"{OFFICE_SUPPLIER.name!r} (supplier {supplier['id']}" in why
    assert "registered by its first invoice and no person has confirmed it" in why
    assert (
        f"invoice-pipelines suppliers confirm --org {slug} --id {supplier['id']} "
        f"--version {supplier['version']} --by NAME --reason TEXT" in why
    )

    # listed where a person looks: the query of both, the check, the command
    count, waiting = waiting_bills(books.qbo.engine, books.qbo.org_id)
    assert count == 1 and (waiting[0].document, waiting[0].waits_for) == (doc["id"], "supplier")
    check = qbo_bills_waiting_check(
        build_asset_check_context(),
        database=Database(url=fresh_db.url),
        system_database=SystemDatabase(url=fresh_db.url),
    )
    assert not check.passed and check.metadata["waiting"].value == 1
    assert "no person has confirmed it" in check.metadata["documents"].value
    out = _payables(books, fresh_db.url, monkeypatch, capsys)
    assert f"waiting: document {doc['id']} (RE-U-1): supplier {OFFICE_SUPPLIER.name!r}" in out
    assert "suppliers confirm" in out

    # a person confirms it (as `suppliers confirm` does): the next push creates the vendor and
    # the bill, once
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        confirm_supplier(
            conn, books.qbo.org_id, supplier["id"], changed_by="anna", reason="called them"
        )
    counts = books.push()
    assert (counts.pushed, counts.held, counts.failed) == (1, 0, 0), counts.errors
    assert counts.of("vendors").pushed == 1
    (vendor,) = books.qbo_records("Vendor")
    (bill,) = books.qbo_records("Bill")
    assert bill["VendorRef"]["value"] == vendor["Id"]
    assert books.document(doc["id"])["status"] == "EXPORTED"
    assert [r["status"] for r in books.queue()] == ["pushed"]
    assert books.push().pushed == 0  # nothing twice
    assert len(books.qbo_records("Bill")) == 1
    assert qbo_bills_waiting_check(
        build_asset_check_context(),
        database=Database(url=fresh_db.url),
        system_database=SystemDatabase(url=fresh_db.url),
    ).passed


def test_a_link_to_a_vendor_does_not_let_an_unconfirmed_suppliers_bill_go(db, simulator, tmp_path):
    """Whatever would find a vendor (a link, a full VAT id, a creation), nothing is booked to it
    before a person confirmed the supplier; the vendors sync creates no vendor either."""
    books = _books(db, simulator, tmp_path)
    vendor = books.qbo.sim.create_as_user(
        books.qbo.realm, "Vendor", {"DisplayName": OFFICE_SUPPLIER.name}
    )
    books.receive({"re-2.xml": xml_of(supplier_invoice("RE-U-2"))}, confirm=False)
    (supplier,) = books.suppliers()
    books.link_vendor(supplier["id"], vendor["Id"])
    assert books.pull_vendors().held == 1
    assert books.push().held == 1
    assert books.qbo_records("Bill") == []
    assert len(books.qbo_records("Vendor")) == 1
    assert books.queue()[0]["error_code"] == "supplier"

    books.confirm_suppliers()
    assert books.push().pushed == 1
    (bill,) = books.qbo_records("Bill")
    assert bill["VendorRef"]["value"] == vendor["Id"]


def test_a_person_registered_supplier_is_confirmed_and_its_bill_goes(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    books.register(OFFICE_SUPPLIER)
    books.receive({"re-3.xml": xml_of(supplier_invoice("RE-U-3"))}, confirm=False)
    assert books.push().pushed == 1
    assert len(books.qbo_records("Bill")) == 1
