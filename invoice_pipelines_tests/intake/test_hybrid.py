"""A hybrid PDF's page against its XML (intake/domain/hybrid.py): a page that shows another invoice is
named, with both values; a page that agrees, in whatever notation it prints the values, or one
with too little text, says nothing."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.documents.domain.render import render_pdf
from invoice_pipelines.einvoice.cii import write_cii
from invoice_pipelines.einvoice.layout import render_invoice_text
from invoice_pipelines.einvoice.readers.pdf import open_pdf
from invoice_pipelines.intake.domain import hybrid
from invoice_pipelines.intake.domain.formats.pdf_text import extract_text
from invoice_pipelines.intake.domain.hybrid import compare
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines_tests.documents.test_build import EXTRAS, make_invoice
from invoice_pipelines_tests.intake.test_samples import FX, require_samples

PAGE = """Muster Werkzeug GmbH · Hauptstraße 1 · 10115 Berlin
Rechnung
Rechnungsnummer: RE-2026/0042
Rechnungsdatum: 03.11.2026
Pos  Bezeichnung                 Menge   Preis      Betrag
1    Fräser HSS 10 mm             4     25,00      100,00
Nettobetrag                                   100,00 EUR
USt. 19 %                                      19,00 EUR
Rechnungsbetrag                               119,00 EUR
"""


def xml(**changes) -> Invoice:
    values = dict(
        number="RE-2026/0042",
        issue_date=date(2026, 11, 3),
        currency="EUR",
        net_total=D("100.00"),
        tax_total=D("19.00"),
        gross_total=D("119.00"),
        amount_due=D("119.00"),
    )
    values.update(changes)
    return Invoice(**values)


def rules(findings) -> set[str]:
    return {f.rule for f in findings}


# ---------------------------------------------------------------- pages as text


def test_a_page_that_agrees_gives_no_finding() -> None:
    assert compare(PAGE, xml()) == []
    # the XML's number written otherwise (spaces, case, separators, leading zeros) is the same
    for number in ("re-2026/ 0042", "RE 2026 0042", "RE2026-42", "re_2026_0042"):
        assert compare(PAGE, xml(number=number)) == [], number


@pytest.mark.parametrize(
    ("changes", "rule", "words"),
    [
        (
            {"number": "RE-2026/0043"},
            "IP-HYB-01",
            "invoice number RE-2026/0042 but the embedded XML says RE-2026/0043",
        ),
        (
            {"issue_date": date(2026, 11, 4)},
            "IP-HYB-02",
            "the issue date 2026-11-03 but the embedded XML says 2026-11-04",
        ),
        (
            {"gross_total": D("129.00"), "amount_due": D("129.00")},
            "IP-HYB-03",
            "the total with VAT 119.00 but the embedded XML says 129.00",
        ),
        (
            {"tax_total": D("29.00")},
            "IP-HYB-04",
            "the VAT 19.00 but the embedded XML says 29.00",
        ),
        ({"currency": "CHF"}, "IP-HYB-05", "the currency EUR but the embedded XML says CHF"),
    ],
)
def test_a_page_that_shows_another_invoice_is_named(changes, rule, words) -> None:
    found = compare(PAGE, xml(**changes))
    findings = {f.rule: f for f in found if words in f.message}
    assert rule in findings, [f.message for f in found]
    assert findings[rule].message.endswith("the XML is what is booked")
    assert findings[rule].stage == "hybrid" and findings[rule].severity == "warning"
    # one difference, one finding: the amount due the page only has from its total is no second
    assert len(found) == 1, [f.message for f in found]


@pytest.mark.parametrize(
    ("printed", "changes"),
    [
        # amounts in German, English, plain, Swiss and French notation
        ("Rechnungsbetrag 1.234,56 EUR", {"gross_total": D("1234.56")}),
        ("Total 1,234.56 EUR", {"gross_total": D("1234.56")}),
        ("Total 1234.56", {"gross_total": D("1234.56")}),
        ("Total CHF 1'234.56", {"gross_total": D("1234.56")}),
        ("Total TTC 1 234,56 €", {"gross_total": D("1234.56")}),
        # a credit note's page prints its total as a positive amount
        ("Gutschriftsbetrag -1.234,56", {"gross_total": D("-1234.56")}),
        # dates in the common forms
        ("Datum: 2026-11-05", {"issue_date": date(2026, 11, 5)}),
        ("Datum: 5. November 2026", {"issue_date": date(2026, 11, 5)}),
        ("Date: November 5, 2026", {"issue_date": date(2026, 11, 5)}),
        ("Date : 5 novembre 2026", {"issue_date": date(2026, 11, 5)}),
        ("Date: 11/05/2026", {"issue_date": date(2026, 11, 5)}),
        ("Datum: 05.11.26", {"issue_date": date(2026, 11, 5)}),
        # the currency by its symbol or name
        ("Rechnungsbetrag 119,00 €", {"currency": "EUR"}),
        ("Total 119.00 £", {"currency": "GBP"}),
    ],
)
def test_an_xml_value_anywhere_on_the_page_agrees(printed: str, changes: dict) -> None:
    # the labels still show the other values: the XML's, printed elsewhere, is what counts
    assert compare(PAGE + printed + "\n", xml(**changes)) == []


def test_a_value_not_on_the_page_without_another_under_its_label_says_nothing() -> None:
    # a cover page ("the invoice is in the attached XML"): nothing of the XML on it, nothing else
    cover = (
        "Sehr geehrte Damen und Herren,\n\nanbei erhalten Sie unsere Rechnung als XRechnung im\n"
        "Anhang dieser PDF-Datei. Bei Fragen wenden Sie sich bitte an unsere Buchhaltung.\n"
        "Mit freundlichen Grüßen\nMuster Werkzeug GmbH\n"
    )
    assert compare(cover, xml()) == []


def test_an_amount_due_the_page_does_not_state_is_no_difference() -> None:
    # 18.50 paid in advance: the XML's amount due is 100.50, the page shows only its total
    assert compare(PAGE, xml(amount_due=D("100.50"))) == []
    # but a page that states another amount due is named
    stated = PAGE + "Zahlbetrag                                     99,00 EUR\n"
    found = compare(stated, xml(amount_due=D("100.50")))
    assert [f.message for f in found] == [
        "the page shows the amount due 99.00 but the embedded XML says 100.50; "
        "the XML is what is booked"
    ]


def test_a_legacy_currency_under_its_label_is_named() -> None:
    page = PAGE.replace(" EUR", "").replace("Rechnung\n", "Rechnung\nWährung: DEM\n")
    assert [f.message for f in compare(page, xml())] == [
        "the page shows the currency DEM but the embedded XML says EUR; the XML is what is booked"
    ]


def test_the_date_a_title_line_gives_the_number_is_the_pages_issue_date() -> None:
    page = PAGE.replace("Rechnungsdatum: 03.11.2026\n", "").replace(
        "Rechnung\n", "Rechnungskorrektur (384) Nr. RE-2026/0042 vom 03.11.2026\n"
    )
    assert compare(page, xml()) == []
    found = compare(page, xml(issue_date=date(2026, 11, 30)))
    assert rules(found) == {"IP-HYB-02"} and "2026-11-03" in found[0].message


def test_a_page_without_text_says_nothing() -> None:
    assert compare("   \n\f  ", xml(number="X-1")) == []
    assert compare("", xml()) == []


def test_an_agreeing_page_is_not_read_for_labels(monkeypatch) -> None:
    """compare runs on every hybrid PDF: the text reader (milliseconds a page) only runs when a
    value of the XML is missing from the page."""

    def no_reading(text: str):
        raise AssertionError("the page was read for labels although it agrees")

    monkeypatch.setattr(hybrid, "extract_fields", no_reading)
    assert compare(PAGE, xml()) == []


# ---------------------------------------------------------------- PDFs our own code writes

LINES = [
    ("Fräser HSS 10 mm", D("4"), D("25.00"), "S", D("19")),
    ("Kühlschmierstoff 5 l", D("3"), D("1.99"), "S", D("7")),
]


def hybrid_pdf(page: Invoice, xml_invoice: Invoice, *, language: str = "de") -> bytes:
    """A Factur-X PDF whose page is `page` and whose factur-x.xml is `xml_invoice`."""
    extras = {**EXTRAS, "delivery_date": xml_invoice.issue_date}
    if any(entry.category == "K" for entry in xml_invoice.vat_breakdown):
        extras["delivery_country"] = xml_invoice.buyer_address.country_code
    return render_pdf(
        page,
        language=language,
        payment_terms=EXTRAS["payment_terms"],
        service_date=page.issue_date,
        xml=write_cii(xml_invoice, extra=extras),
    )


def page_and_xml(pdf: bytes) -> tuple[str, Invoice]:
    text, _ = extract_text(pdf, open_pdf(pdf))
    outcome = parse_document(pdf, "hybrid.pdf")
    assert outcome.invoice is not None and outcome.raw.get("xml_attachment")
    return text, outcome.invoice


@pytest.mark.parametrize(
    ("invoice", "language"),
    [
        (make_invoice(LINES), "de"),
        (make_invoice(LINES, language="en"), "en"),
        (make_invoice(LINES, number="GS-2026-000007", type_code="381"), "de"),
        (make_invoice([("Beratung", D("1"), D("1234.56"), "S", D("19"))], number="2026/17"), "de"),
        (
            make_invoice(
                [("Wartung", D("2"), D("450.00"), "K", D("0"))],
                buyer_vat="ATU12345678",
                language="en",
            ),
            "en",
        ),
    ],
    ids=["de", "en", "credit-note", "one-rate", "intra-community"],
)
def test_our_own_factur_x_whose_page_agrees_gives_no_finding(invoice: Invoice, language) -> None:
    text, read = page_and_xml(hybrid_pdf(invoice, invoice, language=language))
    assert compare(text, read) == []
    assert compare(text, dataclasses.replace(read, number=read.number.lower())) == []


def _other_number(invoice: Invoice) -> Invoice:
    return dataclasses.replace(invoice, number="RE-2026-000043")


def _other_date(invoice: Invoice) -> Invoice:
    return dataclasses.replace(
        invoice,
        issue_date=date(2026, 10, 27),
        due_date=date(2026, 11, 10),
    )


def _other_totals(invoice: Invoice) -> Invoice:
    return make_invoice([(*LINES[0][:1], D("5"), *LINES[0][2:]), LINES[1]])


def _other_currency(invoice: Invoice) -> Invoice:
    return dataclasses.replace(invoice, currency="CHF")


@pytest.mark.parametrize(
    ("change", "rule", "page_value", "xml_value"),
    [
        (_other_number, "IP-HYB-01", "invoice number RE-2026-000042", "RE-2026-000043"),
        (_other_date, "IP-HYB-02", "the issue date 2026-11-02", "2026-10-27"),
        (_other_totals, "IP-HYB-03", "the total with VAT 125.39", "155.14"),
        (_other_currency, "IP-HYB-05", "the currency EUR", "CHF"),
    ],
    ids=["number", "date", "totals", "currency"],
)
def test_our_own_factur_x_whose_page_shows_another_invoice_is_named(
    change, rule, page_value: str, xml_value: str
) -> None:
    page = make_invoice(LINES)
    text, read = page_and_xml(hybrid_pdf(page, change(page)))
    found = {f.rule: f.message for f in compare(text, read)}
    assert found.get(rule) == (
        f"the page shows {page_value} but the embedded XML says {xml_value}; "
        "the XML is what is booked"
    ), found


def test_the_intake_holds_our_own_factur_x_whose_page_shows_another_number() -> None:
    page = make_invoice(LINES)
    outcome = parse_document(hybrid_pdf(page, _other_number(page)), "hybrid.pdf")
    assert outcome.invoice.number == "RE-2026-000043"  # the XML is what is booked
    assert [f.rule for f in outcome.review if f.stage == "hybrid"] == ["IP-HYB-01"]
    assert outcome.status == "NEEDS_REVIEW"
    agreeing = parse_document(hybrid_pdf(page, page), "hybrid.pdf")
    assert agreeing.status == "VALIDATED" and agreeing.review == []


# ---------------------------------------------------------------- public samples


@pytest.mark.parametrize(
    "name", ["EN16931_Einfach.pdf", "EN16931_Betriebskostenabrechnung.pdf", "XRECHNUNG_Einfach.pdf"]
)
def test_public_factur_x_samples_whose_page_agrees_give_no_finding(name: str) -> None:
    data = (require_samples() / FX / "FX" / name).read_bytes()
    text, read = page_and_xml(data)
    assert len(text.split()) > 50
    assert compare(text, read) == []


# ---------------------------------------------------------------- any invoice our layout prints

_numbers = st.from_regex(r"[A-Z]{0,3}[-/ ]?20[0-9]{2}[-/]?[0-9]{1,6}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    number=_numbers,
    issued=st.dates(min_value=date(2001, 1, 1), max_value=date(2030, 12, 31)),
    quantity=st.integers(min_value=1, max_value=999),
    price=st.decimals(min_value=D("0.01"), max_value=D("99999.99"), places=2),
    rate=st.sampled_from([D("19"), D("7"), D("20"), D("5.5")]),
    language=st.sampled_from(["de", "en"]),
    currency=st.sampled_from(["EUR", "CHF", "USD", "GBP"]),
)
def test_any_page_our_layout_prints_agrees_and_another_total_is_named(
    number: str, issued: date, quantity: int, price: D, rate: D, language: str, currency: str
) -> None:
    invoice = dataclasses.replace(
        make_invoice([("Artikel", D(quantity), price, "S", rate)], number=number),
        issue_date=issued,
        due_date=issued + timedelta(days=14),
        currency=currency,
    )
    page = "\n".join(render_invoice_text(invoice, language=language, service_date=issued))
    assert compare(page, invoice) == []
    other = invoice.gross_total + D("10.00")
    changed = dataclasses.replace(invoice, gross_total=other, amount_due=other)
    found = [f for f in compare(page, changed) if f.rule == "IP-HYB-03"]
    assert found and f"but the embedded XML says {other}" in found[0].message
