"""A credit note's lines are numbered 1, 2, ... on its own document, and its message's subject has
no gap where a name or number is missing."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pypdf
import pytest
from lxml import etree

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.delivery.domain.email import InvoiceMail, render
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_credit_note_documents import NS, invoice_per_format
from invoice_pipelines_tests.documents.test_pipeline import _documents, _org


def _line_ids(pdf: bytes) -> list[str]:
    xml = dict(pypdf.PdfReader(io.BytesIO(pdf)).attachments)["factur-x.xml"][0]
    return etree.fromstring(xml).xpath(
        "//ram:AssociatedDocumentLineDocument/ram:LineID/text()", namespaces=NS
    )


def test_a_credit_notes_lines_are_numbered_from_one_on_its_own_document(db, tmp_path):
    org = _org(db)
    numbers = invoice_per_format(db, org)  # each invoice: line 1 at 19 %, line 2 at 7 %
    by_amount = issue_credit_note(
        db.engine, find_organization(db.engine, org["id"]), numbers["facturx"], reason="Kulanz",
        amounts={(None, Decimal("19")): Decimal("10.00")}, issue_date=date(2026, 11, 20),
    )  # fmt: skip
    by_line = issue_credit_note(
        db.engine, find_organization(db.engine, org["id"]), numbers["xrechnung-cii"], reason="Leistung 2 nicht erbracht",
        lines={2: Decimal(1)}, issue_date=date(2026, 11, 20),
    )  # fmt: skip
    store = LocalFiles(str(tmp_path))

    assert not generate_documents(
        db.engine, store, find_organization(db.engine, org["slug"])
    ).failed

    docs = _documents(db, org["id"])
    for note in (by_amount, by_line):
        key = {kind: key for kind, _, key, _ in docs[note.id]}["facturx"]
        pdf = (tmp_path / key).read_bytes()
        # the only line is line 1 (before: 3, after the invoice's two lines; or 2, the invoice
        # line it credits)
        assert _line_ids(pdf) == ["1"]
        text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        [row] = [line for line in text.splitlines() if line.endswith(("10,00", "100,00"))][:1]
        assert row.split()[0] == "1", text


MAIL = InvoiceMail(
    number="GS-2026-000001",
    type_code="381",
    issue_date=date(2026, 11, 20),
    due_date=None,
    gross_total=Decimal("107.00"),
    amount_due=Decimal("0"),
    currency="EUR",
    seller="Müller Werkzeugbau GmbH",
    buyer="Kunde GmbH",
    recipient="kunde@example.de",
    language="de",
    iban=None,
    pdf=b"",
    pdf_name="GS-2026-000001.pdf",
    corrects_number="RE-2026-000002",
    corrects_date=date(2026, 11, 10),
)


@pytest.mark.parametrize(
    ("changes", "subject"),
    [
        ({}, "Rechnungskorrektur GS-2026-000001 zu Rechnung RE-2026-000002 von Müller Werkzeugbau GmbH"),
        ({"corrects_number": " "}, "Rechnungskorrektur GS-2026-000001 von Müller Werkzeugbau GmbH"),
        ({"seller": "\u200b Müller\tWerkzeugbau "}, "Rechnungskorrektur GS-2026-000001 zu Rechnung RE-2026-000002 von Müller Werkzeugbau"),
        ({"seller": "\u200b"}, "Rechnungskorrektur GS-2026-000001 zu Rechnung RE-2026-000002"),
        ({"language": "en", "seller": " "}, "Credit note GS-2026-000001 for invoice RE-2026-000002"),
    ],
)  # fmt: skip
def test_a_credit_notes_subject_leaves_out_what_is_missing(changes, subject):
    mail = replace(MAIL, **changes)
    assert render(mail, "email").splitlines()[0] == subject
    assert "  " not in render(mail, "text")
