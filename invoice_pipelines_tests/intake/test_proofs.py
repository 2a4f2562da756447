"""An invoice read from a page is VALIDATED when its own sums prove what was read (issue 84), and
held for review naming the value nothing proved when they do not: the VAT breakdown its lines
give, a prepaid amount or a payment received that makes the amount due, a number beside its
title."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from invoice_pipelines.core.invoice import Invoice, InvoiceLine, VatBreakdown
from invoice_pipelines.intake.domain.parse import parse_page_text
from invoice_pipelines.intake.domain.proofs import derived_breakdown, prove

TODAY = date(2026, 3, 10)
PAGE = """Lieferant GmbH - Lieferantenstraße 20 - 80333 München

Kunden AG Mitte
Kundenstraße 15
69876 Frankfurt

Rechnung Nr. 471102                                      Rechnungsdatum: 05.03.2026

Pos  Beschreibung            Menge    Einzelpreis    USt.       Betrag
1    Trennblätter A4           20        9,90 EUR    19 %   198,00 EUR
2    Joghurt Banane            50        5,50 EUR     7 %   275,00 EUR

Nettobetrag                                                 473,00 EUR
Umsatzsteuer                                                 56,87 EUR
Gesamtbetrag                                                529,87 EUR
{after}
Lieferant GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00
"""


def page(after: str = "", **replaced: str) -> str:
    text = PAGE.replace("{after}", after)
    for old, new in replaced.items():
        text = text.replace(old.replace("_", " "), new)
    return text


def review(text: str) -> tuple[str, dict[str, str]]:
    """The status and the review's messages by rule (several of one rule joined)."""
    outcome = parse_page_text(text, today=TODAY)
    found: dict[str, str] = {}
    for finding in outcome.review:
        found[finding.rule] = " | ".join(filter(None, (found.get(finding.rule), finding.message)))
    return outcome.status, found


