"""The text and OCR readers tell the sender of a page from its recipient (issue 54): the
letterhead, the DIN 5008 sender line and the footer with the sender's own VAT id and IBAN name
the seller; the address block names the buyer, never the seller. Where the page does not show
which company sent it, the document waits for a person (IP-REV-12) instead of a guessed seller.

Found from outside: a law firm's text PDF addressed to Mueller Werkzeugbau was VALIDATED with
seller_name "Mueller Werkzeugbau GmbH" (the organization itself) beside the firm's VAT id.
"""

from __future__ import annotations

from datetime import date

import pytest

from invoice_pipelines.einvoice.read import ParseOutcome
from invoice_pipelines.intake.domain.parse import parse_document, parse_ocr_text
from invoice_pipelines_devtools.demo.invoices import german_iban, scan_image
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf
from invoice_pipelines_tests.conftest import require_programs

TODAY = date(2026, 11, 20)
FIRM = "Kanzlei Hartmann & Partner mbB"
CUSTOMER = "Mueller Werkzeugbau GmbH"
FIRM_VAT_ID = "DE287654321"
FIRM_IBAN = german_iban("10050000", "1234567890")

HEADER_DE = [
    "Rechnung",
    "",
    "Rechnungsnummer: HP-2026-0417",
    "Rechnungsdatum: 03.11.2026",
    "Fällig am: 17.11.2026",
    "",
    "Pos.  Leistung\t\tBetrag",
    "1  Beratung Arbeitsrecht, 4 Stunden\t\t1.000,00 EUR",
    "\tNettobetrag\t1.000,00 EUR",
    "\tUSt. 19 %\t190,00 EUR",
    "\tGesamtbetrag\t1.190,00 EUR",
    "",
]
RECIPIENT = [CUSTOMER, "Schützenstraße 14", "42659 Solingen"]
FOOTER = [
    "",
    f"{FIRM} · Partnerschaftsregister AG Berlin PR 1234 · USt-IdNr. {FIRM_VAT_ID}",
    f"Berliner Volksbank · IBAN {FIRM_IBAN} · BIC BEVODEBBXXX",
]


def _parse(lines: list[str]) -> ParseOutcome:
    return parse_document(write_text_pdf(lines), "rechnung.pdf", today=TODAY)


def _rules(outcome: ParseOutcome) -> dict[str, str]:
    return {f.rule or "": f.message for f in outcome.review}


def _law_firm_letter() -> list[str]:
    """DIN 5008: letterhead, the small sender line over the address window, the address block,
    and the footer with the firm's register, VAT id and bank account."""
    return [
        FIRM,
        "Rechtsanwälte · Steuerberater",
        "",
        f"{FIRM} · Hauptstr. 1 · 10115 Berlin",
        *RECIPIENT,
        "",
        *HEADER_DE,
        *FOOTER,
    ]


def test_the_law_firm_is_the_seller_and_the_addressee_the_buyer() -> None:
    outcome = _parse(_law_firm_letter())
    invoice = outcome.invoice
    assert invoice is not None
    assert invoice.seller_name == FIRM
    assert invoice.buyer_name == CUSTOMER
    assert invoice.seller_vat_id == FIRM_VAT_ID
    assert invoice.iban == FIRM_IBAN
    assert "IP-REV-12" not in _rules(outcome)
    assert invoice.confidence["seller_name"] >= 0.75


def test_bill_to_label_names_the_buyer_in_english() -> None:
    lines = [
        "Hartmann & Partner Solicitors LLP",
        "1 Fleet Street, London EC4Y 1AA",
        "",
        "Bill to:",
        "Mueller Tooling Ltd",
        "12 Mill Road",
        "Sheffield S1 2AB",
        "",
        "INVOICE",
        "Invoice No: HP-2026-0418",
        "Invoice date: 2026-11-03",
        "Due date: 2026-11-17",
        "",
        "Description\t\tAmount",
        "Employment law advice, 4 hours\t\t1,000.00 GBP",
        "\tNet total\t1,000.00 GBP",
        "\tVAT 20%\t200.00 GBP",
        "\tTotal\t1,200.00 GBP",
        "",
        "Hartmann & Partner Solicitors LLP · Registered in England No. 0C123456 · "
        "VAT No: GB 123 4567 89",
    ]
    invoice = _parse(lines).invoice
    assert invoice is not None
    assert invoice.seller_name == "Hartmann & Partner Solicitors LLP"
    assert invoice.buyer_name == "Mueller Tooling Ltd"
    assert invoice.seller_vat_id == "GB123456789"


def test_a_sender_named_only_in_the_footer() -> None:
    """No letterhead, no sender line: the page opens with the recipient's address, and the
    sender signs at the foot with its VAT id and IBAN. The address is the buyer's."""
    outcome = _parse([*RECIPIENT, "", "", *HEADER_DE, *FOOTER])
    invoice = outcome.invoice
    assert invoice is not None
    assert (invoice.seller_name, invoice.buyer_name) == (FIRM, CUSTOMER)
    assert invoice.seller_vat_id == FIRM_VAT_ID
    assert "IP-REV-12" not in _rules(outcome)


