"""A customer's own early-payment discount steps (customers.skonto) on its invoices' documents,
over the organization's default: its steps in the XML's BT-20 and in words, none for a customer
who gets none, and a stored value that cannot be refused naming the customer."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import update

from invoice_pipelines.core.skonto import DiscountTerm, SkontoError
from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

D = Decimal


def _org(db):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={
            "seller": {**SELLER, "tax_number": "99/123/45678"},
            "skonto": [{"days": 10, "percent": "2"}],
        },
    )


def _customer(db, org, number: str, skonto) -> int:
    customer_id = customer(db.engine, org["id"], number, f"Kunde {number}")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(update(customers).where(customers.c.id == customer_id).values(skonto=skonto))
    return customer_id


def _read(tmp_path, number: str):
    (pdf,) = [p for p in tmp_path.rglob("*.pdf") if number in p.name]
    read = parse_document(pdf.read_bytes(), pdf.name)
    assert read.status == "VALIDATED", [e.to_json_dict() for e in read.errors]
    return read.invoice


def test_a_customers_own_steps_and_a_customer_without_discount(db, tmp_path):
    org = _org(db)
    own = _customer(db, org, "K-3", [{"days": 7, "percent": "3"}])
    none = _customer(db, org, "K-0", [])
    default = _customer(db, org, "K-D", None)
    ids = [sales_invoice(db.engine, org["id"], c) for c in (own, none, default)]  # 238.00 each
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]), ids)
    assert summary.failed == {}, summary.failed
    numbers = [summary.numbers[i] for i in ids]

    three = _read(tmp_path, numbers[0].replace("/", "_"))
    assert three.discount_terms == (DiscountTerm(7, D("3.00")),)
    # 3 % of 238.00 = 7.14 until 17.11.2026 (issued 10.11.2026)
    assert "Bei Zahlung bis zum 17.11.2026 gewähren wir 3 % Skonto (7,14 EUR)" in (
        three.payment_terms or ""
    )
    without = _read(tmp_path, numbers[1].replace("/", "_"))
    assert without.discount_terms == ()
    assert "Skonto" not in (without.payment_terms or "")
    assert "ohne Abzug" in (without.payment_terms or "")
    organization = _read(tmp_path, numbers[2].replace("/", "_"))
    assert organization.discount_terms == (DiscountTerm(10, D("2.00")),)


def test_a_stored_value_that_cannot_be_is_refused_naming_the_customer(db, tmp_path):
    org = _org(db)
    bad = _customer(db, org, "K-9", [{"days": 10, "percent": "75"}])
    invoice_id = sales_invoice(db.engine, org["id"], bad)
    store = LocalFiles(str(tmp_path))
    with pytest.raises(SkontoError, match="customer K-9") as refused:
        generate_documents(
            db.engine, store, find_organization(db.engine, org["slug"]), [invoice_id]
        )
    assert "\n" not in str(refused.value)
    assert list(tmp_path.rglob("*.pdf")) == []
