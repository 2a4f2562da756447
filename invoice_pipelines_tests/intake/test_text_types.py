"""The document type read from a page's title (UNTDID 1001), and the amount due when nothing was
paid before: a credit note booked as an invoice changes the sign."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from invoice_pipelines.intake.domain.formats.text import extract_fields

BODY = """
Nr. 2026-0042 vom 03.11.2026
Nettobetrag 100,00 EUR
USt. 19 % 19,00 EUR
Gesamtbetrag 119,00 EUR
"""


@pytest.mark.parametrize(
    ("title", "code"),
    [
        ("Rechnung", "380"),
        ("Handelsrechnung", "380"),
        ("Schlussrechnung", "380"),
        ("Commercial invoice", "380"),
        ("Handelsrechnung (380)", "380"),
        ("Gutschrift (Selbst ausgestellte Rechnung) (389)", "389"),
        ("Gutschrift", "381"),  # a credit note unless it says self-billing (read unsure)
        ("Gutschrift im Gutschriftsverfahren", "389"),
        ("Self-billed invoice", "389"),
        ("Rechnungskorrektur", "384"),
        ("Stornorechnung", "381"),
        ("Credit note", "381"),
        ("Avoir", "381"),
        ("Abschlagsrechnung Nr. 3", "326"),
        ("Teilrechnung", "326"),
        ("Vorauszahlungsrechnung", "386"),
        ("Beitragsrechnung", "575"),
        ("Mietrechnung", "387"),
    ],
)
def test_the_title_names_the_document_type(title: str, code: str) -> None:
    fields = extract_fields(f"Muster GmbH\n{title}\n{BODY}")
    assert fields.value("type_code") == code


def test_the_amount_due_is_the_total_unless_something_was_paid_before() -> None:
    assert extract_fields(f"Rechnung\n{BODY}").value("amount_due") == D("119.00")
    prepaid = f"Rechnung\n{BODY}Bereits gezahlt 50,00 EUR\n"
    assert extract_fields(prepaid).value("amount_due") != D("119.00")


@pytest.mark.parametrize(
    ("title", "code", "sure"),
    [
        # an invoice for construction work is a commercial invoice (the FeRD samples' XML says
        # 380); a final construction invoice says so and is 877
        ("Baurechnung", "380", True),
        ("Bauschlussrechnung", "877", True),
        # a kind of invoice the reader does not know stays for a person to confirm
        ("Zwischenrechnung", "380", False),
    ],
)
def test_a_construction_invoice_is_a_commercial_invoice(title: str, code: str, sure: bool) -> None:
    fields = extract_fields(f"Muster GmbH\n{title} Nr. 2026-0042\n{BODY}")
    assert fields.value("type_code") == code
    assert (fields.fields["type_code"].confidence >= 0.6) is sure


@pytest.mark.parametrize(
    ("label", "code", "sure"),
    [
        ("Währung: EUR", "EUR", True),
        # a scan's colon read as ">", "‘:" or "ı:"
        ("Wahrung               > EUR", "EUR", True),
        ("Währung               ı: CHF", "CHF", True),
        ("Rechnungswährung      ‘: GBP", "GBP", True),
        # a number after the label is no code: only the mark beside an amount counts, unsure
        ("Währung: 100 EUR", "EUR", False),
        ("Währung: Euro", None, False),
    ],
)
def test_the_labelled_currency_is_read_past_a_scans_marks(
    label: str, code: str | None, sure: bool
) -> None:
    fields = extract_fields(f"Muster GmbH\nRechnung\n{label}\n{BODY.replace(' EUR', '')}")
    found = fields.fields.get("currency")
    assert (found.value if found else None) == code
    assert (found is not None and found.confidence >= 0.9) is sure
