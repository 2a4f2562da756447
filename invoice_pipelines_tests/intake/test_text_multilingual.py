"""Text extraction on invoices we compose here: English, French, Dutch, German; USD, GBP, CHF,
PLN, HUF, INR; amounts without decimals; month names; per-rate VAT; derived totals; line tables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from invoice_pipelines.intake.domain.formats.text import extract_fields, parse_amount, parse_date
from invoice_pipelines.intake.domain.parse import parse_ocr_text
from invoice_pipelines_tests.conftest import require_programs

D = Decimal


def totals(text: str) -> tuple[Decimal | None, Decimal | None, Decimal | None]:
    fields = extract_fields(text)
    return fields.value("net_total"), fields.value("tax_total"), fields.value("gross_total")


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,234", D("1234")),
        ("1.234", D("1234")),
        ("1 234", D("1234")),
        ("1\u00a0234", D("1234")),
        ("$1,200", D("1200")),
        ("1,23,456.50", D("123456.50")),  # Indian lakh grouping
        ("CHF 1'234.50", D("1234.50")),
        ("1 234,00 zł", D("1234.00")),
        ("12 345 Ft", D("12345")),
    ],
)
def test_amounts_with_thousands_separators_and_no_decimals(text: str, expected: Decimal) -> None:
    assert parse_amount(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "5 March 2024",
        "5th March 2024",
        "5 mars 2024",
        "1er mars 2024".replace("1er", "5"),
        "5 maart 2024",
        "5. März 2024",
        "March 5, 2024",
        "Mar 5th 2024",
        "05-Mar-2024",
        "5 mrt. 2024",
        "2024-03-05",
        "05.03.2024",
    ],
)
def test_dates_with_month_names_in_four_languages(text: str) -> None:
    assert parse_date(text) == date(2024, 3, 5)


def test_french_first_of_the_month() -> None:
    assert parse_date("le 1er mars 2024") == date(2024, 3, 1)


# ---------------------------------------------------------------- whole invoices

ENGLISH_USD = """\
Northwind Traders LLC
1200 Harbor Blvd, Oakland CA 94607

INVOICE
Invoice No.: NW-55102                      Invoice Date: March 5, 2024
Bill To: Contoso Inc                        Due Date: April 4, 2024

Description                     Qty     Unit Price        Amount
Consulting hours                 12        $150.00     $1,800.00
Travel flat fee                   1        $250.00       $250.00

                                             Subtotal    $2,050.00
                                   Sales Tax (8.875%)      $181.94
                                                Total    $2,231.94
"""


def test_english_usd_invoice_with_month_names_and_lines() -> None:
    fields = extract_fields(ENGLISH_USD)
    assert fields.value("number") == "NW-55102"
    assert fields.value("issue_date") == date(2024, 3, 5)
    assert fields.value("due_date") == date(2024, 4, 4)
    assert fields.value("currency") == "USD"
    assert totals(ENGLISH_USD) == (D("2050.00"), D("181.94"), D("2231.94"))
    assert [
        (line.description, line.quantity, line.unit_price, line.net_amount) for line in fields.lines
    ] == [
        ("Consulting hours", D("12"), D("150.00"), D("1800.00")),
        ("Travel flat fee", D("1"), D("250.00"), D("250.00")),
    ]


FRENCH = """\
Atelier Lumière SARL - 12 rue des Arts - 69002 Lyon
TVA : FR40123456789

Facture n° F-2024-031
Date de facture : 5 mars 2024
Date d'échéance : 4 avril 2024

Désignation                    Quantité   Prix unitaire    Montant HT
Lampe de bureau                       4        80,00 €       320,00 €
Abat-jour lin                        10        91,40 €       914,00 €

                                              Total HT     1 234,00 €
                                              TVA 20 %       246,80 €
                                             Total TTC     1 480,80 €
                                        Net à payer     1 480,80 €
