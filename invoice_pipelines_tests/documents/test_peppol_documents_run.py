"""The documents run's Peppol BIS documents from the database (documents/domain/sources.py ->
documents/domain/build.py), not from invoices a test puts together: an organization on Peppol bills
customers on Peppol in and outside the EU (0204, 9930, 0106, 0208, 9914, 0088 and 0192 ids) in
each VAT category a German seller's invoices carry, and credits two of them. Every stored Peppol
document, read back as a receiver reads it, passes CEN's rules and OpenPEPPOL's with no fatal
finding and names the customer's participant id. (Sales invoices have no document-level
allowances or charges in the database; the writer's are proved in test_peppol_documents.py.)"""

from __future__ import annotations

from datetime import date

import pytest
from lxml import etree
from sqlalchemy import select

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.einvoice.cii import PEPPOL_BIS_GUIDELINE
from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.einvoice.schematron import check_peppol
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR
from invoice_pipelines_tests.delivery.test_peppol_sending import _customer, seller
from invoice_pipelines_tests.exports.books import sales_invoice

NS = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"}
SELLER_ID = "9930:DE123456789"
# customer number: name, country, VAT id, participant id, the invoice's VAT breakdown
# (category, rate, basis, amount), whether it is credited
BILLED = {
    "K-DE-S": ("Bäckerei Hoffmann e.K.", "DE", "DE987654321", "9930:DE987654321",
               [("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")], False),
    "K-DE-E": ("Stadt Musterhausen", "DE", None, "0204:991-12345-67",
               [("E", "0", "350.00", "0.00"), ("S", "19", "50.00", "9.50")], False),
    "K-NL-Z": ("Bakkerij de Molen BV", "NL", "NL123456789B01", "0106:12345678",
               [("Z", "0", "120.00", "0.00")], False),
    "K-BE-AE": ("Brasserie du Parc SA", "BE", "BE0123456749", "0208:0123456749",
                [("AE", "0", "800.00", "0.00")], True),
    "K-AT-K": ("Wiener Bau GmbH", "AT", "ATU12345678", "9914:ATU12345678",
               [("K", "0", "1250.00", "0.00")], False),
    "K-US-G": ("Acme Tools Inc.", "US", None, "0088:4035811991021",
               [("G", "0", "999.95", "0.00")], True),
    "K-NO-O": ("Fjord Verktøy AS", "NO", None, "0192:987654325",
               [("O", "0", "300.00", "0.00")], False),
}  # fmt: skip


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")


def test_the_documents_run_writes_peppol_documents_that_pass_cen_and_peppol(db, tmp_path):
    org = seller(db, SELLER_ID)
    expected: dict[int, tuple[str, str, str]] = {}  # invoice id -> (type code, buyer id, number)
    for number, (name, country, vat_id, participant, taxes, credited) in BILLED.items():
        customer_id = _customer(
            db, org["id"], number, name, country=country, vat_id=vat_id,
            email=f"{number.lower()}@example.com", peppol_participant=participant,
        )  # fmt: skip
        invoice_id = sales_invoice(db.engine, org["id"], customer_id, taxes=taxes)
        with tenant_transaction(db.engine, org["id"]) as conn:
            invoice_number = conn.execute(
                select(sales_invoices.c.invoice_number).where(sales_invoices.c.id == invoice_id)
            ).scalar_one()
        expected[invoice_id] = ("380", participant, invoice_number)
        if credited:
            note = issue_credit_note(
                db.engine,
                find_organization(db.engine, org["id"]),
                invoice_number,
                reason="Rücksendung",
                issue_date=date(2026, 11, 20),
            )
            expected[note.id] = ("381", participant, note.number)

    store = LocalFiles(str(tmp_path / "documents"))
    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert summary.peppol_failed == {} and not summary.failed
    assert summary.peppol == len(expected) == 9

    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        stored = {
            r.sales_invoice_id: r.storage_key
            for r in conn.execute(
                select(d.sales_invoice_id, d.storage_key).where(
                    d.organization_id == org["id"], d.kind == "peppol", d.status == "generated"
                )
            )
        }
    assert set(stored) == set(expected)
    categories = set()
    for invoice_id, (type_code, participant, number) in expected.items():
        data = store.read(stored[invoice_id])
        root = etree.fromstring(data)
        assert etree.QName(root).localname == ("CreditNote" if type_code == "381" else "Invoice")
        assert root.findtext("cbc:CustomizationID", namespaces=NS) == PEPPOL_BIS_GUIDELINE
        endpoints = [
            f"{e.get('schemeID')}:{e.text}" for e in root.iter(f"{{{NS['cbc']}}}EndpointID")
        ]
        assert endpoints == [SELLER_ID, participant]
        # as a receiver reads it: XSD, CEN's EN 16931 rules, ours, and OpenPEPPOL's
        read = read_einvoice(data, f"{number}.xml")
        assert read.status == "VALIDATED" and read.errors == [], (number, read.errors)
        assert read.invoice.number == number and read.invoice.type_code == type_code
        assert read.verdict.sources["en16931"] == "checked"
        syntax = "ubl-creditnote" if type_code == "381" else "ubl"
        fatal = [f.rule for f in check_peppol(data.decode(), syntax) if f.severity == "error"]
        assert fatal == [], (number, fatal)
        categories |= {v.category for v in read.invoice.vat_breakdown}
    # every category a German seller's invoices carry (L and M are the Canary Islands' and Ceuta's
    # and Melilla's; the writer's own test proves them, test_peppol_documents.py)
    assert categories == {"S", "E", "Z", "AE", "K", "G", "O"}