@pytest.mark.parametrize(
    "head",
    [
        # side by side, no sender line, no label, no tax or bank details
        [
            f"{FIRM}\t\t{CUSTOMER}",
            "Hauptstr. 1\t\tSchützenstraße 14",
            "10115 Berlin\t\t42659 Solingen",
        ],
        # one under the other in one block
        [FIRM, CUSTOMER, "Schützenstraße 14", "42659 Solingen"],
    ],
    ids=["side-by-side", "stacked"],
)
def test_two_companies_and_nothing_to_tell_them_apart_wait_for_a_person(
    head: list[str],
) -> None:
    outcome = _parse([*head, "", *HEADER_DE])
    assert outcome.status == "NEEDS_REVIEW"
    message = _rules(outcome)["IP-REV-12"]
    assert FIRM in message and CUSTOMER in message
    assert outcome.invoice is not None
    assert outcome.invoice.seller_name is None  # no guessed seller


def test_a_page_that_names_only_one_address_waits_for_a_person() -> None:
    """The old reader took the only company name on the page, the addressee's, as the seller."""
    outcome = _parse([*RECIPIENT, "", *HEADER_DE])
    assert outcome.status == "NEEDS_REVIEW"
    assert CUSTOMER in _rules(outcome)["IP-REV-12"]
    assert outcome.invoice is not None and outcome.invoice.seller_name is None


def test_the_scan_of_the_law_firm_letter_reads_the_same_parties() -> None:
    """OCR text goes through the same reader: Tesseract on a scan of the letter."""
    require_programs("tesseract", "pdftoppm")
    from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine

    image = scan_image(write_text_pdf(_law_firm_letter()), seed=54)
    page = TesseractOcrEngine().reader().ocr_image(image)
    outcome = parse_ocr_text(
        page.text, source_format="image", confidence=page.confidence, today=TODAY
    )
    invoice = outcome.invoice
    assert invoice is not None
    assert invoice.seller_name == FIRM
    assert invoice.buyer_name == CUSTOMER
    assert invoice.seller_vat_id == FIRM_VAT_ID


def test_a_speck_read_as_a_colon_does_not_cut_the_letterheads_name() -> None:
    """OCR read a speck between two words of the letterhead as a colon: the name is still the
    seller's (it was no name at all, and the page waited for a person for want of a sender)."""
    lines = [
        "Druckhaus:Weser GmbH",
        "Hafenstraße 12 · 28195 Bremen",
        "",
        *RECIPIENT,
        "",
        *HEADER_DE,
    ]
    invoice = _parse(lines).invoice
    assert invoice is not None
    assert invoice.seller_name == "Druckhaus Weser GmbH"
    assert invoice.buyer_name == CUSTOMER


def test_a_labels_colon_in_the_head_makes_no_name() -> None:
    lines = ["Ansprechpartner:Herr Meier", "Hafenstraße 12 · 28195 Bremen", "", *RECIPIENT]
    invoice = _parse([*lines, "", *HEADER_DE]).invoice
    assert invoice is not None
    assert "Meier" not in (invoice.seller_name or "")


# An e-invoice's visualisation (the AWV stylesheet's, printed by many senders of ZUGFeRD PDFs)
# labels the parties and puts a field of the party between its label and its name; the text
# layer may split the label's word where the glyphs are kerned.
VISUALISED_HEAD = [
    "Handelsrechnung Nr. E2018092011804 vom 20.09.2018",
    "",
    "{seller_label}",
    "Nummer         : 549910",
    "Globale Nummer: 4333741000005 (GTIN)",
    "MVM Musterhafter",
    "Versicherungsverein Musterstadt a.G.",
    "",
    "Musterstr. 12",
    "DE 12345 Musterstadt",
    "",
    "Käufer:",
    "Nummer        : Liselotte Müllermann",
    "Liselotte Müllermann",
    "Beispielstraße 24",
    "DE 12345 Berlin",
]


@pytest.mark.parametrize("seller_label", ["Verkäufer:", "Ver käufer :"])
def test_a_labelled_seller_is_read_past_the_partys_fields_and_an_empty_line(seller_label) -> None:
    from invoice_pipelines.intake.domain.formats.text.parties import read_parties

    lines = [line.format(seller_label=seller_label) for line in VISUALISED_HEAD]
    parties = read_parties(lines)
    assert parties.seller is not None and parties.seller.name == "MVM Musterhafter"
    assert parties.buyer is not None and parties.buyer.name == "Liselotte Müllermann"
    assert parties.doubt is None


def test_a_field_row_under_a_label_is_never_the_partys_name() -> None:
    from invoice_pipelines.intake.domain.formats.text.parties import read_parties

    # before, "Nummer" (its value in the next cell after a colon) was the seller and the buyer
    # alike, so the seller was dropped as the buyer and the page went to review (BR-06)
    lines = [line.format(seller_label="Verkäufer:") for line in VISUALISED_HEAD]
    parties = read_parties(lines)
    assert "Nummer" not in (parties.seller.name, parties.buyer.name)


def test_a_split_word_that_is_no_label_stays_no_label() -> None:
    from invoice_pipelines.intake.domain.formats.text.parties import read_parties

    lines = [line.format(seller_label="Ver kauf am 3.5. :") for line in VISUALISED_HEAD]
    seller = read_parties(lines).seller
    assert seller is None or seller.evidence != "label"
