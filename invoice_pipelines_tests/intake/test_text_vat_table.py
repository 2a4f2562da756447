"""A VAT breakdown printed as a table of its own and a seller named only in a footer in columns
(issue 84): the table's rows give each rate's basis and VAT when they add up to the totals read
(BR-CO-14), so the VAT is proven; the footer's company beside its IBAN and VAT id is the seller
(a claim, as every page's seller), the unlabelled address block at the top the recipient."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from invoice_pipelines.intake.domain.formats.text.extract import extract_fields
from invoice_pipelines.intake.domain.formats.text.vat_table import read_vat_table
from invoice_pipelines.intake.domain.parse import parse_page_text

TODAY = date(2026, 3, 10)
PAGE = """Gasthof zur Linde                              Rechnungsnummer:     RE-2026-0311
Lindenweg 1                                    Rechnungsdatum:      02.03.2026
34119 Kassel                                   Fällig am:           16.03.2026

Rechnung
Pos.  Leistung                                   Menge     Einzelpreis        Betrag
1     Eckbank Eiche                               1 Stk       1.840,00      1.840,00
2     Fachbuch Möbelbau                           2 Stk          45,00         90,00

                                  Summe netto                             1.930,00 EUR
                                  Umsatzsteuer                              355,90 EUR
                                  Gesamtbetrag                            2.285,90 EUR

                                  USt-Satz        Nettobetrag          USt-Betrag
                                  19 %               1.840,00              349,60
                                  7 %                   90,00                6,30

Schreinerei Holzwurm GmbH        IBAN                          USt-IdNr.
Werkstraße 4                     DE89370400440532013000        DE811569869
34117 Kassel
"""


def test_a_breakdown_table_proves_the_vat_and_the_footer_names_the_seller() -> None:
    assert [(row.rate, row.basis, row.amount) for row in read_vat_table(PAGE.split("\n"))] == [
        (D("19"), D("1840.00"), D("349.60")),
        (D("7"), D("90.00"), D("6.30")),
    ]
    outcome = parse_page_text(PAGE, today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    invoice = outcome.invoice
    assert [(b.rate, b.basis, b.amount) for b in invoice.vat_breakdown] == [
        (D("19"), D("1840.00"), D("349.60")),
        (D("7"), D("90.00"), D("6.30")),
    ]
    assert (invoice.seller_name, invoice.buyer_name) == (
        "Schreinerei Holzwurm GmbH",
        "Gasthof zur Linde",
    )


def test_a_breakdown_table_that_misses_the_vat_proves_nothing() -> None:
    """One row misread (394,60 for 349,60): its rows do not give the 355.90 stated; no rate is
    taken from it and the review names the VAT and the sum that failed."""
    outcome = parse_page_text(PAGE.replace("349,60", "394,60"), today=TODAY)
    assert outcome.status == "NEEDS_REVIEW"
    found = {f.rule: f.message for f in outcome.review}
    assert found["IP-REV-14"].startswith("the VAT 355.90 is not proven by the invoice's own sums")
    assert "BR-CO-14" in found["IP-REV-14"]


def test_a_description_with_a_rate_and_two_amounts_is_no_breakdown_row() -> None:
    rows = ["Beratung 19 % Aufschlag        100,00     19,00"]
    assert read_vat_table(rows) == []


INCLUSIVE = """Kopie factuur
Fietsenwinkel De Spaak B.V.
Dorpsstraat 12
3500 AB Utrecht

Factuurnummer: VF-2026-0088                 Factuurdatum: 02-03-2026

Omschrijving                                                     Bedrag
Onderhoudsset koffiemachine                                       49,99
Prijzen zijn inclusief BTW                        Factuur totaal EUR 49,99

                                  BTW %      Grondslag      BTW bedrag        Totaal
                                   21 %          41,31            8,68         49,99

KvK 12345678 · IBAN NL91ABNA0417164300
"""


def test_a_total_with_only_a_breakdown_table_gets_its_net_and_vat_from_the_table() -> None:
    """No VAT line, only the total and the table: 41.31 + 8.68 = 49.99 gives net and VAT."""
    fields = extract_fields(INCLUSIVE).fields
    assert (fields["net_total"].value, fields["tax_total"].value) == (D("41.31"), D("8.68"))


def test_a_breakdown_table_that_does_not_make_the_total_gives_no_net() -> None:
    fields = extract_fields(INCLUSIVE.replace("8,68         49,99", "8,86         50,17")).fields
    assert "net_total" not in fields and "tax_total" not in fields


def test_a_date_with_a_space_before_its_comma_is_read() -> None:
    """ "Invoice Date: August 3 , 2014" as a PDF's text layer spaces it."""
    text = PAGE.replace("Rechnungsdatum:      02.03.2026", "Invoice Date:   March 2 , 2026")
    assert extract_fields(text).fields["issue_date"].value == date(2026, 3, 2)


