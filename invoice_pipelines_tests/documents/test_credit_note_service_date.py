"""A credit note's PDF (issue 37 item 6): its Leistungsdatum is the supply it corrects (the
corrected invoice's date, which is that invoice's Leistungsdatum), never the credit note's own
date; its title metadata names it a Rechnungskorrektur / credit note, not a Rechnung. Read as a
user's tools read it: the Info dictionary and the XMP with pypdf, the page with the intake's own
text extraction, the embedded CII's delivery date (BT-72)."""

from __future__ import annotations

import io
import re
from datetime import date
from decimal import Decimal

import pypdf
import pytest
from lxml import etree
from sqlalchemy import select, update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import customers, sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.einvoice.readers.pdf import open_pdf
from invoice_pipelines.intake.domain.formats.pdf_text import extract_text
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

SUPPLIED = date(2026, 11, 10)  # the invoice's date, its Leistungsdatum
CREDITED = date(2026, 11, 20)  # the credit note's own date
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
SERVICE = {"de": ("Leistungsdatum", "%d.%m.%Y"), "en": ("Delivery date", "%Y-%m-%d")}
KIND = {("de", False): "Rechnung", ("de", True): "Rechnungskorrektur"}
KIND |= {("en", False): "Invoice", ("en", True): "Credit note"}


def credit_second_line(db, org: dict, invoice_id: int, on: date):
    """A credit note of the invoice's second line, issued by billing on `on`."""
    with tenant_transaction(db.engine, org["id"]) as conn:
        number = conn.execute(
            select(sales_invoices.c.invoice_number).where(sales_invoices.c.id == invoice_id)
        ).scalar_one()
    return issue_credit_note(
        db.engine, find_organization(db.engine, org["id"]), number, reason="Leistung 2 nicht erbracht", lines={2: Decimal(1)},
        issue_date=on,
    )  # fmt: skip


def _documents(db, tmp_path, document_format: str) -> dict[tuple[str, bool], bytes]:
    """(language, credit note?) -> the stored PDF: per language an invoice of SUPPLIED and a
    credit note of CREDITED crediting its second line, built by the documents pipeline."""
    settings = {"seller": SELLER}
    if document_format == "pdf":
        settings["documents"] = {"format": "pdf"}  # plain PDFs, no e-invoice inside
    org = db.new_organization(name="Müller Werkzeugbau GmbH", vat_id="DE123456789",
                              settings=settings)  # fmt: skip
    made = {}
    for language in ("de", "en"):
        who = customer(db.engine, org["id"], f"K-{language}", f"Kunde {language}")
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(update(customers).where(customers.c.id == who).values(language=language))
        invoice_id = sales_invoice(
            db.engine, org["id"], who, day=SUPPLIED,
            taxes=[("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")],
        )  # fmt: skip
        note = credit_second_line(db, org, invoice_id, CREDITED)
        made[(language, False)], made[(language, True)] = invoice_id, note.id
    summary = generate_documents(
        db.engine, LocalFiles(str(tmp_path)), find_organization(db.engine, org["slug"])
    )
    assert not summary.failed and summary.generated == 4
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        keys = dict(
            conn.execute(
                select(d.sales_invoice_id, d.storage_key).where(
                    d.organization_id == org["id"], d.kind == "facturx"
                )
            ).all()
        )
    return {case: (tmp_path / keys[invoice_id]).read_bytes() for case, invoice_id in made.items()}


@pytest.mark.parametrize("document_format", ["facturx", "pdf"])
def test_a_credit_notes_pdf_states_the_supplys_date_and_calls_itself_a_correction(
    db, tmp_path, document_format
):
    pdfs = _documents(db, tmp_path, document_format)
    for (language, credit), pdf in pdfs.items():
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        number = "GS-2026-" if credit else "RE-2026-"
        title = reader.metadata.title
        assert re.fullmatch(
            rf"Müller Werkzeugbau GmbH: {KIND[(language, credit)]} {number}\d{{6}}", title
        ), title
        assert reader.metadata.subject == title
        assert reader.xmp_metadata.dc_title == {"x-default": title}  # the XMP says the same
        # the page, as the intake reads it
        text, _method = extract_text(pdf, open_pdf(pdf))
        label, form = SERVICE[language]
        assert re.findall(rf"{label}:\s*(\S+)", text) == [SUPPLIED.strftime(form)], text
        if document_format == "facturx":  # the e-invoice inside says the same (BT-72)
            xml = reader.attachments["factur-x.xml"][0]
            delivered = etree.fromstring(xml).xpath(
                "//ram:ActualDeliverySupplyChainEvent/ram:OccurrenceDateTime/*/text()",
                namespaces={"ram": RAM},
            )
            assert delivered == [SUPPLIED.strftime("%Y%m%d")]
