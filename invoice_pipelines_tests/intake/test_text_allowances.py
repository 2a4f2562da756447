"""What a page's own sums prove beyond its lines (issue 84): the sums of the document's
allowances and charges that take the lines to the net (BR-CO-13), a payment received listed under
a heading that shares its line with a total, and the day a direct debit takes the amount. Each is
read only when the invoice's arithmetic closes with it, so a misprint or a misreading proves
nothing and the document waits for a person."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from invoice_pipelines.intake.domain.parse import parse_page_text

TODAY = date(2026, 3, 10)
ALLOWANCES = """Lieferant GmbH - Lieferantenstraße 20 - 80333 München

Kunden AG Mitte
Kundenstraße 15
69876 Frankfurt

Rechnung Nr. 471102                                      Rechnungsdatum: 05.03.2026
Währung: EUR

Pos  Beschreibung            Menge    Einzelpreis    USt.       Betrag
1    Kunstrasen                 3         3,3333    19 %        10,00
2    Schweinesteak              5         5,5000     7 %        27,50
3    Mineralwasser             20         5,4900     7 %       109,80
4    Pfand                     20         2,7700    19 %        55,40

Es bestehen Rabatt- und Bonusvereinbarungen.

Steueraufschlüsselung:
Art (Kategorie)          Basisbetrag      USt. %      Steuerbetrag
Umsatzsteuer (S)              129,37           7              9,06
Umsatzsteuer (S)               64,40          19             12,24

                               Positionssumme                      202,70
                               Gesamtbetrag der Zuschläge            5,80
                               Gesamtbetrag der Abschläge          {allowances}
                               Rechnungssumme ohne USt.            193,77
                               Steuerbetrag                         21,30
                               Bruttosumme                         215,07
                               Zahlbetrag                          215,07

Lieferant GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00
"""


def test_the_sums_of_allowances_and_charges_take_the_lines_to_the_net() -> None:
    outcome = parse_page_text(ALLOWANCES.replace("{allowances}", "-14,73"), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    invoice = outcome.invoice
    assert (invoice.allowance_total, invoice.charge_total) == (D("14.73"), D("5.80"))
    assert invoice.net_total == D("193.77")
    lines_proof = outcome.raw["proofs"]["proofs"][0]
    assert lines_proof["holds"]
    assert "less allowances 14.73 plus charges 5.80" in lines_proof["detail"]


def test_an_allowance_sum_that_does_not_close_the_net_proves_nothing() -> None:
    outcome = parse_page_text(ALLOWANCES.replace("{allowances}", "-13,73"), today=TODAY)
    assert outcome.status == "NEEDS_REVIEW"
    assert outcome.invoice.allowance_total is None
    assert any(
        f.rule == "IP-REV-08" and "202.70" in f.message and "193.77" in f.message
        for f in outcome.review
    ), [f.message for f in outcome.review]


PAYMENTS = """Au bon moulin SARL · 12 rue du Four · 69001 Lyon

Client SA
4 place Bellecour
69002 Lyon

Facture N° FA-2017-0471                                  Date: 05/11/2017
Date d'échéance: 05/12/2017
Devise: EUR

Description                              Quantité      Prix unitaire       Prix HT
Nougat de l'Abbaye 250g                  50             4,55 €           204,75 €
Biscuits aux raisins 300g                40             3,20 €           128,00 €
Huile d'olive                            10            19,80 €           198,00 €
      Taxe               Base          Montant                       Total HT     530,75 €
TVA 0% export (vente)    530,75 €      0,00 €
                                                                  Total taxes       0,00 €
      Règlement          Date          Montant                       Total TTC    530,75 €
Vir SEPA                 31/10/2017    {paid}
                                                                  Solde à payer   383,75 €