"""


def test_french_invoice() -> None:
    fields = extract_fields(FRENCH)
    assert fields.value("number") == "F-2024-031"
    assert fields.value("issue_date") == date(2024, 3, 5)
    assert fields.value("due_date") == date(2024, 4, 4)
    assert fields.value("currency") == "EUR"
    assert totals(FRENCH) == (D("1234.00"), D("246.80"), D("1480.80"))
    assert fields.value("amount_due") == D("1480.80")
    assert fields.value("seller_name") == "Atelier Lumière SARL"
    assert len(fields.lines) == 2


DUTCH = """\
Bakkerij De Molen B.V.
Factuurnummer: 2024-0042
Factuurdatum: 5 maart 2024
Vervaldatum: 4 april 2024

Omschrijving          Aantal     Prijs      Bedrag
Broodjes                 100      0,95       95,00

Subtotaal                          € 1.234
BTW 9%                           € 111,06
Totaal                         € 1.345,06
"""


def test_dutch_invoice_with_a_whole_thousands_subtotal() -> None:
    fields = extract_fields(DUTCH)
    assert fields.value("number") == "2024-0042"
    assert fields.value("issue_date") == date(2024, 3, 5)
    assert fields.value("due_date") == date(2024, 4, 4)
    assert fields.value("currency") == "EUR"
    assert totals(DUTCH) == (D("1234"), D("111.06"), D("1345.06"))


GERMAN_PER_RATE = """\
Lieferant GmbH • Lieferantenstraße 20 • 80333 München
Rechnung Nr. 471102 vom 05.03.2018
Zahlbar innerhalb 30 Tagen netto bis 04.04.2018, 3% Skonto innerhalb 10 Tagen bis 15.03.2018

