"""Issued invoices with the organization's early-payment discount (Skonto): the PDF states it in
words with its last day and amounts, the Factur-X and XRechnung XML carry it in BT-20 in KoSIT's
form (BR-DE-18) and pass the CEN and KoSIT rules, and a credit note states no discount."""

from __future__ import annotations

import subprocess
from decimal import Decimal

import pytest
from lxml import etree

from invoice_pipelines.core.skonto import DiscountTerm, SkontoError, terms_from_settings
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.einvoice.schematron import check_kosit
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR, require_programs
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.documents.test_xrechnung_rules import _public_buyer
from invoice_pipelines_tests.exports.books import customer, sales_invoice

D = Decimal
STEPS = [{"days": 10, "percent": "2.00"}, {"days": 20, "percent": "1"}]


def _org(db):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={"seller": {**SELLER, "tax_number": "99/123/45678"}, "skonto": STEPS},
    )


def _bt20(xml: bytes) -> str:
    (text,) = etree.fromstring(xml).xpath(
        "//*[local-name()='SpecifiedTradePaymentTerms']/*[local-name()='Description']/text()"
        " | //*[local-name()='PaymentTerms']/*[local-name()='Note']/text()"
    )
    return str(text)


@pytest.mark.parametrize("fmt", ["xrechnung-cii", "xrechnung-ubl"])
def test_an_issued_invoice_states_its_skonto_and_passes_cen_and_kosit(db, tmp_path, fmt):
    if not XRECHNUNG_RULES_DIR.is_dir():
        pytest.skip(f"KoSIT rules not found at {XRECHNUNG_RULES_DIR}")
    require_programs("pdftotext")
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Stadtwerke Musterstadt")
    _public_buyer(db, org, buyer, fmt)
    # 1000.00 net at 19 % and 500.00 at 7 %: 1725.00 due, issued 2026-11-10
    invoice_id = sales_invoice(
        db.engine,
        org["id"],
        buyer,
        taxes=[("S", "19", "1000.00", "190.00"), ("S", "7", "500.00", "35.00")],
    )
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [invoice_id]
    )
    assert summary.failed == {}, summary.failed

    (xml_path,) = tmp_path.rglob("*_xrechnung.xml")
    xml = xml_path.read_bytes()
    syntax = "ubl" if fmt.endswith("ubl") else "cii"
    assert check_kosit(xml.decode(), syntax) == []  # BR-DE-18 among them
    assert _bt20(xml).endswith("#SKONTO#TAGE=10#PROZENT=2.00#\n#SKONTO#TAGE=20#PROZENT=1.00#\n")
    read = parse_document(xml, xml_path.name)
    assert read.status == "VALIDATED", [e.to_json_dict() for e in read.errors]
    assert read.invoice.discount_terms == (DiscountTerm(10, D("2.00")), DiscountTerm(20, D("1.00")))

    (pdf_path,) = [p for p in tmp_path.rglob("*.pdf")]
    facturx = parse_document(pdf_path.read_bytes(), pdf_path.name)
    assert facturx.status == "VALIDATED", [e.to_json_dict() for e in facturx.errors]  # CEN
    assert len(facturx.invoice.discount_terms) == 2
    text = " ".join(
        subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, check=True)
        .stdout.decode()
        .split()
    )
    # 2 % of 1725.00 = 34.50 until 20.11.2026; 1 % = 17.25 until 30.11.2026
    assert "Zahlbar innerhalb von 14 Tagen netto." in text
    assert "Bei Zahlung bis zum 20.11.2026 gewähren wir 2 % Skonto (34,50 EUR)" in text
    assert "zu zahlen sind dann 1.690,50 EUR" in text
    assert "Bei Zahlung bis zum 30.11.2026 gewähren wir 1 % Skonto (17,25 EUR)" in text


def test_a_credit_note_states_no_discount(db, tmp_path):
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-2", "Bäckerei Hoffmann e.K.")
    credit_id = sales_invoice(db.engine, org["id"], buyer, type_code="381")
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"]), [credit_id]
    )
    assert summary.failed == {}, summary.failed
    (pdf_path,) = tmp_path.rglob("*.pdf")
    read = parse_document(pdf_path.read_bytes(), pdf_path.name)
    assert read.invoice.discount_terms == ()
    assert "SKONTO" not in (read.invoice.payment_terms or "")


@pytest.mark.parametrize(
    "setting",
    [
        {"skonto": {"days": 10}},
        {"skonto": [{"days": 10}]},
        {"skonto": [{"days": 10, "percent": "60"}]},
    ],
)
def test_a_wrong_setting_is_named_in_one_sentence(setting):
    with pytest.raises(SkontoError, match='settings\\["skonto"\\]'):
        terms_from_settings(setting)


def test_the_organization_default_reads_as_steps():
    assert terms_from_settings({"skonto": STEPS}) == [
        DiscountTerm(10, D("2.00"), source="settings"),
        DiscountTerm(20, D("1"), source="settings"),
    ]
    assert terms_from_settings({}) == []
