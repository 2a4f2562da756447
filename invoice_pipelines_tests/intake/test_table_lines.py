"""Invoice lines read from the page's table by column (issue 84): each value under its header
word, descriptions over several text lines joined, subtotals and amounts carried to the next page
not counted; used only when the lines add up to the net, so a misread column proves nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from invoice_pipelines.intake.domain.formats.text.table import read_table
from invoice_pipelines.intake.domain.parse import parse_document, parse_page_text
from invoice_pipelines_tests.conftest import require_programs

TODAY = date(2026, 3, 10)
HEAD = """Schreinerei Holzwurm GmbH · Werkstraße 4 · 34117 Kassel

Gasthof zur Linde
Lindenweg 1
34119 Kassel

Rechnung Nr. SH-2026-311                                 Rechnungsdatum: 02.03.2026

"""
FOOT = """
Schreinerei Holzwurm GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00
"""

AMOUNTS_ONLY = """Pos. Leistung                                                      Betrag
1    Eckbank Eiche, nach Aufmaß vom 12.02.2026                 € 1.840,00
2    Montage vor Ort (5 Std.)                                  €   350,00
3    Anfahrt                                                   €    45,00

                                     Summe netto               € 2.235,00
                                     zzgl. 19 % USt.           €   424,65
                                     Gesamtsumme               € 2.659,65
"""

QUANTITY_FIRST = """Menge   Artikel                                        Preis      MwSt    Betrag
 12     Holzleim 1 kg                                  12,90      19 %    154,80
  4     Fachbuch "Möbel bauen"                          9,50       7 %     38,00

                                          Summe netto                    192,80
                                          Umsatzsteuer                    32,07
                                          Gesamtbetrag EUR               224,87
"""

OVER_TWO_PAGES = """Pos  Beschreibung                                  Menge     Einzelpreis        Betrag
1    Tischplatte Buche massiv, geölt,                  2        410,00         820,00
     Kanten gefast, 180 x 90 cm
2    Stuhl Modell Linde                                8         95,00         760,00
                                               Zwischensumme / Übertrag       1.580,00
\f
Rechnung Nr. SH-2026-311 · Seite 2
Pos  Beschreibung                                  Menge     Einzelpreis        Betrag
                                                            Übertrag          1.580,00
3    Lieferung und Aufbau                              1        120,00         120,00

                                               Nettobetrag                    1.700,00
                                               USt. 19 %                        323,00
                                               Gesamtbetrag EUR               2.023,00
"""


def _page(table: str) -> str:
    return HEAD + table + FOOT


def test_a_table_with_only_an_amount_column_is_read_and_proves_the_net() -> None:
    """ "Pos. / Leistung / Betrag": no quantity, no price, so no row arithmetic; by column the
    three amounts add up to the net, and the invoice goes straight through."""
    lines = read_table(_page(AMOUNTS_ONLY).split("\n"))
    assert [(line.line_id, line.description, line.net_amount) for line in lines] == [
        ("1", "Eckbank Eiche, nach Aufmaß vom 12.02.2026", D("1840.00")),
        ("2", "Montage vor Ort (5 Std.)", D("350.00")),
        ("3", "Anfahrt", D("45.00")),
    ]
    outcome = parse_page_text(_page(AMOUNTS_ONLY), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    assert len(outcome.invoice.lines) == 3


def test_a_quantity_in_the_first_column_is_a_quantity_and_the_rates_give_the_vat() -> None:
    """ "12 Holzleim" is twelve, not line 12; the rates under "MwSt" give the VAT breakdown the
    page does not print (154.80 at 19 % and 38.00 at 7 % are 29.41 + 2.66 = 32.07)."""
    outcome = parse_page_text(_page(QUANTITY_FIRST), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    invoice = outcome.invoice
    assert [(line.quantity, line.unit_price, line.vat_rate) for line in invoice.lines] == [
        (D("12"), D("12.90"), D("19")),
        (D("4"), D("9.50"), D("7")),
    ]
    assert [(b.rate, b.basis, b.amount) for b in invoice.vat_breakdown] == [
        (D("19"), D("154.80"), D("29.41")),
        (D("7"), D("38.00"), D("2.66")),
    ]


def test_a_description_over_two_lines_is_joined_and_subtotals_are_not_lines() -> None:
    """The subtotal at the foot of page 1 and the amount carried to page 2 are not counted; the
    header repeated on page 2 does not end the table."""
    lines = read_table(_page(OVER_TWO_PAGES).split("\n"))
    assert [(line.description, line.quantity, line.net_amount) for line in lines] == [
        ("Tischplatte Buche massiv, geölt, Kanten gefast, 180 x 90 cm", D("2"), D("820.00")),
        ("Stuhl Modell Linde", D("8"), D("760.00")),
        ("Lieferung und Aufbau", D("1"), D("120.00")),
    ]
    outcome = parse_page_text(_page(OVER_TWO_PAGES), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]


def test_the_net_column_is_read_where_a_gross_column_stands_beside_it() -> None:
    table = """Lp. Nazwa                       Ilość   Cena netto   Wartość netto  VAT   Wartość brutto
