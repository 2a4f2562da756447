"""Every generated document over the space of invoices we issue: VAT categories (S 19/7, Z, E, AE,
K, G, O, L, M), sellers (VAT id, tax number only, neither), buyers (domestic, EU business, EU
consumer, outside the EU, public buyer with a Leitweg-ID), EUR or USD, invoice or credit note,
Factur-X or XRechnung CII/UBL.

Each document is built by the product's own path (`build_document`: write, embed, read back
through XSD + the CEN/Factur-X EN 16931 schematron + our rules, and the KoSIT XRechnung rules
for XRechnung) and must either prove with no fatal finding, or be refused naming the rule a
user can act on, and exactly when the law says it must be refused (`refusal` below).
The CII inside the Factur-X PDF is the same writer's output as the XRechnung CII (only BT-10,
BT-23 and BT-24 differ): CEN's CII rules reach our CII through it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.invoice import Address, Invoice
from invoice_pipelines.documents.domain.build import KOSIT_CHECKED, BuiltDocument, build_document
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines_tests.conftest import XRECHNUNG_RULES_DIR
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal
CATEGORIES = {
    "S19": ("S", D("19")),
    "S7": ("S", D("7")),
    "Z": ("Z", D("0")),
    "E": ("E", D("0")),
    "AE": ("AE", D("0")),
    "K": ("K", D("0")),
    "G": ("G", D("0")),
    "O": ("O", D("0")),
    "L": ("L", D("7")),  # IGIC, Canary Islands
    "M": ("M", D("4")),  # IPSI, Ceuta and Melilla
}
SELLERS = ("vat_id", "tax_number", "none")
BUYERS = {
    # name, address, VAT id, Leitweg-ID
    "domestic": ("Bäckerei Hoffmann e.K.", Address("Marktplatz 3", "München", "80331", "DE"), None, None),
    "eu_business": ("Wiener Bau GmbH", Address("Ring 1", "Wien", "1010", "AT"), "ATU12345678", None),
    "eu_consumer": ("Élodie Martin", Address("1 rue de Rivoli", "Paris", "75001", "FR"), None, None),
    "non_eu": ("Acme Tools Inc.", Address("5th Avenue 1", "New York", "10001", "US"), None, None),
    "public": ("Stadt Musterhausen", Address("Rathausplatz 1", "Musterhausen", "12345", "DE"), None, "991-12345-67"),
}  # fmt: skip
FORMATS = ("facturx", "xrechnung-cii", "xrechnung-ubl")
CURRENCIES = ("EUR", "USD")
TYPE_CODES = ("380", "381")


@pytest.fixture(autouse=True)
def _kosit_rules():
    if not XRECHNUNG_RULES_DIR.is_dir():
        pytest.skip(f"KoSIT rules not found at {XRECHNUNG_RULES_DIR} (../shared beside the repo)")


def refusal(category: str, seller: str, buyer_vat: str | None) -> str | None:
    """The rule EN 16931 refuses this combination with, or None when it must be issued."""
    if seller == "none":
        return "BR-CO-26"  # the supplier cannot be identified (no BT-29/30/31)
    if category == "K" and (seller != "vat_id" or not buyer_vat):
        return "BR-IC-02"  # intra-EU supply: both VAT ids
    if category == "G" and seller != "vat_id":
        return "BR-G-02"  # export: the seller's VAT id
    if category == "AE" and not buyer_vat:
        return "BR-AE-02"  # reverse charge: the buyer's VAT id (or legal registration)
    return None


def generated(
    category: str, seller: str, buyer: str, currency: str, type_code: str, fmt: str, lines
) -> tuple[Invoice, BuiltDocument, str | None]:
    code, rate = CATEGORIES[category]
    rows = [(text, quantity, price, code, rate) for text, quantity, price in lines]
    if code != "O" and len(rows) > 1:
        rows[-1] = (*rows[-1][:3], "S", D("19"))  # a mixed invoice (O may not mix, BR-O-11)
    name, address, buyer_vat, leitweg = BUYERS[buyer]
    invoice = make_invoice(rows, type_code=type_code, buyer=name, buyer_vat=buyer_vat)
    invoice = replace(
        invoice,
        buyer_address=address,
        currency=currency,
        seller_vat_id="DE123456789" if seller == "vat_id" else None,
    )
    doc = source(invoice, einvoice_format=fmt, leitweg_id=leitweg or "K-1001")
    if seller == "tax_number":
        doc.extras["seller_tax_number"] = "99/123/45678"
    if code == "K":
        doc.extras.pop("delivery_country", None)  # the writer's own default: the buyer's address
    built = build_document(doc)
    return invoice, built, refusal(code, seller, buyer_vat)


def check(invoice: Invoice, built: BuiltDocument, expected: str | None, fmt: str) -> None:
    if expected is not None:
        assert not built.ok and built.pdf is None and built.xrechnung is None
        named = [e for e in built.errors if expected in e["rule"] or expected in e["message"]]
        assert named, (expected, built.errors)
        assert all(e["rule"].startswith(("BR-", "IP-DOC-")) for e in built.errors), built.errors
        return
    assert built.ok, built.errors
    read = parse_document(built.pdf, "x.pdf")
    assert read.status == "VALIDATED", read.errors
    assert (read.invoice.number, read.invoice.gross_total) == (invoice.number, invoice.gross_total)
    if fmt == "facturx":
        assert built.xrechnung is None and built.xrechnung_rules is None
    else:
        # read back through XSD + CEN (UBL) + our rules inside build_document, and KoSIT
        assert built.xrechnung is not None and built.xrechnung_rules == KOSIT_CHECKED


_lines = st.lists(
    st.tuples(
        st.sampled_from(["Beratung", "Maschine Typ X-200", "Wartung vor Ort", "Gebühr"]),
        st.decimals(D("0.5"), D("40"), places=1),
        st.decimals(D("0.10"), D("2500"), places=2),
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    category=st.sampled_from(sorted(CATEGORIES)),
    seller=st.sampled_from(SELLERS),
    buyer=st.sampled_from(sorted(BUYERS)),
    currency=st.sampled_from(CURRENCIES),
    type_code=st.sampled_from(TYPE_CODES),
    fmt=st.sampled_from(FORMATS),
    lines=_lines,
)
def test_every_generated_document_proves_or_names_the_rule(
    category, seller, buyer, currency, type_code, fmt, lines
):
    _run(category, seller, buyer, currency, type_code, fmt, lines)


def _run(category, seller, buyer, currency, type_code, fmt, lines) -> None:
    invoice, built, expected = generated(category, seller, buyer, currency, type_code, fmt, lines)
    check(invoice, built, expected, fmt)


# every category with every kind of seller and every buyer, in both syntaxes of XRechnung and as
# Factur-X, whatever order the random campaign above takes (currency and type code rotate)
_SWEEP = [
    (category, seller, buyer, FORMATS[i % 3], CURRENCIES[i % 2], TYPE_CODES[(i // 2) % 2])
    for i, (category, seller, buyer) in enumerate(
        itertools.product(sorted(CATEGORIES), SELLERS, sorted(BUYERS))
    )
]


@pytest.mark.parametrize(("category", "seller", "buyer", "fmt", "currency", "type_code"), _SWEEP)
def test_every_category_seller_and_buyer(category, seller, buyer, fmt, currency, type_code):
    _run(category, seller, buyer, currency, type_code, fmt, [("Beratung", D("3"), D("99.95"))])