# an e-invoice's visualisation: the rate under a heading "USt. %" without its sign, the tax's
# category in brackets, the line amount under "Entgelt"
VISUALISED = """Verkäufer:
Nummer         : 549910
Taxiunternehmen TX GmbH
Lieferantenstraße 20
10369 Berlin
USt.-Id.-Nr. : DE123456789

Käufer:
Kunden AG Mitte
Kundenstraße 15
69876 Frankfurt

Handelsrechnung Nr. TX-471102 vom 18.11.2019
Währung              : EUR

 Pos          Beschreibung        Nettopreis          Menge           Steuer     Entgelt
  1           Grundpreis                3,90          1 Stk      7 % VAT (S)        3,90
              (Pauschale)
  2           Stadtfahrt -              2,00          6 Stk      7 % VAT (S)       13,00
              je Kilometer

Fälligkeit 29.11.2019

Umsatzsteueraufschlüsselung:
   Art (Kategorie)     Warenwert      Steuerbasisbetrag    USt. %          USt.-Betrag
Umsatzsteuer (S)                                  16,90         7                 1,18

                                  Rechnungssumme ohne USt.          16,90
                                  Steuerbetrag                       1,18
                                  Bruttosumme                       18,08
                                  Zahlbetrag                        18,08
"""


def test_a_rate_without_its_sign_and_an_entgelt_column_prove_the_invoice() -> None:
    rows = read_vat_table(VISUALISED.split("\n"))
    assert [(row.rate, row.basis, row.amount) for row in rows] == [(D("7"), D("16.90"), D("1.18"))]
    outcome = parse_page_text(VISUALISED, today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    assert [line.net_amount for line in outcome.invoice.lines] == [D("3.90"), D("13.00")]


def test_a_bare_number_that_the_arithmetic_does_not_make_a_rate_is_no_row() -> None:
    # 16,90 x 8 % is not 1,18: no breakdown, the VAT stays unproven
    page = VISUALISED.replace("16,90         7  ", "16,90         8  ")
    assert read_vat_table(page.split("\n")) == []


def test_the_rows_of_one_breakdown_may_stand_with_empty_lines_between() -> None:
    lines = [
        "Art (Kategorie)        Basisbetrag       Steuersatz [%]     Steuerbetrag",
        "Umsatzsteuer (S )           129,37                    7             9,06",
        "",
        "",
        "Umsatzsteuer (S )            64,40                   19            12,24",
    ]
    assert [(row.rate, row.basis) for row in read_vat_table(lines)] == [
        (D("7"), D("129.37")),
        (D("19"), D("64.40")),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        # a scan's specks and dotted words beside the tax's name
        (
            "Umsatzsteuer — (S)        i         275,00        7        19,25",
            ("7", "275.00", "19.25"),
        ),
        (
            "Umsatzsteuer.   (S)   :.          129,37          7         9,06",
            ("7", "129.37", "9.06"),
        ),
        (
            "VAT. (S)                           22,00          7         1,54",
            ("7", "22.00", "1.54"),
        ),
        # goods, allowance, basis, VAT: the goods less the allowance make the basis
        ("VAT (S)     410,10     -6,55     403,55       19      76,67", ("19", "403.55", "76.67")),
        # the rate read as "th" or "a": the one known rate that gives the VAT to the cent
        ("VAT  (S)       i          202,33        th       14,16", ("7", "202.33", "14.16")),
        ("VAT  (S)                  198,00         a       37,62", ("19", "198.00", "37.62")),
    ],
)
def test_a_scanned_breakdown_row_is_read_by_its_arithmetic(line, expected) -> None:
    [row] = read_vat_table([line])
    assert (str(row.rate), str(row.basis), str(row.amount)) == expected


@pytest.mark.parametrize(
    "line",
    [
        # no known rate gives 14,17 from 202,33 to the cent (7 % is 14,16)
        "VAT  (S)       i          202,33        th       14,17",
        # goods less the allowance is not the basis
        "VAT (S)     410,10     -6,55     400,00       19      76,00",
        # a word that names no tax: an invoice line, not a breakdown row
        "Kunstrasen grün           202,33        th       14,16",
    ],
)
def test_a_scanned_row_its_arithmetic_does_not_make_is_no_row(line) -> None:
    assert read_vat_table([line]) == []


def test_the_sums_under_a_one_rate_breakdown_are_no_second_row() -> None:
    """Under "21 %  41,31  8,68  49,99" the table repeats its sums without the rate: the
    arithmetic would give that line the rate 21 % too, but it is the same row, not another."""
    lines = [
        "                  BTW %       Netto         BTW        Totaal",
        "                  21 %         41,31            8,68         49,99",
        "                               41,31            8,68         49,99",
    ]
    assert [(row.rate, row.basis, row.amount) for row in read_vat_table(lines)] == [
        (D("21"), D("41.31"), D("8.68"))
    ]
