"""Received invoices with an early-payment discount (Skonto): XRechnung CII and UBL that our own
writer produces with #SKONTO# lines in BT-20 (they pass KoSIT's BR-DE-18), CII's structured
discount terms, and a text PDF that states its Skonto in words; the intake stores each step with
its last day and worth, `incoming list/show` show them, and the check warns before one expires."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import select

from invoice_pipelines.core.skonto import DiscountTerm
from invoice_pipelines.db.tables import incoming_discounts, incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.einvoice.cii import XRECHNUNG_GUIDELINE, write_cii
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines.einvoice.schematron import check_kosit
from invoice_pipelines.einvoice.ubl import write_ubl
from invoice_pipelines.intake.checks import discounts_not_expiring_result
from invoice_pipelines.intake.domain.discounts import expiring_discounts
from invoice_pipelines.intake.domain.listing import list_documents, show_document
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR, require_programs
from invoice_pipelines_tests.documents.test_build import EXTRAS, make_invoice
from invoice_pipelines_tests.intake.test_bad_input import own_invoice

D = Decimal
ISSUED = date(2026, 11, 2)  # make_invoice's issue date
STEPS = (DiscountTerm(7, D("3")), DiscountTerm(14, D("2"), base_amount=D("500.00")))


class _InProcess:
    def parse_many(self, items):
        return [parse_document(data, name) for data, name in items]


def run_intake(db, tmp_path, org, files: dict[str, bytes]) -> dict[str, dict]:
    """Drop, register and read the files as the upload sensor and the intake run do; each
    document's row by file name."""
    store = LocalUploads(str(tmp_path))
    for name, data in files.items():
        store.put(org["slug"], name, data)
        past = time.time() - 120
        os.utime(os.path.join(store.root, org["slug"], name), (past, past))
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, max_files_per_tick=len(files) + 1,
        only_organizations={org["slug"]},
    )  # fmt: skip
    ids = [i for b in scan.batches for i in b.document_ids]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids, parser=_InProcess(), ocr=None)
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(incoming_invoices).where(incoming_invoices.c.organization_id == org["id"])
        ).mappings()
        return {r["raw_json"]["filename"]: dict(r) for r in rows}


def _invoice(number: str):
    # 8 x 120.00 at 19 %: 960.00 net, 1142.40 due
    invoice = make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))], number=number)
    return replace(invoice, discount_terms=STEPS)


def _xrechnung(syntax: str, number: str) -> bytes:
    extras = {**EXTRAS, "delivery_date": ISSUED, "buyer_reference": "991-12345-67"}
    writer = write_ubl if syntax == "ubl" else write_cii
    keyword = "customization_id" if syntax == "ubl" else "guideline_id"
    return writer(_invoice(number), **{keyword: XRECHNUNG_GUIDELINE}, extra=extras)


@pytest.mark.parametrize("syntax", ["cii", "ubl"])
def test_an_xrechnung_with_skonto_passes_kosit_and_reads_back_its_steps(syntax):
    if not XRECHNUNG_RULES_DIR.is_dir():
        pytest.skip(f"KoSIT rules not found at {XRECHNUNG_RULES_DIR}")
    xml = _xrechnung(syntax, "RE-SK-1")
    # BR-DE-18 holds: each #SKONTO# line in its form, a line break after the last
    assert check_kosit(xml.decode(), syntax) == []
    outcome = parse_document(xml, f"skonto.{syntax}.xml")
    assert outcome.status == "VALIDATED", [e.to_json_dict() for e in outcome.errors]
    assert outcome.invoice.discount_terms == (
        DiscountTerm(7, D("3.00")),
        DiscountTerm(14, D("2.00"), base_amount=D("500.00")),
    )
    assert outcome.invoice.payment_terms.startswith("Zahlbar innerhalb von 14 Tagen ohne Abzug.")


def test_a_skonto_line_out_of_form_fails_kosit_and_is_not_read():
    if not XRECHNUNG_RULES_DIR.is_dir():
        pytest.skip(f"KoSIT rules not found at {XRECHNUNG_RULES_DIR}")
    xml = _xrechnung("cii", "RE-SK-2").replace(b"PROZENT=3.00#", b"PROZENT=3#")
    outcome = parse_document(xml, "bad-skonto.xml")
    assert "BR-DE-18" in {e.rule for e in outcome.errors}
    assert outcome.invoice.discount_terms == (DiscountTerm(14, D("2.00"), base_amount=D("500.00")),)


RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100"
CII_DISCOUNT_TERMS = f"""<ram:ApplicableTradePaymentDiscountTerms xmlns:ram="{RAM}" xmlns:udt="{UDT}">
  <ram:BasisDateTime><udt:DateTimeString format="102">20261110</udt:DateTimeString></ram:BasisDateTime>
  <ram:BasisPeriodMeasure unitCode="DAY">10</ram:BasisPeriodMeasure>
  <ram:BasisAmount currencyID="EUR">200.00</ram:BasisAmount>
  <ram:CalculationPercent>2.50</ram:CalculationPercent>
</ram:ApplicableTradePaymentDiscountTerms>"""


