"""A hybrid PDF's page against its XML (intake/hybrid.py): a page that shows another invoice is
named, with both values; a page that agrees, or one with too little text, says nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from invoice_pipelines.core.invoice import Invoice
from invoice_pipelines.intake.hybrid import compare

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


def test_a_page_that_agrees_gives_no_finding() -> None:
    assert compare(PAGE, xml()) == []
    # the XML's number written otherwise (spaces, case) is the same number
    assert compare(PAGE, xml(number="re-2026/ 0042")) == []


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
            "the total with VAT 119.00",
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


def test_a_page_without_text_says_nothing() -> None:
    assert compare("   \n\f  ", xml(number="X-1")) == []
