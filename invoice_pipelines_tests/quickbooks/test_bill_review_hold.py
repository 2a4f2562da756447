"""A supplier invoice back in review holds its bill: a person reopens a booked document, the push
deletes its unpaid bill in QuickBooks, and once the person confirms it the bill is created again
(one bill, a new requestid); a paid bill is not deleted but held as a conflict the check and
`qbo-payables` show; a delete whose answer was lost is not sent again on its own. The real
intake, the review functions a person uses, the production client and the simulator over HTTP,
on PostgreSQL and SQLite."""

from __future__ import annotations

import pytest
from dagster import build_asset_check_context
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import sync_conflicts
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.corrections import reopen_exported
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.quickbooks.checks import qbo_bills_waiting_check
from invoice_pipelines.quickbooks.domain.sync.bills import describe_documents
from invoice_pipelines.quickbooks.domain.sync.common import realm_lease
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of


def _books(database, simulator, tmp_path) -> Books:
    books = Books(connect(database, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    return books


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    return _books(db, simulator, tmp_path)


def _booked(books: Books, number: str) -> tuple[dict, dict]:
    """A supplier invoice read, pushed (EXPORTED) and its bill in QuickBooks."""
    (doc,) = books.receive({f"{number}.xml": xml_of(supplier_invoice(number))}).values()
    books.push()
    assert books.document(doc["id"])["status"] == "EXPORTED"
    (bill,) = [b for b in books.qbo_records("Bill") if b["DocNumber"] == number]
    return doc, bill


def _reopen(books: Books, doc: dict) -> dict:
    """As a person does it: the booked document back to VALIDATED through the export's
    correction path, then reopened for review with a reason."""
    engine, org_id = books.qbo.engine, books.qbo.org_id
    reopened, refused = reopen_exported(
        engine, org_id, [doc["id"]], reason="IBAN prüfen", requested_by="anna"
    )
    assert (reopened, refused) == ([doc["id"]], {})
    current = books.document(doc["id"])
    review_document(
        engine,
        find_organization(engine, org_id),
        doc["id"],
        reviewed_by="anna",
        reopen=True,
        reason="the supplier's bank account looks changed",
        expected_version=current["processing_version"],
    )
    held = books.document(doc["id"])
    assert held["status"] == "NEEDS_REVIEW"
    return held


def _confirm(books: Books, doc: dict) -> None:
    current = books.document(doc["id"])
    review_document(
        books.qbo.engine,
        find_organization(books.qbo.engine, books.qbo.org_id),
        doc["id"],
        reviewed_by="anna",
        confirm=True,
        expected_version=current["processing_version"],
    )
    assert books.document(doc["id"])["status"] == "VALIDATED"


def _deletes_sent(books: Books, since: int = 0) -> list[dict]:
    return [
        r
        for r in books.qbo.sim.requests(books.qbo.realm)[since:]
        if r["params"].get("operation") == "delete"
    ]


def _bill_creates(books: Books) -> list[str]:
    """The requestids of the bills created (POST /bill without an operation), in order."""
    return [
        r["requestid"]
        for r in books.qbo.sim.requests(books.qbo.realm)
        if r["method"] == "POST"
        and r["path"].endswith("/bill")
        and not r["params"].get("operation")
        and r.get("status") == 200
    ]


def test_a_reopened_document_loses_its_unpaid_bill_until_a_person_confirms_it(books):
    doc, bill = _booked(books, "RE-REV-1")
    held = _reopen(books, doc)

    counts = books.push()
    assert (counts.pushed, counts.failed, counts.conflicts) == (1, 0, 0)
    # the bill is gone from QuickBooks while the document is in review, and our record says so
    assert books.qbo_records("Bill") == []
    assert bill["Id"] in books.qbo.sim.deleted(books.qbo.realm, "Bill")
    assert books.bills()[doc["id"]]["state"] == "deleted"
    (delete,) = [r for r in books.queue() if r["action"] == "delete"]
    assert (delete["status"], delete["version"]) == ("pushed", held["processing_version"])
    said = describe_documents(books.qbo.engine, books.qbo.org_id, [doc["id"]])
    assert said[doc["id"]] == f"Bill {bill['Id']} deleted; the document is NEEDS_REVIEW"
    # nothing more to do while it waits for the person
    again = books.push()
    assert (again.pushed, again.failed) == (0, 0) and len(_deletes_sent(books)) == 1

    _confirm(books, doc)
    counts = books.push()
    assert (counts.pushed, counts.failed) == (1, 0)
    # one bill again: a new one, created with the confirmed version's requestid
    (anew,) = books.qbo_records("Bill")
    assert anew["Id"] != bill["Id"] and anew["DocNumber"] == "RE-REV-1"
    assert anew["TotalAmt"] == bill["TotalAmt"]
    first, second = _bill_creates(books)
    assert first != second
    record = books.bills()[doc["id"]]
    assert (record["state"], record["qbo_id"]) == ("active", anew["Id"])
    # its files go with the new bill, once
    linked = [
        a["FileName"]
        for a in books.qbo_records("Attachable")
        if a["AttachableRef"][0]["EntityRef"]["value"] == anew["Id"]
    ]
    assert sorted(linked) == ["RE-REV-1.pdf", "RE-REV-1.xml"]
    assert books.document(doc["id"])["status"] == "EXPORTED"


def test_a_rejected_document_after_review_loses_its_bill_too(books):
    doc, bill = _booked(books, "RE-REV-2")
    held = _reopen(books, doc)
    review_document(
        books.qbo.engine,
        find_organization(books.qbo.engine, books.qbo.org_id),
        doc["id"],
        reviewed_by="anna",
        reject="not our supplier",
        expected_version=held["processing_version"],
    )
    counts = books.push()
    assert counts.pushed == 1 and books.qbo_records("Bill") == []
    assert books.bills()[doc["id"]]["state"] == "deleted"


def test_a_paid_bill_back_in_review_is_a_conflict_a_person_sees(
    fresh_db, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(fresh_db, simulator, tmp_path)
    doc, bill = _booked(books, "RE-REV-P")
    books.pay(bill, "100.00")
    _reopen(books, doc)
    before = len(books.qbo.sim.requests(books.qbo.realm))

    counts = books.push()
    assert (counts.conflicts, counts.pushed, counts.failed) == (1, 0, 0)
    # QuickBooks keeps the bill: no delete was even asked for
    assert [b["Id"] for b in books.qbo_records("Bill")] == [bill["Id"]]
    assert _deletes_sent(books, before) == []
    assert books.bills()[doc["id"]]["state"] == "active"
    (delete,) = [r for r in books.queue() if r["action"] == "delete"]
    assert (delete["status"], delete["error_code"]) == ("conflict", "paid")
    message = delete["error_message"]
    assert "back in review" in message and "is paid (100.00 of 245.83" in message
    assert "confirm the document in review" in message
    with tenant_transaction(books.qbo.engine, books.qbo.org_id) as conn:
        (conflict,) = conn.execute(
            select(sync_conflicts.c.entity, sync_conflicts.c.status, sync_conflicts.c.local_id)
        ).all()
    assert tuple(conflict) == ("bill", "open", doc["id"])

    # the check in the UI lists it ...
    database = Database(url=fresh_db.url)
    system_database = SystemDatabase(url=fresh_db.url)
    check = qbo_bills_waiting_check(
        build_asset_check_context(), database=database, system_database=system_database
    )
    assert not check.passed and check.metadata["waiting"].value == 1
    table = check.metadata["documents"].value
    assert "RE-REV-P" in table and "is paid" in table
    # ... and so does the command
    for name, value in {
        "INVOICE_PIPELINES_DB_URL": fresh_db.url,
        "INVOICE_PIPELINES_QBO_TOKEN_KEY": TOKEN_KEY,
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["qbo-payables", "--org", books.qbo.org["slug"]]) == 0
    out = capsys.readouterr().out
    assert f"held, a conflict: document {doc['id']} (RE-REV-P)" in out and "is paid" in out

    # the person confirms the document: the bill is its bill again, nothing is held any more
    _confirm(books, doc)
    counts = books.push()
    assert counts.failed == 0
    assert [b["Id"] for b in books.qbo_records("Bill")] == [bill["Id"]]
    assert books.document(doc["id"])["status"] == "EXPORTED"
    assert qbo_bills_waiting_check(
        build_asset_check_context(), database=database, system_database=system_database
    ).passed


def test_a_delete_whose_answer_was_lost_is_not_sent_again_on_its_own(books):
    doc, bill = _booked(books, "RE-REV-L")
    _reopen(books, doc)
    sim, realm = books.qbo.sim, books.qbo.realm
    # QuickBooks deletes the bill, but every answer is lost, more often than the client retries
    sim.inject(realm, "drop_after_commit", count=20, path_contains="operation=delete")
    first = books.push()
    assert (first.pushed, first.failed) == (0, 1)
    (delete,) = [r for r in books.queue() if r["action"] == "delete"]
    assert delete["status"] == "sending"  # the outcome is unknown
    assert books.qbo_records("Bill") == []  # QBO did it; we do not know that yet
    assert books.bills()[doc["id"]]["state"] == "active"
    sim.clear_faults(realm)

    # a run without the organization's lease leaves the unknown row alone: nothing is sent
    before = len(sim.requests(realm))
    books.push()
    assert _deletes_sent(books, before) == []
    assert [r["status"] for r in books.queue() if r["action"] == "delete"] == ["sending"]

    # the next run under the lease asks QBO first, finds the bill gone, and sends nothing
    with realm_lease(books.qbo.engine, books.qbo.org_id, "next-run"):
        second = books.push()
    assert second.failed == 0
    assert _deletes_sent(books, before) == []
    assert books.bills()[doc["id"]]["state"] == "deleted"
    assert [r["status"] for r in books.queue() if r["action"] == "delete"] == ["pushed"]

    _confirm(books, doc)
    books.push()
    (anew,) = books.qbo_records("Bill")
    assert anew["Id"] != bill["Id"]