Nettobetrag                         473,00 EUR
Umsatzsteuer 7 % auf 275,00          19,25 EUR
Umsatzsteuer 19 % auf 198,00         37,62 EUR
Gesamtbetrag                        529,87 EUR
"""


def test_vat_printed_only_per_rate_is_summed() -> None:
    fields = extract_fields(GERMAN_PER_RATE)
    assert totals(GERMAN_PER_RATE) == (D("473.00"), D("56.87"), D("529.87"))
    assert fields.value("number") == "471102"
    assert fields.value("issue_date") == date(2018, 3, 5)
    # the due date, not the early-payment (Skonto) date
    assert fields.value("due_date") == date(2018, 4, 4)


def test_gross_is_never_taken_from_a_vat_line() -> None:
    text = "Invoice # 9\nDate: 2024-03-05\nSubtotal £1,000\nVAT 20% £200.00\nTotal VAT £200.00\nTotal £1,200.00\n"
    assert totals(text) == (D("1000"), D("200.00"), D("1200.00"))
    assert extract_fields(text).value("currency") == "GBP"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # only gross and VAT printed: net = gross - VAT
        (
            "Rechnungsnummer 5\nMwSt. 19 % 19,00 €\nGesamtbetrag 119,00 €\n",
            (D("100.00"), D("19.00"), D("119.00")),
        ),
        # only net and VAT printed: gross = net + VAT
        (
            "Invoice number 5\nNet amount CHF 1'000.00\nVAT 8.1% CHF 81.00\n",
            (D("1000.00"), D("81.00"), D("1081.00")),
        ),
        # net and gross only (VAT-exempt): VAT = gross - net
        (
            "Factuur nr. 5\nTotaal excl. btw € 250,00\nTotaal incl. btw € 250,00\n",
            (D("250.00"), D("0.00"), D("250.00")),
        ),
    ],
)
def test_one_missing_total_is_derived_from_the_other_two(text: str, expected: tuple) -> None:
    assert totals(text) == expected


@pytest.mark.parametrize(
    ("text", "currency", "gross"),
    [
        (
            "Invoice No: 1\nSubtotal 1 000,00 zł\nVAT 23% 230,00 zł\nTotal 1 230,00 zł\n",
            "PLN",
            D("1230.00"),
        ),
        (
            "Invoice No: 2\nNet: 100 000 HUF\nVAT 27%: 27 000 HUF\nTotal: 127 000 HUF\n",
            "HUF",
            D("127000"),
        ),
        (
            "Invoice No: 3\nSubtotal ₹1,00,000.00\nGST 18% ₹18,000.00\nTotal ₹1,18,000.00\n",
            "INR",
            D("118000.00"),
        ),
        (
            "Rechnung Nr. 4\nTotal exkl. MWST CHF 1'000.00\nMWST 8.1 % CHF 81.00\nTotal CHF 1'081.00\n",
            "CHF",
            D("1081.00"),
        ),
        ("Invoice No: 5\nNet USD 1,000\nVAT USD 0\nTotal USD 1,000\n", "USD", D("1000")),
    ],
)
def test_currencies_other_than_euro(text: str, currency: str, gross: Decimal) -> None:
    fields = extract_fields(text)
    assert fields.value("currency") == currency
    assert fields.value("gross_total") == gross


def test_no_currency_mark_means_no_currency_rather_than_euro() -> None:
    fields = extract_fields("Invoice No: 7\nSubtotal 100.00\nVAT 20.00\nTotal 120.00\n")
    assert fields.value("gross_total") == D("120.00")
    assert fields.value("currency") is None


def test_numeric_date_order_follows_the_document() -> None:
    # 11/17/2017 can only be month first, so 11/03/2017 is the 3rd of November
    text = (
        "Invoice FA-1\nInvoice Date 11/03/2017\nPayment 11/17/2017 10.00 €\nDue Date 12/03/2017\n"
    )
    fields = extract_fields(text)
    assert fields.value("issue_date") == date(2017, 11, 3)
    assert fields.value("due_date") == date(2017, 12, 3)


def test_an_ambiguous_date_with_nothing_to_decide_it_stays_empty() -> None:
    fields = extract_fields("Invoice No: 8\nInvoice Date: 03/05/2024\nTotal $10.00\n")
    assert fields.value("issue_date") is None
    # the same date in a French invoice is day first
    fields = extract_fields("Facture n° 8\nDate de facture : 03/05/2024\nTotal TTC 10,00 €\n")
    assert fields.value("issue_date") == date(2024, 5, 3)


@pytest.mark.parametrize(
    "line",
    [
        "Rechnungsnummer:.20261122-205",
        "Rechnungsnummer: . 20261122-205",
        "Rechnungsnummer |20261122-205",
        "Rechnungsnummer",  # value on the line below
    ],
)
def test_ocr_noise_between_label_and_number(line: str) -> None:
    text = f"{line}\n20261122-205\n" if line == "Rechnungsnummer" else f"{line}\n"
    assert extract_fields(text).value("number") == "20261122-205"


def test_labels_in_other_languages_find_the_number() -> None:
    for text in (
        "Invoice number: INV-9",
        "Facture N° INV-9",
        "Numéro de facture : INV-9",
        "Factuurnummer INV-9",
        "Factuur nr. INV-9",
        "Rechnungs-Nr. INV-9",
    ):
        assert extract_fields(text).value("number") == "INV-9", text


def test_a_label_without_a_value_is_not_filled_from_elsewhere() -> None:
    text = "Bitte geben Sie die Rechnungsnummer an:\nIBAN DE02 1203 0000 0000 2020 51\n"
    assert extract_fields(text).value("number") is None


# ---------------------------------------------------------------- the demo's scan


@pytest.mark.parametrize("today", [date(2026, 11, 22), date(2026, 10, 23)])
def test_demo_scan_is_validated(today: date) -> None:
    """The seed-demo scan, read by Tesseract, passes every rule (2026-10-23 reads ":." noise)."""
    require_programs("tesseract")
    from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine
    from invoice_pipelines_devtools.demo.invoices import demo_invoice_set, demo_supplier_invoices

    _, png = demo_supplier_invoices(today)[3]
    expected = demo_invoice_set(today)[3].invoice
    page = TesseractOcrEngine().reader().ocr_image(png)
    outcome = parse_ocr_text(
        page.text, source_format="image", confidence=page.confidence, today=today
    )
    assert (outcome.status, [e.to_json_dict() for e in outcome.errors]) == ("VALIDATED", [])
    invoice = outcome.invoice
    assert (invoice.number, invoice.issue_date, invoice.due_date) == (
        expected.number,
        expected.issue_date,
        expected.due_date,
    )
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        expected.net_total,
        expected.tax_total,
        expected.gross_total,
    )