def test_cii_structured_discount_terms_are_read_with_their_own_start_day():
    root = etree.fromstring(_xrechnung("cii", "RE-SK-3"))
    (terms,) = root.xpath("//ram:SpecifiedTradePaymentTerms", namespaces={"ram": RAM})
    terms.append(etree.fromstring(CII_DISCOUNT_TERMS))
    outcome = parse_document(etree.tostring(root), "structured.xml")
    (term,) = outcome.invoice.discount_terms
    assert (term.days, term.percent, term.base_amount, term.source) == (
        10,
        D("2.50"),
        D("200.00"),
        "cii",
    )
    assert term.last_day(ISSUED) == date(2026, 11, 20)


def test_received_invoices_show_their_deadline_and_amount_and_the_check_warns(db, tmp_path):
    org = db.new_organization()
    files = {"cii.xml": _xrechnung("cii", "RE-SK-10"), "ubl.xml": _xrechnung("ubl", "RE-SK-11")}
    rows = run_intake(db, tmp_path, org, {**files, "plain.xml": own_invoice("NO-SK-1")})
    assert {name: r["status"] for name, r in rows.items()} == {
        "cii.xml": "VALIDATED",
        "ubl.xml": "VALIDATED",
        "plain.xml": "VALIDATED",
    }
    cii_id = rows["cii.xml"]["id"]

    # the day after issue both steps run: the larger one is what a payment today earns
    listed = {
        d["id"]: d
        for d in list_documents(
            db.engine, find_organization(db.engine, org["slug"]), today=date(2026, 11, 3)
        )
    }
    assert listed[cii_id]["discount"]["last_day"] == date(2026, 11, 9)
    assert (listed[cii_id]["discount"]["discount"], listed[cii_id]["discount"]["pay"]) == (
        D("34.27"),  # 3 % of 1142.40 = 34.272
        D("1108.13"),
    )
    assert listed[rows["plain.xml"]["id"]]["discount"] is None

    shown = show_document(
        db.engine, find_organization(db.engine, org["slug"]), cii_id, today=date(2026, 11, 12)
    )
    assert [(s["last_day"], s["percent"], s["discount"], s["pay"]) for s in shown["discounts"]] == [
        (date(2026, 11, 9), D("3.00"), D("34.27"), D("1108.13")),
        (date(2026, 11, 16), D("2.00"), D("10.00"), D("1132.40")),  # 2 % of the base 500.00
    ]
    # after the first last day only the second step is left
    assert shown["discount"]["last_day"] == date(2026, 11, 16)
    assert "#SKONTO#TAGE=7#PROZENT=3.00#" in shown["payment_terms"]

    with tenant_transaction(db.engine, org["id"]) as conn:
        found = expiring_discounts(conn, date(2026, 11, 7), 3)
    mine = [f for f in found if f["slug"] == org["slug"]]
    assert [(f["invoice_number"], f["last_day"], f["discount"]) for f in mine] == [
        ("RE-SK-10", date(2026, 11, 9), D("34.27")),
        ("RE-SK-11", date(2026, 11, 9), D("34.27")),
    ]
    result = discounts_not_expiring_result(mine, 3)
    assert not result.passed
    assert result.description == "2 discounts worth 68.54 EUR expire within 3 days"
    assert "RE-SK-10" in result.metadata["discounts"].value


def test_a_text_pdf_states_its_skonto_in_words(db, tmp_path):
    require_programs("pdftotext")
    invoice = make_invoice([("Schrauben", D("100"), D("2.50"), "S", D("19"))], number="TX-77")
    lines = render_invoice_text(
        invoice,
        payment_terms="Zahlbar innerhalb 14 Tagen mit 3 % Skonto, 30 Tage netto.",
    )
    org = db.new_organization()
    rows = run_intake(db, tmp_path, org, {"scan.pdf": write_text_pdf(lines)})
    document = rows["scan.pdf"]
    assert document["format"] == "text-pdf"
    shown = show_document(
        db.engine, find_organization(db.engine, org["slug"]), document["id"], today=ISSUED
    )
    # 250.00 net + 47.50 VAT = 297.50; 3 % = 8.925 -> 8.93 (half up)
    assert [(s["days"], s["last_day"], s["discount"], s["pay"]) for s in shown["discounts"]] == [
        (14, date(2026, 11, 16), D("8.93"), D("288.57"))
    ]


def test_a_corrected_issue_date_moves_the_last_day(db, tmp_path):
    require_programs("pdftotext")
    invoice = make_invoice([("Schrauben", D("100"), D("2.50"), "S", D("19"))], number="TX-78")
    lines = render_invoice_text(
        invoice, payment_terms="2 % Skonto bei Zahlung innerhalb von 10 Tagen"
    )
    # no issue date printed: the document waits for a person, whose date the term then counts from
    lines = [line for line in lines if "02.11.2026" not in line]
    org = db.new_organization()
    rows = run_intake(db, tmp_path, org, {"undated.pdf": write_text_pdf(lines)})
    document = rows["undated.pdf"]
    assert document["status"] == "NEEDS_REVIEW"
    before = show_document(
        db.engine, find_organization(db.engine, org["slug"]), document["id"], today=ISSUED
    )
    assert [s["last_day"] for s in before["discounts"]] == [None]
    review_document(
        db.engine,
        find_organization(db.engine, org["slug"]),
        document["id"],
        corrections={"issue_date": "2026-11-05"},
        confirm=False,
        reviewed_by="anna",
        expected_version=document["processing_version"],
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        last_days = (
            conn.execute(
                select(incoming_discounts.c.last_day).where(
                    incoming_discounts.c.incoming_invoice_id == document["id"]
                )
            )
            .scalars()
            .all()
        )
    assert last_days == [date(2026, 11, 15)]
