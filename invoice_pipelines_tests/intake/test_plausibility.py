"""Values read from a page go to review, never to VALIDATED, when anything about them is in doubt
(issue 36: no text PDF or scan is VALIDATED with a wrong number, date or amount)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from invoice_pipelines.core.invoice import Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.intake.domain.parse import parse_document, parse_ocr_text
from invoice_pipelines.intake.domain.plausibility import on_page, review_findings
from invoice_pipelines_devtools.demo.invoices import demo_supplier_invoices
from invoice_pipelines_tests.conftest import require_programs

TODAY = date(2026, 11, 25)
SURE = {k: 0.95 for k in ("number", "issue_date", "net_total", "tax_total", "gross_total",
                          "currency", "type_code", "amount_due")}  # fmt: skip
PAGE = """Muster GmbH
Rechnung
Rechnungsnummer: RE-2026-0042
Rechnungsdatum: 03.11.2026
Nettobetrag 100,00 EUR
USt. 19 % 19,00 EUR
Bruttobetrag 119,00 EUR
"""


def reading(**changes) -> Invoice:
    values = dict(
        number="RE-2026-0042",
        type_code="380",
        issue_date=date(2026, 11, 3),
        currency="EUR",
        net_total=D("100.00"),
        tax_total=D("19.00"),
        gross_total=D("119.00"),
        vat_breakdown=(VatBreakdown(None, D("19"), D("100.00"), D("19.00")),),
        lines=(InvoiceLine(quantity=D("1"), unit_price=D("100.00"), net_amount=D("100.00")),),
        origin="text",
        confidence=dict(SURE),
    )
    values.update(changes)
    return Invoice(**values)


def rules(invoice: Invoice, page: str = PAGE, origin: str = "text") -> dict[str, str]:
    return {f.rule: f.message for f in review_findings(invoice, page, origin=origin, today=TODAY)}


def test_a_reading_that_holds_together_is_not_doubted() -> None:
    assert rules(reading()) == {}


def test_the_hotel_scan_with_a_vat_rate_of_8114_percent_goes_to_review() -> None:
    page = "Hotel am See\nNetto 2,24\nMwSt 19% 181,76\nGesamt 184,00 EUR\nRechnung Nr. H-7781\n"
    doubts = rules(
        reading(
            number="H-7781",
            net_total=D("2.24"),
            tax_total=D("181.76"),
            gross_total=D("184.00"),
            vat_breakdown=(VatBreakdown(None, D("19"), D("2.24"), D("181.76")),),
        ),
        page,
        "ocr",
    )
    assert doubts["IP-REV-04"] == "19 % of 2.24 is 0.43, not the 181.76 read"


@pytest.mark.parametrize(
    ("changes", "rule", "words"),
    [
        (
            {"gross_total": D("129.00")},
            "IP-REV-03",
            "net 100.00 + VAT 19.00 is not the total 129.00",
        ),
        ({"vat_breakdown": ()}, "IP-REV-04", "VAT 19.00 is stated but no rate was read"),
        (
            {"vat_breakdown": (VatBreakdown(None, D("23.5"), D("100.00"), D("23.50")),)},
            "IP-REV-04",
            "a VAT rate of 23.5 % is not a VAT rate",
        ),
        ({"number": None}, "IP-REV-01", "the invoice number could not be read"),
        ({"issue_date": date(2027, 3, 1)}, "IP-REV-06", "the issue date 2027-03-01 is not"),
        ({"due_date": date(2026, 10, 1)}, "IP-REV-06", "the due date 2026-10-01 is before"),
        ({"confidence": {**SURE, "gross_total": 0.6}}, "IP-REV-02", "confidence 0.600"),
        ({"number": "03.11.2026"}, "IP-REV-07", "looks like a date"),
        ({"number": "1.234,50"}, "IP-REV-07", "looks like an amount"),
        ({"number": "+49 421 555 0199"}, "IP-REV-07", "looks like a phone number"),
        ({"number": "DE89370400440532013000"}, "IP-REV-07", "looks like an IBAN"),
        ({"lines": ()}, "IP-REV-08", "no invoice line could be read"),
        ({"type_code": "380"}, None, None),
    ],
)
def test_each_doubt_is_named(changes, rule, words) -> None:
    doubts = rules(reading(**changes))
    if rule is None:
        assert doubts == {}
    else:
        assert words in doubts[rule], doubts


def test_amounts_that_are_not_on_the_page_are_doubted() -> None:
    page = PAGE.replace("119,00", "118,00")
    assert rules(reading(), page)["IP-REV-05"] == (
        "the total with VAT 119.00 does not appear on the page as read"
    )
    assert on_page(D("1234.50"), "Summe 1.234,50 EUR") and on_page(D("1234.50"), "Total 1,234.50")
    assert not on_page(D("234.50"), "Summe 1.234,50 EUR")  # a part of another number


def test_a_number_that_ocr_cut_short_is_doubted() -> None:
    page = PAGE.replace("RE-2026-0042", "20261 125-205")
    assert "only the start of a longer token" in rules(reading(number="20261"), page)["IP-REV-07"]


def test_a_credit_note_read_as_an_invoice_is_doubted() -> None:
    page = PAGE.replace("Rechnung\n", "Gutschrift\n", 1)
    assert "document type 381" in rules(reading(), page)["IP-REV-09"]
    assert "IP-REV-09" not in rules(reading(type_code="381"), page)


def test_lines_that_do_not_add_up_to_the_net_are_doubted() -> None:
    lines = (InvoiceLine(net_amount=D("60.00")), InvoiceLine(net_amount=D("60.00")))
    assert "2 lines read add up to 120.00" in rules(reading(lines=lines))["IP-REV-08"]


def test_a_text_pdf_with_doubts_waits_for_review_and_says_why() -> None:
    """The whole path: a text page whose totals do not add up is NEEDS_REVIEW, not FAILED and
    never VALIDATED; the review findings say why."""
    text = PAGE.replace("Bruttobetrag 119,00", "Bruttobetrag 129,00")
    outcome = parse_ocr_text(text, source_format="image", confidence=0.95, today=TODAY)
    assert outcome.status == "NEEDS_REVIEW"
    assert outcome.verdict is not None and outcome.verdict.policy_key == "not_einvoice.no_xml"
    assert outcome.review and all(f.stage == "review" for f in outcome.review)


def test_the_demo_scan_reads_right() -> None:
    """The demo's scanned supplier invoice (a PNG read by Tesseract): its number as printed and
    its VAT breakdown (19 % of 800.00 = 152.00)."""
    require_programs("tesseract", "pdftoppm")
    from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine

    name, data = demo_supplier_invoices(TODAY)[3]
    assert name == "druckhaus-weser_20261125-205_scan.png"
    page = TesseractOcrEngine().reader().ocr_image(data)
    outcome = parse_ocr_text(
        page.text, source_format="image", confidence=page.confidence, today=TODAY
    )
    invoice = outcome.invoice
    assert invoice is not None
    assert invoice.number == "20261125-205"
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        D("800.00"),
        D("152.00"),
        D("952.00"),
    )
    assert [(b.rate, b.basis, b.amount) for b in invoice.vat_breakdown] == [
        (D("19"), D("800.00"), D("152.00"))
    ]
    assert outcome.status in ("VALIDATED", "NEEDS_REVIEW")  # never a wrong VALIDATED


def test_the_demo_text_pdf_is_validated() -> None:
    name, data = demo_supplier_invoices(TODAY)[2]
    outcome = parse_document(data, name, today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
