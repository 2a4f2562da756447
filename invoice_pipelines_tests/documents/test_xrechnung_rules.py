"""XRechnung documents against the official German KoSIT rules (read from
INVOICE_PIPELINES_XRECHNUNG_RULES_DIR, which the suite points at ../shared/reference/xrechnung):
intra-EU supplies with a full deliver-to address (BR-DE-10/11), dunning fee invoices (category O)
without VAT ids (BR-O-02), a KoSIT finding failing the document, and a missing configuration
stated rather than skipped."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import insert, select, update

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.db.tables import customers, sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain import build
from invoice_pipelines.documents.domain.build import (
    KOSIT_CHECKED,
    KOSIT_NOT_CONFIGURED,
    build_document,
)
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.einvoice.schematron import KOSIT_RULES_SETTING, check_kosit
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR
from invoice_pipelines_tests.documents.test_build import make_invoice, source
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice
from invoice_pipelines_tests.overdue.helpers import set_settings

D = Decimal
LEITWEG = "991-12345-67"
FORMATS = ["xrechnung-cii", "xrechnung-ubl"]


@pytest.fixture(autouse=True)
def _kosit_rules():
    if not XRECHNUNG_RULES_DIR.is_dir():
        pytest.skip(f"KoSIT rules not found at {XRECHNUNG_RULES_DIR} (../shared beside the repo)")


def _xpath(xml: bytes, path: str) -> list[str]:
    return [str(v) for v in etree.fromstring(xml).xpath(path)]


def _org(db, **changes):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={"seller": {**SELLER, "tax_number": "99/123/45678"}},
        **changes,
    )


def _public_buyer(db, org, customer_id: int, fmt: str) -> None:
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == customer_id)
            .values(
                einvoice_format=fmt,
                buyer_reference=LEITWEG,
                email="rechnung@beschaffung.example",
                street="Rathausplatz 1",
                postal_code="1010",
                city="Wien",
                country="AT",
            )
        )


def _documents(db, org, invoice_id: int) -> list[tuple]:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(d.kind, d.status, d.errors).where(d.sales_invoice_id == invoice_id)
        ).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_intra_eu_supply_gets_an_xrechnung_with_its_full_deliver_to_address(db, tmp_path, fmt):
    # before: the deliver-to address carried only the country, and KoSIT's BR-DE-10/11 refused
    # every XRechnung of an intra-EU supply
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-EU", "Wiener Bau GmbH", vat_id="ATU12345678")
    _public_buyer(db, org, buyer, fmt)
    invoice_id = sales_invoice(db.engine, org["id"], buyer, taxes=[("K", "0", "9000.00", "0.00")])
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [invoice_id]
    )
    assert summary.failed == {}, summary.failed
    assert sorted((k, s) for k, s, _ in _documents(db, org, invoice_id)) == [
        ("facturx", "generated"),
        ("xrechnung", "generated"),
    ]
    (xml_path,) = tmp_path.rglob("*_xrechnung.xml")
    xml = xml_path.read_bytes()
    if fmt == "xrechnung-ubl":
        where = "//*[local-name()='DeliveryLocation']/*[local-name()='Address']"
        city, postcode = "CityName", "PostalZone"
    else:
        where = "//*[local-name()='ShipToTradeParty']/*[local-name()='PostalTradeAddress']"
        city, postcode = "CityName", "PostcodeCode"
    assert _xpath(xml, f"{where}/*[local-name()='{city}']/text()") == ["Wien"]
    assert _xpath(xml, f"{where}/*[local-name()='{postcode}']/text()") == ["1010"]
    assert check_kosit(xml.decode(), "ubl" if fmt.endswith("ubl") else "cii") == []


@pytest.mark.parametrize("fmt", ["facturx", *FORMATS])
def test_a_dunning_fee_invoice_gets_documents_without_vat_ids(db, tmp_path, fmt):
    # before: the seller's VAT id was always written, and BR-O-02 failed every fee invoice
    today = date(2026, 11, 20)
    org = _org(db, timezone="UTC")
    set_settings(
        db,
        org,
        {
            "seller": {**SELLER, "tax_number": "99/123/45678"},
            "dunning": {"fee_invoices": True},
        },
    )
    org = {**org, "settings": None}
    buyer = customer(db.engine, org["id"], "K-FEE", "Stadt Musterhausen", vat_id="DE987654321")
    if fmt != "facturx":
        _public_buyer(db, org, buyer, fmt)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        # an old invoice, 20 days overdue, numbered apart from what batch invoicing will number
        conn.execute(
            insert(sales_invoices).values(
                organization_id=org["id"],
                invoice_number="ALT-90001",
                sequence_number=90001,
                customer_id=buyer,
                issue_date=date(2026, 9, 1),
                due_date=today - timedelta(days=20),
                currency="EUR",
                net_total=D("100.00"),
                tax_total=D("19.00"),
                gross_total=D("119.00"),
                amount_paid=D("0.00"),
                amount_due=D("119.00"),
                status="open",
            )
        )
    outcome = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=today)
    assert process_batch_job(
        db.engine, outcome.fee_invoice_job_id, system=db.system_engine, workers=1
    ).status == ("completed")
    with tenant_transaction(db.engine, org["id"]) as conn:
        fee_invoice = conn.execute(
            select(sales_invoices.c.id).where(
                sales_invoices.c.batch_job_id == outcome.fee_invoice_job_id
            )
        ).scalar_one()

    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [fee_invoice]
    )
    assert summary.failed == {}, summary.failed
    kinds = sorted(k for k, s, _ in _documents(db, org, fee_invoice) if s == "generated")
    assert kinds == (["facturx"] if fmt == "facturx" else ["facturx", "xrechnung"])
    for path in tmp_path.rglob("*.xml"):
        xml = path.read_bytes()
        assert b"DE123456789" not in xml and b"DE987654321" not in xml  # BR-O-02, BR-O-04
        assert b"99/123/45678" in xml  # the seller is identified by its tax number (BR-CO-26)


def test_a_fatal_kosit_finding_fails_the_xrechnung_with_its_rule():
    # a payment term in the KoSIT discount syntax without its percentage (BR-DE-18): EN 16931
    # has no opinion on the text, the German rules refuse it
    invoice = make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))])
    doc = source(invoice, einvoice_format="xrechnung-cii", leitweg_id=LEITWEG)
    doc.extras["payment_terms"] = "#SKONTO#TAGE=7#"
    built = build_document(doc)
    assert not built.ok and built.pdf is None and built.xrechnung is None
    assert built.xrechnung_rules == KOSIT_CHECKED
    rules = {e["rule"] for e in built.errors}
    assert "BR-DE-18" in rules, built.errors
    assert any("KoSIT" in e["message"] and "BR-DE-18" in e["message"] for e in built.errors)


def test_without_the_rules_configured_the_read_back_says_so_once(monkeypatch, caplog):
    monkeypatch.delenv(KOSIT_RULES_SETTING, raising=False)
    monkeypatch.setattr(build, "_kosit_warned", False)
    invoice = make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))])
    with caplog.at_level(logging.WARNING, logger=build.__name__):
        results = [
            build_document(source(invoice, einvoice_format=fmt, leitweg_id=LEITWEG))
            for fmt in FORMATS
        ]
    assert all(b.ok for b in results), [b.errors for b in results]
    assert [b.xrechnung_rules for b in results] == [KOSIT_NOT_CONFIGURED] * 2
    warnings = [r.getMessage() for r in caplog.records if KOSIT_NOT_CONFIGURED in r.getMessage()]
    assert len(warnings) == 1 and KOSIT_RULES_SETTING in warnings[0]
    facturx_only = build_document(source(invoice))
    assert facturx_only.ok and facturx_only.xrechnung_rules is None


def test_a_rules_folder_without_the_rules_fails_the_xrechnung_naming_the_setting(
    monkeypatch, tmp_path
):
    monkeypatch.setenv(KOSIT_RULES_SETTING, str(tmp_path))
    invoice = make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))])
    built = build_document(source(invoice, einvoice_format="xrechnung-ubl", leitweg_id=LEITWEG))
    assert not built.ok
    assert [e["rule"] for e in built.errors] == ["IP-DOC-KOSIT"]
    assert KOSIT_RULES_SETTING in built.errors[0]["message"]


@pytest.mark.parametrize("configured", [True, False])
def test_the_run_summary_says_what_the_xrechnungs_were_checked_against(
    db, tmp_path, monkeypatch, configured
):
    # without the setting the documents are still built; the asset's metadata must say so on
    # every run, not only a log line in a worker process
    if not configured:
        monkeypatch.delenv(KOSIT_RULES_SETTING, raising=False)
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-PUB", "Stadt Musterhausen")
    _public_buyer(db, org, buyer, "xrechnung-cii")
    invoice_id = sales_invoice(db.engine, org["id"], buyer)
    summary = generate_documents(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        [invoice_id],
    )
    assert summary.failed == {} and summary.xrechnung == 1
    expected = KOSIT_CHECKED if configured else KOSIT_NOT_CONFIGURED
    assert summary.xrechnung_rules == {expected: 1}