1   Menu laminowane A4           40       12,50        500,00     23%        615,00
2   Ulotki A5                     2      180,00        360,00     23%        442,80
"""
    lines = read_table(table.split("\n"))
    assert [(line.net_amount, line.vat_rate, line.description) for line in lines] == [
        (D("500.00"), D("23"), "Menu laminowane A4"),
        (D("360.00"), D("23"), "Ulotki A5"),
    ]


def test_a_misread_column_proves_nothing_and_goes_to_review() -> None:
    """One amount read wrong (1.480,00 for 1.840,00): the lines miss the net, none is taken,
    and the document waits for a person, who is told the lines were not read."""
    text = _page(AMOUNTS_ONLY.replace("€ 1.840,00", "€ 1.480,00"))
    outcome = parse_page_text(text, today=TODAY)
    assert outcome.status == "NEEDS_REVIEW"
    assert outcome.invoice.lines == ()
    assert {f.rule: f.message for f in outcome.review}["IP-REV-08"] == (
        "no invoice line could be read from the page"
    )


def test_a_text_pdf_with_an_amounts_only_table_is_validated() -> None:
    """The same through a real PDF's text layer (pdftotext -layout keeps the columns)."""
    require_programs("pdftotext")
    from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf

    rows = [
        "Schreinerei Holzwurm GmbH - Werkstraße 4 - 34117 Kassel",
        "",
        "Gasthof zur Linde",
        "Lindenweg 1",
        "34119 Kassel",
        "",
        "Rechnung Nr. SH-2026-312",
        "Rechnungsdatum: 02.03.2026",
        "",
        "Pos. Leistung\t\tBetrag",
        "1 Eckbank Eiche, nach Aufmaß\t\t1.840,00 EUR",
        "2 Montage vor Ort (5 Std.)\t\t350,00 EUR",
        "3 Anfahrt\t\t45,00 EUR",
        "",
        "\tSumme netto\t2.235,00 EUR",
        "\tzzgl. 19 % USt.\t424,65 EUR",
        "\tGesamtsumme\t2.659,65 EUR",
        "",
        "Schreinerei Holzwurm GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00",
    ]
    outcome = parse_document(write_text_pdf(rows), "holzwurm.pdf", today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    assert [line.net_amount for line in outcome.invoice.lines] == [
        D("1840.00"),
        D("350.00"),
        D("45.00"),
    ]


FRENCH_QUANTITY_FIRST = """Atelier Rivage SARL
12 rue des Lilas
69003 Lyon

Client :                                         N° de facture :    FA-2026-0042
Brasserie du Port                                Date de facture :  02/03/2026
4 quai Saint-Antoine                             Date d'échéance :  01/04/2026
69002 Lyon

Facture
   Qté   Désignation                                 Prix unit.     TVA        Total HT
   3 h   Réparation vitrine                              120,00     20 %         360,00
   2 u   Joint silicone                                   46,00    5,5 %          92,00

                                          Total HT                            452,00 EUR
                                          TVA                                  77,06 EUR
                                          Total TTC                           529,06 EUR
                                          Déjà réglé                         -100,00 EUR
                                          Net à payer                         429,06 EUR

Atelier Rivage SARL · N° TVA FR40303265045 · IBAN FR76 3000 6000 0112 3456 7890 189
"""


def test_a_french_table_headed_total_ht_gives_the_vat_and_the_prepaid_proves_the_due() -> None:
    """ "Total HT" heads the amount column and "TVA" the rates: 360.00 at 20 % and 92.00 at
    5.5 % give the 77.06 the page states without a rate; "Déjà réglé" 100.00 closes
    529.06 - 100.00 = 429.06, so every amount is proven."""
    outcome = parse_page_text(FRENCH_QUANTITY_FIRST, today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    invoice = outcome.invoice
    assert [(line.quantity, line.net_amount, line.vat_rate) for line in invoice.lines] == [
        (D("3"), D("360.00"), D("20")),
        (D("2"), D("92.00"), D("5.5")),
    ]
    assert (invoice.prepaid, invoice.amount_due) == (D("100.00"), D("429.06"))


def test_a_french_prepaid_that_does_not_close_the_sum_names_the_amount_due() -> None:
    """The same page with 429.60 to pay: no payment explains it, the amount due is held."""
    outcome = parse_page_text(FRENCH_QUANTITY_FIRST.replace("429,06", "429,60"), today=TODAY)
    assert outcome.status == "NEEDS_REVIEW"
    unproven = [f.message for f in outcome.review if f.rule == "IP-REV-14"]
    assert unproven == [
        "the amount due 429.60 is not proven by the invoice's own sums: BR-CO-16 total 529.06 "
        "- prepaid 0, amount due 429.60"
    ]


def test_a_header_repeated_on_the_next_page_with_its_columns_moved_continues_the_table() -> None:
    """Page 2's text layer spaces the same header wider (as pdftotext does when a page's
    widths differ): its rows are read under it, the amount carried over is not a line."""
    first, second = OVER_TWO_PAGES.split("\f")
    header = second.split("\n")[2]
    wider = (
        "Pos    Beschreibung" + " " * 44 + "Menge" + " " * 8 + "Einzelpreis" + " " * 12 + "Betrag"
    )
    rows = [
        " " * 90 + "Übertrag     1.580,00",
        "3      Lieferung und Aufbau" + " " * 38 + "1" + " " * 11 + "120,00" + " " * 12 + "120,00",
    ]
    second = second.replace(header, wider).replace(
        "\n".join(second.split("\n")[3:5]), "\n".join(rows)
    )
    lines = read_table(_page(first + "\f" + second).split("\n"))
    assert [line.net_amount for line in lines] == [D("820.00"), D("760.00"), D("120.00")]
