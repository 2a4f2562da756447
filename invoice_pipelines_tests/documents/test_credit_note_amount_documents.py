"""A credit note of net amounts per VAT rate, and the rest credited after it, read back VALIDATED
in every format (Factur-X, XRechnung CII and UBL, KoSIT's rules where the suite has them)."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pypdf

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note, parse_amounts
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.documents.domain.build import KOSIT_CHECKED
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR
from invoice_pipelines_tests.documents.test_credit_note_documents import invoice_per_format
from invoice_pipelines_tests.documents.test_pipeline import _documents, _org

D = Decimal


def test_amount_credit_notes_and_the_rest_after_them_validate_in_every_format(db, tmp_path):
    org = _org(db)
    notes: dict[str, tuple[int, int]] = {}
    for fmt, number in invoice_per_format(db, org).items():
        # a price reduction at both rates, then everything that is left (the lines, less it)
        reduction = issue_credit_note(
            db.engine,
            find_organization(db.engine, org["id"]),
            number,
            reason="Preisminderung wegen Lieferverzug",
            amounts=parse_amounts("19=50.00,7=10.00"),
            issue_date=date(2026, 11, 20),
        )
        assert reduction.gross_total == D("50.00") + D("9.50") + D("10.00") + D("0.70")
        rest = issue_credit_note(
            db.engine,
            find_organization(db.engine, org["id"]),
            number,
            reason="Storno",
            issue_date=date(2026, 11, 21),
        )
        assert rest.gross_total == D("345.00") - reduction.gross_total
        notes[fmt] = (reduction.id, rest.id)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))

    assert not summary.failed
    if XRECHNUNG_RULES_DIR.is_dir():
        assert summary.xrechnung_rules == {KOSIT_CHECKED: 6}  # 2 invoices, 4 credit notes
    docs = _documents(db, org["id"])
    for fmt, note_ids in notes.items():
        for note_id in note_ids:
            by_kind = {kind: (status, key, errors) for kind, status, key, errors in docs[note_id]}
            status, key, errors = by_kind["facturx"]
            assert (status, errors) == ("generated", [])
            pdf = (tmp_path / key).read_bytes()
            read = parse_document(pdf, Path(key).name)
            assert (read.status, read.invoice.type_code) == ("VALIDATED", "381")
            if fmt == "facturx":
                continue
            status, key, errors = by_kind["xrechnung"]
            assert (status, errors) == ("generated", [])
            xml = (tmp_path / key).read_bytes()
            read = parse_document(xml, Path(key).name)
            assert (read.status, read.invoice.type_code) == ("VALIDATED", "381")
    # what the customer reads on the price reduction: the amount per rate, named for its invoice
    reduction_id = notes["facturx"][0]
    key = next(k for kind, _s, k, _e in docs[reduction_id] if kind == "facturx")
    text = " ".join(
        " ".join(
            page.extract_text()
            for page in pypdf.PdfReader(io.BytesIO((tmp_path / key).read_bytes())).pages
        ).split()
    )
    # (the rate in brackets wraps onto the description's second line)
    assert text.count("Preisminderung/Gutschrift zu RE-2026-000001") == 2
    assert "1 Stk 50,00 19 % 50,00" in text and "1 Stk 10,00 7 % 10,00" in text
    assert "Bruttobetrag 70,20 EUR" in text
