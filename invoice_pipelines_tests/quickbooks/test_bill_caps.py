"""The caps of a bill, with a clear wait: an invoice with more lines than a bill takes here waits
for a person (nothing booked in part, no vendor created for it); a file larger than QuickBooks
takes is not uploaded and the bill's record says which and why; a readable PDF the writer
refuses is said on the bill's record too, and `qbo-payables` lists both. The real intake, the
production client and the simulator over HTTP, on PostgreSQL and SQLite."""

from __future__ import annotations

from decimal import Decimal

import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.quickbooks.domain.sync.bill_body import MAX_BILL_LINES
from invoice_pipelines.quickbooks.domain.sync.bills import (
    describe_documents,
    letter_pdf,
    push_bills,
)
from invoice_pipelines_devtools.demo.invoices import LOGISTICS_SUPPLIER, OFFICE_SUPPLIER, LineItem
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of

D = Decimal


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    books = Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    return books


def _lines(count: int) -> list[LineItem]:
    return [LineItem(f"Schraube M{n % 12 + 3}, Karton", D("1"), D("2.50")) for n in range(count)]


def _uploads(books: Books) -> list[dict]:
    return [
        r
        for r in books.qbo.sim.requests(books.qbo.realm)
        if r["method"] == "POST" and r["path"].endswith("/upload")
    ]


def _payables_output(books: Books, monkeypatch, capsys) -> str:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", books.qbo.db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)
    capsys.readouterr()
    assert main(["qbo-payables", "--org", books.qbo.org["slug"]]) == 0
    return capsys.readouterr().out


def test_an_invoice_longer_than_a_bill_takes_waits_and_nothing_of_it_is_booked(
    books, monkeypatch, capsys
):
    long = supplier_invoice("NH-LONG", seller=LOGISTICS_SUPPLIER, lines=_lines(MAX_BILL_LINES + 1))
    docs = books.receive({"long.xml": xml_of(long), "short.xml": xml_of(supplier_invoice("RE-S"))})
    long_doc = docs["long.xml"]
    assert long_doc["status"] == "VALIDATED"
    counts = books.push()
    assert counts.held == 1 and counts.failed == 0
    # the short one is booked; of the long one nothing: no bill, not even its vendor
    assert [b["DocNumber"] for b in books.qbo_records("Bill")] == ["RE-S"]
    assert [v["DisplayName"] for v in books.qbo_records("Vendor")] == [OFFICE_SUPPLIER.name]
    (row,) = [r for r in books.queue() if r["incoming_invoice_id"] == long_doc["id"]]
    assert (row["status"], row["error_code"]) == ("failed", "lines")
    assert "has 1,001 lines; a QuickBooks bill takes at most 1,000" in row["error_message"]
    assert "book it in QuickBooks by hand" in row["error_message"]
    assert books.document(long_doc["id"])["status"] == "VALIDATED"
    said = describe_documents(books.qbo.engine, books.qbo.org_id, [long_doc["id"]])
    assert said[long_doc["id"]].startswith("waits: the invoice has 1,001 lines")
    out = _payables_output(books, monkeypatch, capsys)
    assert f"waiting: document {long_doc['id']} (NH-LONG): the invoice has 1,001 lines" in out

    # the next run holds it again and sends nothing for it
    again = books.push()
    assert (again.held, again.pushed) == (1, 0)
    assert len(books.qbo_records("Bill")) == 1 and len(books.qbo_records("Vendor")) == 1


def test_a_file_larger_than_quickbooks_takes_is_not_uploaded_and_the_bill_says_which(
    books, monkeypatch, capsys
):
    xml = xml_of(supplier_invoice("RE-BIG"))
    (doc,) = books.receive({"big.xml": xml}).values()
    # the cap (100 MB in production) lowered to just above the XML: its readable PDF is larger
    counts = books.push(max_attachment_bytes=len(xml) + 1)
    assert (counts.pushed, counts.failed) == (1, 0)  # the bill (its vendor: counts.of)
    (bill,) = books.qbo_records("Bill")
    assert [a["FileName"] for a in books.qbo_records("Attachable")] == ["big.xml"]
    assert len(_uploads(books)) == 1  # the PDF was never sent
    files = books.bills()[doc["id"]]["attachments"]
    assert set(files["original"]) == {"id", "file"}
    readable = files["readable"]
    assert readable["file"] == "big.pdf"
    assert (
        f"more than the {len(xml) + 1:,} bytes QuickBooks takes in one file: not uploaded"
        in (readable["skipped"])
    )
    assert books.document(doc["id"])["status"] == "EXPORTED"  # booked all the same
    said = describe_documents(books.qbo.engine, books.qbo.org_id, [doc["id"]])[doc["id"]]
    assert said.startswith(f"Bill {bill['Id']} in QuickBooks; the document is EXPORTED")
    assert "the readable PDF 'big.pdf' is not attached" in said
    out = _payables_output(books, monkeypatch, capsys)
    assert f"bill of document {doc['id']} (RE-BIG): the readable PDF 'big.pdf'" in out

    # below both: the original stays in our archive, the bill still goes
    (small,) = books.receive({"tiny.xml": xml_of(supplier_invoice("RE-TINY"))}).values()
    books.push(max_attachment_bytes=1000)
    files = books.bills()[small["id"]]["attachments"]
    assert "(the original stays in our archive)" in files["original"]["skipped"]
    assert files["original"]["file"] == "tiny.xml" and "readable" in files
    assert len(_uploads(books)) == 1
    assert {b["DocNumber"] for b in books.qbo_records("Bill")} == {"RE-BIG", "RE-TINY"}


def test_a_readable_pdf_the_writer_refuses_is_said_on_the_bills_record(books):
    # a hundred lines print on three pages; the letter writer takes two by default
    files = {"hundred.xml": xml_of(supplier_invoice("RE-100", lines=_lines(100)))}
    (doc,) = books.receive(files).values()
    with books.qbo.client() as client:
        counts = push_bills(
            books.qbo.engine,
            books.qbo.organization,
            client,
            read_upload=books.store.read,
            write_letter=letter_pdf(PdfaLetters()),
        )
    assert counts.failed == 0
    (bill,) = books.qbo_records("Bill")
    assert len(bill["Line"]) == 100
    assert [a["FileName"] for a in books.qbo_records("Attachable")] == ["hundred.xml"]
    readable = books.bills()[doc["id"]]["attachments"]["readable"]
    assert readable["file"] == "hundred.pdf"
    assert readable["skipped"].startswith("no readable PDF: the writer refused it: the letter")
    assert "3 pages" in readable["skipped"]
