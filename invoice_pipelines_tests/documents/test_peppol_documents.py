"""Peppol BIS Billing 3.0 documents as we write them (`prove_peppol`: the UBL writer's Peppol
flavour, read back through XSD + CEN's EN 16931 UBL rules + OpenPEPPOL's rules + our rules):
every VAT category, German, EU and non-EU buyers with their own kinds of participant id,
document-level allowances and charges, invoices and credit notes. Each must prove with no fatal
finding and read back as the invoice it was written from; what Peppol requires and an invoice
lacks is refused naming the rule."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest
from lxml import etree

from invoice_pipelines.core.invoice import Address, AllowanceCharge, Invoice
from invoice_pipelines.core.money import round_cents
from invoice_pipelines.documents.domain.build import prove_peppol
from invoice_pipelines.einvoice.cii import PEPPOL_BILLING_PROCESS, PEPPOL_BIS_GUIDELINE
from invoice_pipelines.einvoice.read import read_einvoice
from invoice_pipelines.einvoice.read_back import READ_BACK
from invoice_pipelines.einvoice.schematron import PEPPOL_RULES_SETTING
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR
from invoice_pipelines_tests.documents.test_build import EXTRAS, make_invoice

D = Decimal
NS = {
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
SELLER_ID = "9930:DE123456789"
# name, address, VAT id, Peppol participant id
BUYERS = {
    "de_public": ("Stadt Musterhausen", Address("Rathausplatz 1", "Musterhausen", "12345", "DE"), None, "0204:991-12345-67"),
    "de_business": ("Bäckerei Hoffmann e.K.", Address("Marktplatz 3", "München", "80331", "DE"), "DE987654321", "9930:DE987654321"),
    "be_business": ("Brasserie du Parc SA", Address("Rue Neuve 1", "Bruxelles", "1000", "BE"), "BE0123456749", "0208:0123456749"),
    "at_business": ("Wiener Bau GmbH", Address("Ring 1", "Wien", "1010", "AT"), "ATU12345678", "9914:ATU12345678"),
    "nl_business": ("Bakkerij de Molen BV", Address("Dam 1", "Amsterdam", "1012 JS", "NL"), "NL123456789B01", "0106:12345678"),
    "se_business": ("Verktyg AB", Address("Storgatan 1", "Stockholm", "111 22", "SE"), "SE556036079301", "0007:5560360793"),
    "no_business": ("Fjord Verktøy AS", Address("Karl Johans gate 1", "Oslo", "0154", "NO"), None, "0192:987654325"),
    "us_business": ("Acme Tools Inc.", Address("5th Avenue 1", "New York", "10001", "US"), None, "0088:4035811991021"),
}  # fmt: skip
RATES = {"S": D("19"), "Z": D("0"), "E": D("0"), "AE": D("0"), "K": D("0"), "G": D("0"),
         "O": D("0"), "L": D("7"), "M": D("4")}  # fmt: skip
# (category, buyer, type code, document-level allowances and charges): each category with the
# buyers the law lets it have, invoices and credit notes, with and without allowances/charges
CASES = [
    ("S", "de_public", "380", False),
    ("S", "de_business", "381", True),
    ("S", "be_business", "380", True),
    ("S", "us_business", "381", False),
    ("Z", "de_business", "380", False),
    ("Z", "nl_business", "381", True),
    ("E", "de_public", "380", True),
    ("E", "at_business", "381", False),
    ("AE", "de_business", "380", False),
    ("AE", "be_business", "381", True),
    ("K", "be_business", "380", True),
    ("K", "se_business", "381", False),
    ("K", "at_business", "380", False),
    ("G", "us_business", "380", True),
    ("G", "no_business", "381", False),
    ("O", "de_public", "380", False),
    ("O", "no_business", "381", True),
    ("L", "be_business", "380", False),
    ("M", "nl_business", "381", True),
]


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")


def peppol_invoice(
    category: str, buyer: str, type_code: str = "380", adjustments: bool = False
) -> tuple[Invoice, dict]:
    """An invoice of one VAT category (plus a 19 % line where the category may mix) to `buyer`,
    with a 2 % allowance and a freight charge when `adjustments`, totals as billing computes
    them; and the extras its Peppol document needs."""
    rate = RATES[category]
    rows = [("Maschine Typ X-200", D("2"), D("1249.50"), category, rate)]
    if category not in ("O", "S"):  # O may not mix with another category (BR-O-11)
        rows.append(("Wartung vor Ort", D("3"), D("99.95"), "S", D("19")))
    name, address, vat_id, participant = BUYERS[buyer]
    invoice = make_invoice(rows, type_code=type_code, buyer=name, buyer_vat=vat_id)
    invoice = replace(invoice, buyer_address=address)
    if adjustments:
        invoice = _with_adjustments(invoice, category, rate)
    extras = {
        **EXTRAS,
        "seller_peppol_id": SELLER_ID,
        "buyer_peppol_id": participant,
        "delivery_date": invoice.issue_date,
    }
    if address.country_code != "DE":
        # a foreign buyer quotes its purchase order (R003 takes either reference)
        extras.pop("buyer_reference")
        extras["order_reference"] = "PO-4711"
    if category == "K":
        extras["delivery_country"] = address.country_code
    if category == "O":
        # outside the VAT system: no VAT ids (BR-O-02..04), the seller known by its tax number
        invoice = replace(invoice, seller_vat_id=None)
        extras["seller_tax_number"] = "99/123/45678"
    return invoice, extras


def _with_adjustments(invoice: Invoice, category: str, rate: Decimal) -> Invoice:
    base = invoice.lines[0].net_amount
    allowance = AllowanceCharge(
        False, round_cents(base * D("2") / 100), base, D("2"), category, rate, "Treuerabatt"
    )
    charge = AllowanceCharge(True, D("45.00"), None, None, category, rate, "Fracht")
    breakdown = []
    for vat in invoice.vat_breakdown:
        basis = vat.basis
        if (vat.category, vat.rate) == (category, rate):
            basis = basis - allowance.amount + charge.amount
        breakdown.append(replace(vat, basis=basis, amount=round_cents(basis * vat.rate / 100)))
    net = invoice.line_total - allowance.amount + charge.amount
    tax = sum((vat.amount for vat in breakdown), D(0))
    return replace(
        invoice,
        allowances_charges=(allowance, charge),
        allowance_total=allowance.amount,
        charge_total=charge.amount,
        net_total=net,
        tax_total=tax,
        gross_total=net + tax,
        amount_due=net + tax,
        vat_breakdown=tuple(breakdown),
    )


def _what_a_receiver_reads(invoice: Invoice) -> tuple:
    return (
        invoice.number,
        invoice.type_code,
        invoice.issue_date,
        invoice.due_date,
        invoice.currency,
        invoice.seller_name,
        invoice.seller_vat_id,
        invoice.buyer_name,
        invoice.buyer_vat_id,
        invoice.buyer_address.country_code,
        invoice.line_total,
        invoice.allowance_total,
        invoice.charge_total,
        invoice.net_total,
        invoice.tax_total,
        invoice.gross_total,
        invoice.amount_due,
        invoice.iban,
        tuple(
            (ln.description, ln.quantity, ln.net_amount, ln.vat_category) for ln in invoice.lines
        ),
        tuple((v.category, v.rate, v.basis, v.amount) for v in invoice.vat_breakdown),
        tuple((a.is_charge, a.amount, a.vat_category) for a in invoice.allowances_charges),
    )


@pytest.mark.parametrize(("category", "buyer", "type_code", "adjustments"), CASES)
def test_every_peppol_document_proves_and_reads_back_as_its_invoice(
    category, buyer, type_code, adjustments
):
    invoice, extras = peppol_invoice(category, buyer, type_code, adjustments)
    data, errors = prove_peppol(invoice, extras, f"{invoice.number}.xml")
    assert errors == [] and data is not None

    root = etree.fromstring(data)
    assert etree.QName(root).localname == ("CreditNote" if type_code == "381" else "Invoice")
    assert root.findtext("cbc:CustomizationID", namespaces=NS) == PEPPOL_BIS_GUIDELINE
    assert root.findtext("cbc:ProfileID", namespaces=NS) == PEPPOL_BILLING_PROCESS
    endpoints = [
        f"{node.get('schemeID')}:{node.text}"
        for node in root.xpath("//cac:Party/cbc:EndpointID", namespaces=NS)
    ]
    assert endpoints == [SELLER_ID, BUYERS[buyer][3]]
    # no empty element anywhere (PEPPOL-EN16931-R008)
    assert [n.tag for n in root.iter() if len(n) == 0 and not (n.text or "").strip()] == []

    read = read_einvoice(data, "peppol.xml")
    assert read.status == "VALIDATED" and read.errors == [], read.errors
    assert read.verdict.sources["en16931"] == "checked"
    assert _what_a_receiver_reads(read.invoice) == _what_a_receiver_reads(invoice)
    syntax = "ubl-creditnote" if type_code == "381" else "ubl"
    peppol = READ_BACK.peppol_findings(data.decode(), syntax)
    assert [f.rule for f in peppol if f.severity == "error"] == []


def test_the_cases_cover_every_category_both_document_types_and_buyers_in_and_outside_the_eu():
    assert {c for c, *_ in CASES} == set(RATES)
    assert {t for _, _, t, _ in CASES} == {"380", "381"}
    assert {a for *_, a in CASES} == {True, False}
    assert {BUYERS[b][1].country_code for _, b, _, _ in CASES} >= {"DE", "BE", "AT", "US", "NO"}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"buyer_reference": None, "order_reference": None}, "PEPPOL-EN16931-R003"),
        ({"buyer_peppol_id": None}, "PEPPOL-EN16931-R010"),
        ({"seller_peppol_id": None}, "PEPPOL-EN16931-R020"),
        ({"buyer_peppol_id": "0088:4035811991022"}, "PEPPOL-COMMON-R040"),
        ({"buyer_peppol_id": "0208:0123456748"}, "PEPPOL-COMMON-R043"),
        ({"buyer_peppol_id": "9999:123"}, "PEPPOL-EN16931-CL008"),
    ],
)
def test_what_peppol_requires_and_the_invoice_lacks_is_refused_naming_the_rule(change, rule):
    invoice, extras = peppol_invoice("S", "be_business")
    extras.update(change)
    data, errors = prove_peppol(invoice, extras, "x.xml")
    assert data is None
    assert [e["rule"] for e in errors] == ["IP-DOC-WRITE"]
    assert rule in errors[0]["message"], errors


def test_seller_and_buyer_in_germany_need_the_german_terms():
    # DE-R-002/005/006/007: the seller's contact, as for an XRechnung
    invoice, extras = peppol_invoice("S", "de_business")
    for key in ("seller_contact_name", "seller_contact_phone"):
        extras.pop(key)
    data, errors = prove_peppol(invoice, extras, "x.xml")
    assert data is None
    assert "seller contact point (BT-41)" in errors[0]["message"]
    assert "seller contact telephone (BT-42)" in errors[0]["message"]
    # a Belgian buyer: the German rules do not apply
    invoice, extras = peppol_invoice("S", "be_business")
    for key in ("seller_contact_name", "seller_contact_phone"):
        extras.pop(key)
    assert prove_peppol(invoice, extras, "x.xml")[1] == []


def test_without_the_peppol_rules_no_peppol_document_is_built(monkeypatch):
    monkeypatch.delenv(PEPPOL_RULES_SETTING, raising=False)
    invoice, extras = peppol_invoice("S", "be_business")
    data, errors = prove_peppol(invoice, extras, "x.xml")
    assert data is None
    assert [e["rule"] for e in errors] == ["IP-DOC-PEPPOL"]
    assert PEPPOL_RULES_SETTING in errors[0]["message"]


def test_a_peppol_fatal_finding_the_writer_did_not_foresee_fails_the_document(monkeypatch):
    # the read-back, not the writer's own checks, decides: a document the rules refuse (here a
    # second note for a buyer outside Germany, R002, slipped in after writing) is not built
    from invoice_pipelines.documents.domain import build

    written = build.write_ubl

    def with_two_notes(*args, **kwargs) -> bytes:
        data = written(*args, **kwargs)
        note = b"<cbc:Note>eins</cbc:Note><cbc:Note>zwei</cbc:Note><cbc:DocumentCurrencyCode>"
        return data.replace(b"<cbc:DocumentCurrencyCode>", note, 1)

    monkeypatch.setattr(build, "write_ubl", with_two_notes)
    invoice, extras = peppol_invoice("S", "be_business")
    data, errors = prove_peppol(invoice, extras, "x.xml")
    assert data is None
    assert "PEPPOL-EN16931-R002" in {e["rule"] for e in errors}, errors


def test_a_credit_note_names_the_invoice_it_corrects_and_has_one_tax_total():
    invoice, extras = peppol_invoice("S", "be_business", "381")
    extras["preceding_invoice_number"] = "RE-2026-000041"
    data, errors = prove_peppol(invoice, extras, "x.xml")
    assert errors == []
    root = etree.fromstring(data)
    assert root.xpath(
        "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID/text()", namespaces=NS
    ) == ["RE-2026-000041"]
    assert len(root.xpath("cac:TaxTotal[cac:TaxSubtotal]", namespaces=NS)) == 1  # R053