Au bon moulin SARL · SIRET 123 456 789 00012 · TVA FR40303265045
IBAN FR76 3000 6000 0112 3456 7890 189
"""


def test_a_payment_under_a_heading_that_shares_its_line_with_the_total_is_the_prepaid() -> None:
    outcome = parse_page_text(PAYMENTS.replace("{paid}", "147,00 €"), today=TODAY)
    assert outcome.invoice.prepaid == D("147.00")
    assert (outcome.invoice.gross_total, outcome.invoice.amount_due) == (D("530.75"), D("383.75"))
    assert not any(f.rule == "BR-CO-16" for f in outcome.review), [
        f.message for f in outcome.review
    ]


def test_a_payment_that_does_not_make_the_amount_due_is_not_the_prepaid() -> None:
    outcome = parse_page_text(PAYMENTS.replace("{paid}", "146,00 €"), today=TODAY)
    assert outcome.invoice.prepaid is None
    assert outcome.status == "NEEDS_REVIEW"
    assert any(f.rule == "BR-CO-16" for f in outcome.review)


def test_the_day_a_direct_debit_takes_the_amount_is_the_due_date() -> None:
    page = ALLOWANCES.replace("{allowances}", "-14,73") + (
        "Der Betrag in Höhe von EUR 215,07 wird am 20.03.2026 von Ihrem Konto mit IBAN\n"
        "DE21860000000086001055 per SEPA-Lastschrift eingezogen.\n"
    )
    assert parse_page_text(page, today=TODAY).invoice.due_date == date(2026, 3, 20)
    # "wird am" without a debit is no due date, nor a delivery beside a debit mandate
    other = page.replace("SEPA-Lastschrift eingezogen", "Boten geliefert")
    assert parse_page_text(other, today=TODAY).invoice.due_date is None
    delivery = page.replace("Der Betrag in Höhe von EUR 215,07 wird am", "Die Ware wird am")
    assert parse_page_text(delivery, today=TODAY).invoice.due_date is None


HEADED = """e-Luscious Nederland B.V. · Badweg 48 · 8401 BL Gorredijk

Strategic Corp
Fakestreet 46
3500 MJ Utrecht

 Kopie factuur
 Klant                   Order                 Factuur datum          Factuur         Vervaldatum
 SCONL0303006280999      SCONL000000444             8-9-2022      {number}          22-9-2022
"""


def test_the_number_under_the_documents_own_word_in_a_row_of_headings() -> None:
    from invoice_pipelines.intake.domain.formats.text.extract import extract_fields

    fields = extract_fields(HEADED.replace("{number}", "VF1005193039")).fields
    assert fields["number"].value == "VF1005193039"
    assert fields["number"].confidence == 0.85
    # printed a second time on the page: a guess, below the confidence a VALIDATED one needs
    twice = HEADED.replace("{number}", "VF1005193039") + "Referentie VF1005193039\n"
    assert extract_fields(twice).fields["number"].confidence == 0.7
    # a date under the heading is no number
    dated = HEADED.replace("{number}", "  8-9-2022  ")
    assert "number" not in extract_fields(dated).fields


def test_a_due_date_printed_beside_its_label_but_not_read_holds_the_document() -> None:
    from invoice_pipelines.intake.domain.plausibility import due_date_printed, review_findings

    terms = (
        "Zahlungsbedingungen:\nBeschreibung        Fälligkeit        Teilzahlung\n{gap}03.10.2018\n"
    )
    assert due_date_printed(terms.format(gap="")) == "Fälligkeit"
    assert due_date_printed(terms.format(gap="\n\n\n")) is None  # four lines down: not beside it
    assert due_date_printed("Fällig: sofort nach Erhalt\n") is None  # no date to read
    # a reading that missed the printed date (as a scan's did: the date under its heading in
    # the terms' table) is held; the same reading of a page without a due date is not
    page = ALLOWANCES.replace("{allowances}", "-14,73")
    invoice = parse_page_text(page, today=TODAY).invoice
    assert invoice.due_date is None

    def held(text: str) -> list[str]:
        found = review_findings(invoice, text, origin="ocr", today=TODAY)
        return [f.message for f in found if f.rule == "IP-REV-01" and "due date" in f.message]

    assert held(page + terms.format(gap="")) == [
        "the due date could not be read from the scan, though the page prints one beside its "
        "label ('Fälligkeit')"
    ]
    assert held(page) == []
