"""A credit note's documents name the invoice they correct (BT-25/BT-26) and read back VALIDATED."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf
from lxml import etree
from sqlalchemy import update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.build import KOSIT_CHECKED
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR
from invoice_pipelines_tests.documents.test_pipeline import _documents, _org
from invoice_pipelines_tests.exports.books import customer, sales_invoice

CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS = {"ram": RAM, "cac": CAC, "cbc": CBC}


def _cii_reference(xml: bytes) -> tuple[str, str]:
    root = etree.fromstring(xml)
    [number] = root.xpath(
        "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID/text()", namespaces=NS
    )
    [day] = root.xpath(
        "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/*/text()", namespaces=NS
    )
    return number, day


def _ubl_reference(xml: bytes) -> tuple[str, str]:
    root = etree.fromstring(xml)
    path = "/*/cac:BillingReference/cac:InvoiceDocumentReference"
    [number] = root.xpath(f"{path}/cbc:ID/text()", namespaces=NS)
    [day] = root.xpath(f"{path}/cbc:IssueDate/text()", namespaces=NS)
    return number, day


def invoice_per_format(db, org) -> dict[str, str]:
    """One customer per document format (Factur-X only, XRechnung CII, XRechnung UBL), each with
    an invoice of 10.11.2026 (200.00 at 19 %, 100.00 at 7 %): format -> invoice number."""
    formats = {"facturx": None, "xrechnung-cii": "991-12345-67", "xrechnung-ubl": "991-76543-21"}
    numbers = {}
    for n, (fmt, leitweg) in enumerate(formats.items(), start=1):
        who = customer(db.engine, org["id"], f"K-{n}", f"Kunde {n} GmbH")
        if leitweg:
            with tenant_transaction(db.engine, org["id"], write=True) as conn:
                conn.execute(
                    update(customers)
                    .where(customers.c.id == who)
                    .values(
                        einvoice_format=fmt,
                        email=f"rechnung{n}@example.de",
                        buyer_reference=leitweg,
                    )
                )
        sales_invoice(
            db.engine,
            org["id"],
            who,
            day=date(2026, 11, 10),
            taxes=[("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")],
        )
        numbers[fmt] = f"RE-2026-{n:06d}"
    return numbers


def test_a_credit_note_document_refers_to_its_invoice_and_validates(db, tmp_path):
    org = _org(db)
    credited = {}
    for fmt, invoice_number in invoice_per_format(db, org).items():
        note = issue_credit_note(
            db.engine,
            find_organization(db.engine, org["id"]),
            invoice_number,
            reason="Leistung 2 nicht erbracht",
            lines={2: Decimal(1)},
            issue_date=date(2026, 11, 20),
        )
        assert note.gross_total == Decimal("107.00")
        credited[fmt] = (note.id, note.number, invoice_number)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))

    assert not summary.failed
    if XRECHNUNG_RULES_DIR.is_dir():  # the suite's setting: XRechnungs are checked by KoSIT's rules
        assert summary.xrechnung_rules == {KOSIT_CHECKED: 4}  # two invoices, two credit notes
    docs = _documents(db, org["id"])
    for fmt, (note_id, note_number, invoice_number) in credited.items():
        by_kind = {kind: (status, key, errors) for kind, status, key, errors in docs[note_id]}
        status, key, errors = by_kind["facturx"]
        assert (status, errors) == ("generated", [])
        pdf = (tmp_path / key).read_bytes()
        read = parse_document(pdf, Path(key).name)
        assert read.status == "VALIDATED"
        assert (read.invoice.type_code, read.invoice.number) == ("381", note_number)
        [xml] = dict(pypdf.PdfReader(io.BytesIO(pdf)).attachments)["factur-x.xml"]
        assert _cii_reference(xml) == (invoice_number, "20261110")
        assert b"Leistung 2 nicht erbracht" in xml  # the reason, as the note (BT-22)
        # what the customer reads: which invoice is corrected and why, no request to pay
        text = " ".join(
            " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages).split()
        )
        assert (
            f"Rechnungskorrektur zu Rechnung {invoice_number} vom 10.11.2026. "
            "Grund: Leistung 2 nicht erbracht" in text
        )
        assert "Zahlbar" not in text and "überweisen" not in text
        # titled and labelled as the seller's correction, not as an invoice or a self-billing
        # "Gutschrift" (§ 14(2) UStG), and with no date to pay by
        assert f"Rechnungskorrektur Belegnummer: {note_number}" in text
        assert "Rechnungsnummer" not in text and "Fällig am" not in text
        assert "Gutschrift" not in text
        if fmt == "facturx":
            assert "xrechnung" not in by_kind
            continue
        status, key, errors = by_kind["xrechnung"]
        assert (status, errors) == ("generated", [])
        xml = (tmp_path / key).read_bytes()
        reference = _cii_reference(xml) if fmt == "xrechnung-cii" else _ubl_reference(xml)
        assert reference == (invoice_number, "20261110" if fmt == "xrechnung-cii" else "2026-11-10")
        read = parse_document(xml, Path(key).name)
        assert (read.status, read.invoice.type_code) == ("VALIDATED", "381")
