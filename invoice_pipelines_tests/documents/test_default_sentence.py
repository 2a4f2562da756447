"""The § 286(3) BGB sentence on invoices: dunning counts a consumer's default from 30 days after
the due date only when the organization says its invoices carry that sentence
(`settings.dunning.invoice_default_sentence`), so with the setting every invoice must carry it,
and without it none may."""

from __future__ import annotations

import subprocess

import pytest

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _pdf_text(tmp_path) -> str:
    (pdf,) = tmp_path.rglob("*.pdf")
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True
    ).stdout.decode()
    return " ".join(text.split())


@pytest.mark.parametrize("sentence", [True, False])
def test_the_invoice_says_when_the_customer_is_in_default(db, tmp_path, sentence):
    settings = {"seller": SELLER}
    if sentence:
        settings["dunning"] = {"invoice_default_sentence": True}
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings=settings
    )
    buyer = customer(db.engine, org["id"], "K-1", "Erika Mustermann")
    invoice_id = sales_invoice(db.engine, org["id"], buyer)

    summary = generate_documents(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        [invoice_id],
    )

    assert summary.failed == {} and summary.generated == 1
    text = _pdf_text(tmp_path)
    assert "Zahlbar innerhalb von 14 Tagen ohne Abzug." in text
    assert ("(§ 286 Abs. 3 BGB)" in text) is sentence
