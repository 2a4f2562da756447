"""An issued invoice's early-payment discount steps are fixed by its first document: recorded on
the invoice when the document is written, stated again by a document written again after the
organization or customer changed its steps; new invoices state the new steps."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, select, update

from invoice_pipelines.core.skonto import DiscountTerm
from invoice_pipelines.db.tables import organizations, sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

D = Decimal
SETTINGS = {"seller": {**SELLER, "tax_number": "99/123/45678"}}


def _read(tmp_path, number: str):
    (pdf,) = [p for p in tmp_path.rglob("*.pdf") if number.replace("/", "_") in p.name]
    read = parse_document(pdf.read_bytes(), pdf.name)
    assert read.status == "VALIDATED", [e.to_json_dict() for e in read.errors]
    return read.invoice


def _set_steps(db, org, steps) -> None:
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == org["id"])
            .values(settings={**SETTINGS, "skonto": steps})
        )


def _recorded(db, org, invoice_id: int):
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(sales_invoices.c.skonto_steps).where(sales_invoices.c.id == invoice_id)
        ).scalar_one()


def _write_again(db, org, store, invoice_id: int):
    """The invoice's document written once more (its rows gone, as after a lost file: removed by
    the owner, since the runtime login may not delete a row holding a recorded hash)."""
    with db.owner_engine.begin() as conn:
        conn.execute(
            delete(sales_invoice_documents).where(
                sales_invoice_documents.c.sales_invoice_id == invoice_id
            )
        )
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [invoice_id]
    )
    assert summary.generated == 1, summary.failed


def test_a_document_written_again_states_the_steps_of_the_first(db, tmp_path):
    org = db.new_organization(name="Müller Werkzeugbau GmbH", vat_id="DE123456789")
    _set_steps(db, org, [{"days": 10, "percent": "2"}])
    buyer = customer(db.engine, org["id"], "K-1", "Kunde K-1")
    first = sales_invoice(db.engine, org["id"], buyer)  # 238.00, issued 10.11.2026
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [first]
    )
    assert summary.failed == {}, summary.failed
    number = summary.numbers[first]
    assert _recorded(db, org, first) == [{"days": 10, "percent": "2"}]

    _set_steps(db, org, [{"days": 20, "percent": "5"}])
    _write_again(db, org, store, first)
    again = _read(tmp_path, number)
    assert again.discount_terms == (DiscountTerm(10, D("2.00")),)
    # 2 % of 238.00 = 4.76 until 20.11.2026
    assert "Bei Zahlung bis zum 20.11.2026 gewähren wir 2 % Skonto (4,76 EUR)" in (
        again.payment_terms or ""
    )
    assert "5 %" not in (again.payment_terms or "")
    assert _recorded(db, org, first) == [{"days": 10, "percent": "2"}]

    # an invoice written after the change states the new steps
    later = sales_invoice(db.engine, org["id"], buyer)
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [later]
    )
    assert summary.failed == {}, summary.failed
    assert _read(tmp_path, summary.numbers[later]).discount_terms == (DiscountTerm(20, D("5.00")),)
    assert _recorded(db, org, later) == [{"days": 20, "percent": "5"}]


def test_a_document_written_without_steps_is_written_again_without_them(db, tmp_path):
    org = db.new_organization(name="Müller Werkzeugbau GmbH", vat_id="DE123456789")
    _set_steps(db, org, [])
    buyer = customer(db.engine, org["id"], "K-2", "Kunde K-2")
    invoice_id = sales_invoice(db.engine, org["id"], buyer)
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [invoice_id]
    )
    assert summary.failed == {}, summary.failed
    assert _recorded(db, org, invoice_id) == []

    _set_steps(db, org, [{"days": 10, "percent": "2"}])
    _write_again(db, org, store, invoice_id)
    again = _read(tmp_path, summary.numbers[invoice_id])
    assert again.discount_terms == ()
    assert "Skonto" not in (again.payment_terms or "")
    assert _recorded(db, org, invoice_id) == []
