"""A QuickBooks company is an identity (issue 72): connecting an organization to another company
archives every link of the first (the register's vendor links audited), every push waits until
the new company is imported, the switch is audited and shown by a check; then the push books in
the new company by its own vendors. A company id is checked for Intuit's form, the same company
again keeps everything, and a push that breaks off on our side leaves no row `sending`.

Before: the next invoice became a bill in the new company to *its* vendor 1 (another party), the
run raised IntegrityError uq_qbo_bills_organization_id_entity_qbo_id and left the row `sending`.
The real intake, the production client and the simulator over HTTP, PostgreSQL and SQLite."""

from __future__ import annotations

import json

import pytest
from dagster import build_asset_check_context
from sqlalchemy import insert, select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import (
    audit_log,
    qbo_archived_links,
    qbo_bills,
    qbo_company_switches,
    qbo_connections,
    qbo_cursors,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.checks import qbo_company_check
from invoice_pipelines.quickbooks.domain.company import checked_realm_id
from invoice_pipelines.quickbooks.domain.errors import BadRealmId
from invoice_pipelines.quickbooks.domain.payables_settings import change_connection_settings
from invoice_pipelines.quickbooks.domain.sync.customers import CustomerSync
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import ItemSync
from invoice_pipelines.quickbooks.domain.sync.vendors import VendorSync
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
from invoice_pipelines.quickbooks.domain.watch import waiting_bills
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_devtools.demo.invoices import OFFICE_SUPPLIER
from invoice_pipelines_tests.quickbooks.conftest import TAX_CODES, TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of


def _books(database, simulator, tmp_path) -> Books:
    books = Books(connect(database, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow(create_vendors=True)
    return books


def _connect(books: Books, company, by: str = "anna") -> dict | None:
    """`qbo-connect` of the organization to `company`, as the person `by`."""
    switched = save_connection(
        books.qbo.engine,
        books.qbo.org_id,
        system=books.qbo.db.system_engine,
        realm_id=company.realm_id,
        client_id=company.client_id,
        client_secret=company.client_secret,
        refresh_token=company.refresh_token,
        cipher=token_cipher(TOKEN_KEY),
        settings={"tax_codes": TAX_CODES, "income_account_id": "1"},
        by=by,
    )
    books.qbo.company = company  # the test's view of QBO follows the connection
    return switched


def _import(books: Books) -> None:
    """`qbo-import`: the new company's customers, items and vendors."""
    with books.qbo.client() as client:
        qbo = books.qbo
        for sync in (
            CustomerSync(qbo.engine, qbo.org_id, client),
            ItemSync(qbo.engine, qbo.org_id, client),
            VendorSync(qbo.engine, qbo.organization, client),
        ):
            sync.initial_import()


def _rows(books: Books, table) -> list[dict]:
    with tenant_transaction(books.qbo.engine, books.qbo.org_id) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(table).where(table.c.organization_id == books.qbo.org_id)
            ).mappings()
        ]


def _invoice(number: str) -> bytes:
    return xml_of(supplier_invoice(number))


def test_a_switch_books_nothing_by_an_old_link_and_waits_for_the_import(
    fresh_db, simulator, tmp_path
):
    books = _books(fresh_db, simulator, tmp_path)
    first = books.qbo.company
    books.receive({"re-1.xml": _invoice("RE-SW-1")})
    assert books.push().pushed == 1
    (old_vendor,) = books.qbo_records("Vendor")
    (supplier,) = books.suppliers()
    assert supplier["qbo_vendor_id"] == old_vendor["Id"] == "1"
    # the next invoice of the same supplier is read before the switch
    (doc,) = books.receive({"re-2.xml": _invoice("RE-SW-2")}).values()

    # the other company's vendor 1 is another party
    second = simulator.create_company(currency="EUR", country="DE")
    evil = simulator.create_as_user(second.realm_id, "Vendor", {"DisplayName": "Evil Corp Ltd"})
    assert evil["Id"] == "1"
    # the first company's tax code for 19 %: an id that names another code, or none, in the next
    change_connection_settings(books.qbo.engine, books.qbo.org_id, tax_codes={"19.00": "7"})
    switched = _connect(books, second)
    assert switched["connection settings"] == 2  # its tax codes and income account
    # ... replaced by those given for the new company (qbo-connect --tax-code ...)
    (settings,) = [r["settings"] for r in _rows(books, qbo_connections)]
    assert settings["tax_codes"] == TAX_CODES
    assert switched["qbo_vendors"] == 1 and switched["qbo_bills"] == 1
    assert switched["suppliers unlinked"] == 1

    # nothing of the first company is left where a push reads
    for table in (qbo_bills, qbo_cursors):
        assert _rows(books, table) == []
    assert books.vendors() == []
    assert books.suppliers()[0]["qbo_vendor_id"] is None
    archived = _rows(books, qbo_archived_links)
    assert {(a["source"], a["realm_id"]) for a in archived} >= {
        ("qbo_vendors", first.realm_id),
        ("qbo_bills", first.realm_id),
        ("qbo_connections.settings", first.realm_id),
    }
    assert [a["row"] for a in archived if a["source"] == "qbo_connections.settings"] == [
        {"tax_codes": {"19.00": "7"}, "income_account_id": "1"}
    ]
    (change,) = [c for c in books.supplier_changes() if c["action"] == "qbo_company_switch"]
    assert change["changed_by"] == "anna"
    assert change["before"]["qbo_vendor_id"] == "1" and change["after"]["qbo_vendor_id"] is None
    (audit,) = [a for a in _rows(books, audit_log) if a["action"] == "qbo.company_switch"]
    assert audit["created_by"] == "anna" and audit["entity_id"] == second.realm_id
    assert audit["details"]["old_realm_id"] == first.realm_id
    assert audit["details"]["archived"]["qbo_bills"] == 1

    # every push waits for the import: the bill with a reason a person reads, no exception
    books.allow(create_vendors=True)
    for _ in range(2):
        counts = books.push()
        assert (counts.pushed, counts.failed, counts.held) == (0, 0, 1)
    assert books.qbo_records("Bill") == [] and books.qbo_records("Vendor") == [evil]
    (row,) = [r for r in books.queue() if r["incoming_invoice_id"] == doc["id"]]
    assert (row["status"], row["error_code"]) == ("failed", "company")
    slug = books.qbo.org["slug"]
    assert f"invoice-pipelines qbo-import --org {slug}" in row["error_message"]
    assert f"from {first.realm_id} to {second.realm_id}" in row["error_message"]
    assert "sending" not in {r["status"] for r in books.queue()}
    _, waiting = waiting_bills(books.qbo.engine, books.qbo.org_id)
    assert [(w.document, w.waits_for) for w in waiting] == [(doc["id"], "company")]
    with books.qbo.client() as client:
        sales = push_invoices(books.qbo.engine, books.qbo.organization, client)
    assert sales.pushed == 0 and "import pending" in sales.errors[0]
    database = Database(url=fresh_db.url)
    system_database = SystemDatabase(url=fresh_db.url)
    check = qbo_company_check(
        build_asset_check_context(), database=database, system_database=system_database
    )
    assert not check.passed and check.metadata["import_pending"].value == 1
    assert f"switched from {first.realm_id} to {second.realm_id}" in check.description

    # after the import, the bill goes to the new company: to a vendor of the new company made
    # for the registered supplier, never to its vendor 1
    _import(books)
    counts = books.push()
    assert (counts.pushed, counts.failed) == (1, 0), counts.errors
    (bill,) = books.qbo_records("Bill")
    assert bill["DocNumber"] == "RE-SW-2"
    assert bill["VendorRef"]["value"] not in (evil["Id"],)
    (made,) = [v for v in books.qbo_records("Vendor") if v["Id"] == bill["VendorRef"]["value"]]
    assert made["DisplayName"] == OFFICE_SUPPLIER.name
    assert books.suppliers()[0]["qbo_vendor_id"] == made["Id"]
    assert len(simulator.records(first.realm_id, "Bill")) == 1  # the first company untouched
    check = qbo_company_check(
        build_asset_check_context(), database=database, system_database=system_database
    )
    assert check.passed and check.metadata["switched"].value == 1
    (switch,) = _rows(books, qbo_company_switches)
    assert switch["import_done_at"] is not None


def test_after_the_import_an_unconfirmed_supplier_still_waits(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    books.receive({"re-3.xml": _invoice("RE-SW-3")}, confirm=False)
    _connect(books, simulator.create_company(currency="EUR", country="DE"))
    books.allow(create_vendors=True)
    _import(books)
    assert books.push().held == 1
    assert books.queue()[0]["error_code"] == "supplier"
    assert books.qbo_records("Vendor") == [] and books.qbo_records("Bill") == []


def test_the_same_company_again_keeps_every_link(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    books.receive({"re-4.xml": _invoice("RE-SW-4")})
    assert books.push().pushed == 1
    vendors, bills, suppliers = books.vendors(), books.bills(), books.suppliers()
    assert _connect(books, books.qbo.company) is None  # new tokens, the same company
    assert (books.vendors(), books.bills()) == (vendors, bills)
    assert books.suppliers() == suppliers
    assert _rows(books, qbo_company_switches) == [] and _rows(books, qbo_archived_links) == []
    books.receive({"re-5.xml": _invoice("RE-SW-5")})
    counts = books.push()
    assert (counts.pushed, counts.held) == (1, 0)
    assert {b["VendorRef"]["value"] for b in books.qbo_records("Bill")} == {vendors[0]["qbo_id"]}


MALFORMED = [" 9130350000000001", "9130350000000001 ", "09130350000000001", "9130350000000001/",
             "", "  ", "R", "0", "91303500000000O1", "9130\u0663", "1" * 33, "-913035"]  # fmt: skip


@pytest.mark.parametrize("realm", MALFORMED)
def test_a_company_id_not_in_intuits_form_is_refused(realm):
    with pytest.raises(BadRealmId, match="is not a QuickBooks company id: Intuit's company id"):
        checked_realm_id(realm)


def test_company_ids_as_intuit_issues_them_pass():
    for realm in ("9130350000000001", "123145843599774", "4620816365000000000", "1"):
        assert checked_realm_id(realm) == realm


def test_qbo_connect_refuses_a_malformed_id_and_stores_nothing(
    sqlite_database, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(sqlite_database, simulator, tmp_path)
    realm = books.qbo.realm
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", sqlite_database.url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)
    monkeypatch.setenv("QBO_CLIENT_SECRET", "secret")
    monkeypatch.setenv("QBO_REFRESH_TOKEN", "refresh")
    slug = books.qbo.org["slug"]
    capsys.readouterr()
    argv = ["qbo-connect", "--org", slug, "--realm", f"{realm}/", "--client-id", "c", "--by", "x"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{realm + '/'!r} is not a QuickBooks company id" in err
    assert "Traceback" not in err
    with books.qbo.client() as client:
        assert client.realm_id == realm
    assert _rows(books, qbo_company_switches) == []


def test_a_push_that_breaks_off_on_our_side_leaves_no_row_sending(db, simulator, tmp_path):
    """Our database refuses what QBO answered (the IntegrityError of the issue, made here by a
    record that already holds the bill's id): the row is `failed` as `unknown`, not `sending`,
    not sent again on its own; retried, QBO's bill is found and linked, never made twice."""
    books = _books(db, simulator, tmp_path)
    docs = books.receive({"a.xml": _invoice("RE-BRK-A"), "b.xml": _invoice("RE-BRK-B")})
    a, b = docs["a.xml"], docs["b.xml"]
    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        conn.execute(
            insert(qbo_bills).values(
                organization_id=books.qbo.org_id,
                incoming_invoice_id=b["id"],
                entity="Bill",
                qbo_id="1",  # the id QBO gives the first bill
                vendor_qbo_id="99",
                document_version=0,
                fingerprint="x",
                state="deleted",
            )
        )
    counts = books.push(documents=[a["id"]])
    assert counts.failed == 1 and "IntegrityError" in counts.errors[0]
    (row,) = books.queue()
    assert (row["status"], row["error_code"]) == ("failed", "unknown")
    assert "IntegrityError" in row["error_message"]
    assert len(books.qbo_records("Bill")) == 1  # QBO has it; we could not record it
    assert books.push(documents=[a["id"]]).pushed == 0  # not sent again on its own

    with tenant_transaction(books.qbo.engine, books.qbo.org_id, write=True) as conn:
        conn.execute(qbo_bills.delete().where(qbo_bills.c.incoming_invoice_id == b["id"]))
    counts = books.push(documents=[a["id"]], retry_failed=True)
    assert (counts.linked, counts.failed) == (1, 0), counts.errors
    assert len(books.qbo_records("Bill")) == 1
    assert [r["status"] for r in books.queue()] == ["pushed"]


def test_qbo_connect_to_another_company_says_what_it_archived_and_payables_shows_it(
    sqlite_database, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(sqlite_database, simulator, tmp_path)
    books.receive({"re-6.xml": _invoice("RE-SW-6")})
    assert books.push().pushed == 1
    first, second = books.qbo.realm, simulator.create_company(currency="EUR", country="DE")
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", sqlite_database.url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)
    monkeypatch.setenv("QBO_CLIENT_SECRET", second.client_secret)
    monkeypatch.setenv("QBO_REFRESH_TOKEN", second.refresh_token)
    slug = books.qbo.org["slug"]
    capsys.readouterr()
    argv = ["qbo-connect", "--org", slug, "--realm", second.realm_id]
    assert main([*argv, "--client-id", second.client_id, "--by", "bert"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["company_switch"]["archived"]["qbo_bills"] == 1
    assert said["company_switch"]["next"] == f"invoice-pipelines qbo-import --org {slug}"
    (switch,) = _rows(books, qbo_company_switches)
    assert (switch["old_realm_id"], switch["new_realm_id"]) == (first, second.realm_id)
    assert switch["switched_by"] == "bert" and switch["import_done_at"] is None

    assert main(["qbo-payables", "--org", slug]) == 0
    out = capsys.readouterr().out
    assert f"QuickBooks company switched from {first} to {second.realm_id}" in out
    assert "import pending" in out and f"qbo-import --org {slug}" in out