def test_the_vat_without_a_rate_is_proven_by_the_lines_rates() -> None:
    """198.00 at 19 % and 275.00 at 7 % give the stated 56.87, and the lines add up to the net:
    the breakdown the page does not print is derived, and the document goes straight through."""
    outcome = parse_page_text(page(), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    invoice = outcome.invoice
    assert [(b.rate, b.basis, b.amount) for b in invoice.vat_breakdown] == [
        (D("19"), D("198.00"), D("37.62")),
        (D("7"), D("275.00"), D("19.25")),
    ]
    assert outcome.raw["vat_breakdown_from_lines"] is True
    assert outcome.raw["proofs"]["unproven"] == {}
    assert all(p["holds"] for p in outcome.raw["proofs"]["proofs"])


def test_a_misread_vat_goes_to_review_naming_the_vat() -> None:
    """56.78 for 56.87 (and the total misread to match): net + VAT = total still holds, but the
    lines' rates give 56.87, so nothing proves the VAT; the review says which value and why."""
    status, found = review(page(**{"56,87": "56,78", "529,87": "529,78"}))
    assert status == "NEEDS_REVIEW"
    assert found["IP-REV-14"].startswith("the VAT 56.78 is not proven")
    assert "the net total" not in found["IP-REV-14"]
    assert "BR-CO-14" in found["IP-REV-14"]


def test_a_misread_line_rate_proves_nothing() -> None:
    """The 7 % line read as 19 %: 473.00 at 19 % is 89.87, not 56.87; no breakdown is derived."""
    status, found = review(page(**{"7_%": "19 %"}))
    assert status == "NEEDS_REVIEW"
    assert "VAT 56.87 is stated but no rate was read with it" in found["IP-REV-04"]
    assert "the VAT 56.87 is not proven" in found["IP-REV-14"]


def test_a_prepayment_on_the_page_proves_the_amount_due() -> None:
    """Total 529.87 less the 200.00 received is the 329.87 due (BR-CO-16 with BT-113)."""
    after = "Erhaltene Anzahlung                                        -200,00 EUR\n"
    after += "Zahlbetrag                                                 329,87 EUR\n"
    outcome = parse_page_text(page(after), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    assert (outcome.invoice.prepaid, outcome.invoice.amount_due) == (D("200.00"), D("329.87"))


def test_a_payment_received_in_a_payments_table_proves_the_amount_due() -> None:
    """A table of payments under its heading ("Règlement / Date / Montant") holds BT-113."""
    after = "        Payment             Date           Amount\n"
    after += "SEPA Wire transfer         01.03.2026       100,00 EUR\n"
    after += "                                          Residual        429,87 EUR\n"
    outcome = parse_page_text(page(after).replace("Residual", "Zahlbetrag"), today=TODAY)
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]
    assert outcome.invoice.prepaid == D("100.00")


def test_an_amount_due_that_no_payment_explains_goes_to_review() -> None:
    """329.78 due on a total of 529.87 with 200.00 received: the amount due is named."""
    after = "Erhaltene Anzahlung                                        -200,00 EUR\n"
    after += "Zahlbetrag                                                 329,78 EUR\n"
    status, found = review(page(after))
    assert status == "NEEDS_REVIEW"
    assert found["IP-REV-14"].startswith("the amount due 329.78 is not proven")
    assert "BR-CO-16" in found["IP-REV-14"]


def test_lines_that_miss_the_net_name_the_net() -> None:
    """The second line read as 5.14 x 50 = 257.00 (its own arithmetic holds, the net's not)."""
    status, found = review(page(**{"5,50_EUR_____7_%___275,00": "5,14 EUR     7 %   257,00"}))
    assert status == "NEEDS_REVIEW"
    assert "the net total 473.00 is not proven" in found["IP-REV-14"]
    assert "the 2 lines add up to 455.00" in found["IP-REV-14"]


def test_a_number_beside_its_title_alone_on_its_line_is_read_as_sure() -> None:
    """ "Facture FA-2017-0010" on its own line at the top, printed once: no confidence doubt;
    the same number repeated in the footer is a guess again."""
    title = "Rechnung Nr. 471102" + " " * 38
    text = page(**{title.replace(" ", "_"): "Rechnung FA-2026-0010\n"})
    status, found = review(text)
    assert status == "VALIDATED", found
    status, found = review(text + "Referenz FA-2026-0010\n")
    assert status == "NEEDS_REVIEW"
    assert "invoice number" in found["IP-REV-02"]
    # a month after the title is a period, not the number
    status, found = review(text.replace("Rechnung FA-2026-0010", "Rechnung 03/2026"))
    assert status == "NEEDS_REVIEW"


def _invoice(**changes) -> Invoice:
    values = dict(
        net_total=D("473.00"),
        tax_total=D("56.87"),
        gross_total=D("529.87"),
        amount_due=D("529.87"),
        lines=(
            InvoiceLine(net_amount=D("198.00"), vat_rate=D("19")),
            InvoiceLine(net_amount=D("275.00"), vat_rate=D("7")),
        ),
        origin="text",
    )
    values.update(changes)
    return Invoice(**values)


@pytest.mark.parametrize(
    ("changes", "derived"),
    [
        ({}, 2),
        ({"tax_total": D("56.88")}, 0),  # several rates: to the cent
        ({"lines": (InvoiceLine(net_amount=D("473.00"), vat_rate=D("8.5")),)}, 0),  # no VAT rate
        ({"lines": (InvoiceLine(net_amount=D("473.00")),)}, 0),  # no rate read
        ({"net_total": D("474.00")}, 0),  # the lines miss the net
        ({"vat_breakdown": (VatBreakdown(None, D("19"), D("473.00"), D("56.87")),)}, 0),
    ],
)
def test_a_breakdown_is_derived_only_when_the_sums_prove_it(changes, derived) -> None:
    assert len(derived_breakdown(_invoice(**changes))) == derived


def test_one_rate_allows_a_cent_per_line_of_rounding() -> None:
    """Three lines of 10.05 at 19 % rounded one by one give 5.73 (3 x 1.91), 30.15 x 19 % is
    5.73 too; a VAT two cents off with one line is not a rounding."""
    lines = tuple(InvoiceLine(net_amount=D("10.05"), vat_rate=D("19")) for _ in range(3))
    three = _invoice(lines=lines, net_total=D("30.15"), tax_total=D("5.74"))
    assert derived_breakdown(three)[0].amount == D("5.74")
    one = _invoice(
        lines=(InvoiceLine(net_amount=D("100.00"), vat_rate=D("19")),),
        net_total=D("100.00"),
        tax_total=D("19.02"),
    )
    assert derived_breakdown(one) == ()


def test_proofs_chain_from_the_lines_to_the_amount_due() -> None:
    breakdown = derived_breakdown(_invoice())
    proven = prove(_invoice(vat_breakdown=breakdown))
    assert proven.complete and [p.rule for p in proven.proofs] == [
        "BR-CO-10",
        "BR-CO-14",
        "BR-CO-15",
        "BR-CO-16",
    ]
    # no line and no breakdown: the net and the VAT are named, the total and the amount due
    # hold on them and are not named again
    unproven = prove(_invoice(lines=()))
    assert set(unproven.unproven) == {"net_total", "tax_total"}
    assert unproven.resting == ("gross_total", "amount_due")
    messages = [f.message for f in unproven.findings(_invoice(lines=()))]
    assert messages[0] == (
        "the net total 473.00 is not proven by the invoice's own sums: BR-CO-10 no invoice line "
        "was read; BR-CO-14 VAT 56.87 and no rate with it"
    )


def test_no_vat_is_proven_when_the_net_is_the_total() -> None:
    zero = _invoice(
        tax_total=D("0.00"),
        gross_total=D("473.00"),
        amount_due=D("473.00"),
        lines=(InvoiceLine(net_amount=D("473.00")),),
    )
    assert prove(zero).complete


PDF_LINES = [
    "Lieferant GmbH - Lieferantenstraße 20 - 80333 München",
    "",
    "Kunden AG Mitte",
    "Kundenstraße 15",
    "69876 Frankfurt",
    "",
    "Rechnung Nr. {number}",
    "Rechnungsdatum: 05.03.2026",
    "",
    "Pos Beschreibung\tMenge\tEinzelpreis\tUSt.\tBetrag",
    "1 Trennblätter A4\t20\t9,90 EUR\t19 %\t198,00 EUR",
    "2 Joghurt Banane\t50\t5,50 EUR\t7 %\t275,00 EUR",
    "",
    "\t\t\tNettobetrag\t473,00 EUR",
    "\t\t\tUmsatzsteuer\t{vat} EUR",
    "\t\t\tGesamtbetrag\t{gross} EUR",
    "",
    "Lieferant GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00",
]


def _text_pdf(number: str, vat: str, gross: str) -> bytes:
    from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf

    return write_text_pdf([line.format(number=number, vat=vat, gross=gross) for line in PDF_LINES])


def test_the_intake_books_a_proven_text_pdf_and_names_the_unproven_vat(db, tmp_path) -> None:
    """Through the intake on both databases: the proven PDF is VALIDATED and `incoming show`
    gives its proofs; the one whose VAT was misread waits for review, and both `incoming show`
    and the list of what waits (the asset's metadata table) name the VAT and the failed sum."""
    from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
    from invoice_pipelines.intake.domain.incoming_invoices import documents_in_review
    from invoice_pipelines.intake.domain.listing import show_document
    from invoice_pipelines_tests.conftest import require_programs
    from invoice_pipelines_tests.intake.test_skonto_received import run_intake

    require_programs("pdftotext")
    org = db.new_organization()
    files = {
        "proven.pdf": _text_pdf("471102", "56,87", "529,87"),
        "misread.pdf": _text_pdf("471103", "56,78", "529,78"),
    }
    rows = run_intake(db, tmp_path, org, files)
    organization = find_organization(db.engine, org["slug"])
    assert rows["proven.pdf"]["status"] == "VALIDATED"
    shown = show_document(db.engine, organization, rows["proven.pdf"]["id"])
    assert shown["proofs"]["unproven"] == {}
    assert [p["rule"] for p in shown["proofs"]["proofs"] if p["holds"]] == [
        "BR-CO-10",
        "BR-CO-14",
        "BR-CO-15",
        "BR-CO-16",
    ]

    misread = rows["misread.pdf"]
    assert misread["status"] == "NEEDS_REVIEW"
    shown = show_document(db.engine, organization, misread["id"])
    assert list(shown["proofs"]["unproven"]) == ["tax_total"]
    assert any(
        f["rule"] == "IP-REV-14" and f["message"].startswith("the VAT 56.78 is not proven")
        for f in shown["findings"]
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        _, waiting = documents_in_review(conn, organization_id=org["id"])
    (row,) = [r for r in waiting if r["id"] == misread["id"]]
    assert row["rule"] == "IP-REV-14" and "the VAT 56.78" in row["why"]


def test_a_scanned_amount_with_ocr_look_alikes_is_on_the_page() -> None:
    """Tesseract's "473,OO" is the 473,00 the reader read: the net is printed on the page (no
    IP-REV-05) and its sums prove it, so the scan goes straight through."""
    from invoice_pipelines.intake.domain.parse import parse_ocr_text

    text = page(**{"473,00_EUR\n": "473,OO EUR\n"})
    assert "473,OO" in text
    outcome = parse_ocr_text(text, source_format="image", confidence=0.95, today=TODAY)
    assert outcome.invoice.net_total == D("473.00")
    assert outcome.status == "VALIDATED", [f.message for f in outcome.review]


def test_the_parse_command_shows_the_proofs(tmp_path) -> None:
    """`invoice-pipelines parse FILE --json` gives the sums and the amount none proves."""
    import json
    import subprocess

    from invoice_pipelines_tests.conftest import require_programs
    from invoice_pipelines_tests.intake.test_cli_parse import SCRIPT

    require_programs("pdftotext")
    path = tmp_path / "misread.pdf"
    path.write_bytes(_text_pdf("471104", "56,78", "529,78"))
    completed = subprocess.run(
        [str(SCRIPT), "parse", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = json.loads(completed.stdout)
    assert result["status"] == "NEEDS_REVIEW"
    assert list(result["proofs"]["unproven"]) == ["tax_total"]
    assert result["review"][0]["rule"] == "IP-REV-14"


def test_an_issue_date_under_a_generic_label_is_proven_by_the_due_date_and_terms() -> None:
    """ "Datum 05.03.2026" is a guess (0.7) until the due date beside its own label is that day
    plus the 30 days the terms state; a due date one day off proves nothing."""
    title = "Rechnung Nr. 471102" + " " * 38 + "Rechnungsdatum: 05.03.2026"
    terms = "Fällig am: 04.04.2026\nZahlbar innerhalb von 30 Tagen netto.\n"
    text = page(terms).replace(title, "Rechnung Nr. 471102\nDatum          05.03.2026")
    status, found = review(text)
    assert status == "VALIDATED", found
    status, found = review(text.replace("04.04.2026", "05.04.2026"))
    assert status == "NEEDS_REVIEW"
    assert found["IP-REV-02"].startswith("the issue date was read")


def test_a_low_scan_confidence_holds_only_what_the_sums_do_not_prove() -> None:
    """A scan's page-wide confidence (0.72: specks read as words drag it down) scales every value
    below the floor of 0.7. The amounts the invoice's own sums prove are not held for it; the
    number and the date, which no sum proves, still are, and so is an amount whose sum fails."""
    from invoice_pipelines.intake.domain.parse import parse_ocr_text

    def low(text: str) -> dict[str, str]:
        outcome = parse_ocr_text(text, source_format="image", confidence=0.72, today=TODAY)
        return {f.message.split(" was read")[0]: f.rule for f in outcome.review}

    held = low(page())
    assert {name for name, rule in held.items() if rule == "IP-REV-02"} == {
        "the invoice number",
        "the issue date",
    }
    # 56.78 for 56.87 and the total misread to match: the net is still proven by the lines,
    # nothing proves the VAT, and the total and the amount due rest on it
    misread = low(page(**{"56,87": "56,78", "529,87": "529,78"}))
    assert {name for name, rule in misread.items() if rule == "IP-REV-02"} == {
        "the invoice number",
        "the issue date",
        "the VAT",
        "the total with VAT",
        "amount due",
    }


NO_VAT_PAGE = """Lieferant GmbH - Lieferantenstraße 20 - 80333 München

Kunden Ltd.
93B Sai Yu Chung
Hong Kong

Rechnung Nr. 471102                                      Rechnungsdatum: 05.03.2026

Pos  Beschreibung            Menge    Einzelpreis       Betrag
1    Trennblätter A4           20        9,90 EUR    198,00 EUR
2    Joghurt Banane            50        5,50 EUR    275,00 EUR

Summe                                                       473,00 EUR
{after}
Lieferant GmbH · USt-IdNr. DE123456789 · IBAN DE89 3704 0044 0532 0130 00
"""


def test_a_page_without_vat_reads_its_net_from_the_lines_and_stays_in_review() -> None:
    """No VAT rate or amount anywhere, and the lines add up to the total: the net is the lines'
    sum and the VAT 0.00, read but held (the page does not say why no VAT is charged)."""
    outcome = parse_page_text(NO_VAT_PAGE.replace("{after}", ""), today=TODAY)
    invoice = outcome.invoice
    assert (invoice.net_total, invoice.tax_total, invoice.gross_total) == (
        D("473.00"),
        D("0.00"),
        D("473.00"),
    )
    assert outcome.status == "NEEDS_REVIEW"
    held = " | ".join(f.message for f in outcome.review)
    assert "the net total was read" in held and "the VAT was read" in held


@pytest.mark.parametrize(
    "after",
    [
        "Im Rechnungsbetrag sind 19 % MwSt. enthalten",  # a rate beside a VAT word
        "Alle Preise inkl. MwSt.",  # the prices include VAT: the lines are gross
    ],
)
def test_a_page_that_names_vat_is_not_read_as_one_without(after: str) -> None:
    outcome = parse_page_text(NO_VAT_PAGE.replace("{after}", after), today=TODAY)
    assert outcome.invoice.net_total is None
    assert outcome.invoice.tax_total is None
    assert outcome.status == "NEEDS_REVIEW"
