"""Every payment account a document names (issue 72): the readers give each IBAN with its BIC, of
every payment means, in document order (CII, UBL, text PDFs, scans), and the intake holds a
document whose IBAN fails ISO 13616 (IP-PAY-01) or whose BIC fails ISO 9362 (IP-PAY-02) for a
person, whatever its e-invoice class. The intake cases run as production runs them, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from invoice_pipelines.core.invoice import Invoice, PaymentAccount
from invoice_pipelines.db.tables import processing_errors
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.parse import parse_document, parse_ocr_text
from invoice_pipelines.intake.domain.plausibility import (
    BAD_BIC,
    BAD_IBAN,
    payment_account_doubts,
    payment_account_problems,
)
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.demo.invoices import german_iban
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.intake.test_duplicates import EINFACH, _intake
from invoice_pipelines_tests.intake.test_text_sender import (
    FIRM,
    FIRM_IBAN,
    HEADER_DE,
    RECIPIENT,
    TODAY,
)

UBL_EINFACH = "ZUGFeRD-corpus/XML-Rechnung/UBL/EN16931_Einfach.ubl.xml"
FIRST = "DE89370400440532013000"
SECOND = german_iban("50010517", "0648489890")
WRONG_CHECKSUM = "DE89370400440532013001"
_numbers = iter(range(1, 10_000))


def _cii(*means: tuple[str, str, str | None]) -> bytes:
    """The EN 16931 CII sample with payment means of (type code, IBAN, BIC), in order."""
    text = (samples_dir() / EINFACH).read_text(encoding="utf-8")
    text = text.replace("<ram:ID>471102</ram:ID>", f"<ram:ID>PAY-{next(_numbers)}</ram:ID>", 1)
    blocks = "".join(
        f"<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>{code}</ram:TypeCode>"
        "<ram:PayeePartyCreditorFinancialAccount>"
        f"<ram:IBANID>{iban}</ram:IBANID></ram:PayeePartyCreditorFinancialAccount>"
        + (
            "<ram:PayeeSpecifiedCreditorFinancialInstitution>"
            f"<ram:BICID>{bic}</ram:BICID></ram:PayeeSpecifiedCreditorFinancialInstitution>"
            if bic
            else ""
        )
        + "</ram:SpecifiedTradeSettlementPaymentMeans>"
        for code, iban, bic in means
    )
    anchor = "<ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>"
    return text.replace(anchor, anchor + blocks, 1).encode()


def _ubl(*means: tuple[str, str, str | None]) -> bytes:
    """The EN 16931 UBL sample with payment means of (type code, account id, BIC), in order."""
    text = (samples_dir() / UBL_EINFACH).read_text(encoding="utf-8")
    blocks = "".join(
        f"<cac:PaymentMeans><cbc:PaymentMeansCode>{code}</cbc:PaymentMeansCode>"
        f"<cac:PayeeFinancialAccount><cbc:ID>{iban}</cbc:ID>"
        + (
            f"<cac:FinancialInstitutionBranch><cbc:ID>{bic}</cbc:ID>"
            "</cac:FinancialInstitutionBranch>"
            if bic
            else ""
        )
        + "</cac:PayeeFinancialAccount></cac:PaymentMeans>\n  "
        for code, iban, bic in means
    )
    anchor = "<cac:PaymentTerms>"
    assert anchor in text
    return text.replace(anchor, blocks + anchor, 1).encode()


def test_a_cii_invoice_gives_every_payment_means_account_in_order() -> None:
    outcome = parse_document(
        _cii(("58", f"{FIRST[:4]} {FIRST[4:8]} {FIRST[8:]}", "cobadeffxxx"), ("58", SECOND, None)),
        "two-accounts.xml",
    )
    invoice = outcome.invoice
    assert invoice is not None and outcome.status == "VALIDATED", outcome.errors
    assert invoice.payment_accounts == (
        PaymentAccount(FIRST, "COBADEFFXXX"),
        PaymentAccount(SECOND, None),
    )
    assert invoice.iban == FIRST and invoice.payment_means_code == "58"
    # the raw JSON a person's review reads keeps them all
    stored = outcome.to_json_dict()["invoice"]
    assert stored["iban"] == FIRST
    assert stored["payment_accounts"] == [
        {"iban": FIRST, "bic": "COBADEFFXXX"},
        {"iban": SECOND, "bic": None},
    ]


def test_a_ubl_invoice_gives_every_payment_means_account_in_order() -> None:
    outcome = parse_document(
        _ubl(("58", SECOND, "BYLADEM1001"), ("58", FIRST, None)), "two-accounts.xml"
    )
    invoice = outcome.invoice
    assert invoice is not None and outcome.status == "VALIDATED", outcome.errors
    assert invoice.payment_accounts == (
        PaymentAccount(SECOND, "BYLADEM1001"),
        PaymentAccount(FIRST, None),
    )
    assert invoice.iban == SECOND


def test_a_ubl_2_0_bic_under_its_financial_institution_is_read() -> None:
    data = _ubl(("58", FIRST, None)).replace(
        f"<cbc:ID>{FIRST}</cbc:ID>".encode(),
        f"<cbc:ID>{FIRST}</cbc:ID><cac:FinancialInstitutionBranch><cac:FinancialInstitution>"
        "<cbc:ID>COBADEFFXXX</cbc:ID></cac:FinancialInstitution>"
        "</cac:FinancialInstitutionBranch>".encode(),
    )
    invoice = parse_document(data, "ubl20.xml").invoice
    assert invoice is not None
    assert invoice.payment_accounts == (PaymentAccount(FIRST, "COBADEFFXXX"),)


def _findings(db, doc: dict) -> dict[str, str]:
    with tenant_transaction(db.engine, doc["organization_id"]) as conn:
        rows = conn.execute(
            select(processing_errors.c.rule_id, processing_errors.c.message).where(
                processing_errors.c.incoming_invoice_id == doc["id"]
            )
        )
        return {r.rule_id: r.message for r in rows if (r.rule_id or "").startswith("IP-PAY")}


@pytest.fixture
def store(tmp_path):
    return LocalUploads(str(tmp_path))


def test_a_wrong_checksum_iban_waits_for_a_person(db, store):
    org = db.new_organization()
    docs = _intake(
        db,
        store,
        org,
        {
            "good.xml": _cii(("58", FIRST, "COBADEFFXXX")),
            # the second account is the one that is wrong: every account is checked
            "wrong.xml": _cii(("58", FIRST, None), ("58", WRONG_CHECKSUM, None)),
        },
    )
    assert docs["good.xml"]["status"] == "VALIDATED", docs["good.xml"]["rules"]
    assert _findings(db, docs["good.xml"]) == {}

    wrong = docs["wrong.xml"]
    assert wrong["status"] == "NEEDS_REVIEW"
    found = _findings(db, wrong)
    assert set(found) == {BAD_IBAN}
    assert f"the IBAN '{WRONG_CHECKSUM}' fails its check digits" in found[BAD_IBAN]
    # what the person confirming it sees: every account the document names
    accounts = wrong["raw_json"]["invoice"]["payment_accounts"]
    assert [a["iban"] for a in accounts] == [FIRST, WRONG_CHECKSUM]
    assert wrong["raw_json"]["invoice"]["iban"] == FIRST


def test_a_malformed_bic_waits_for_a_person(db, store):
    org = db.new_organization()
    docs = _intake(db, store, org, {"bic.xml": _ubl(("58", FIRST, "BIC324098"))})
    doc = docs["bic.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    found = _findings(db, doc)
    assert set(found) == {BAD_BIC}
    assert "the BIC 'BIC324098' does not have a BIC's form" in found[BAD_BIC]


def test_a_national_account_under_a_plain_credit_transfer_is_no_iban_finding() -> None:
    """EN 16931 lets BT-84 be a national account number outside SEPA; under code 58 (SEPA) the
    account must be an IBAN, and an account written as an IBAN is held to it under any code."""
    national = Invoice(payment_means_code="30", payment_accounts=(PaymentAccount("32423940"),))
    assert payment_account_problems(national) == []
    sepa = Invoice(payment_means_code="58", payment_accounts=(PaymentAccount("32423940"),))
    assert [f.rule for f in payment_account_problems(sepa)] == [BAD_IBAN]
    shaped = Invoice(payment_means_code="30", payment_accounts=(PaymentAccount(WRONG_CHECKSUM),))
    assert [f.rule for f in payment_account_problems(shaped)] == [BAD_IBAN]


def _letter(*bank_lines: str) -> list[str]:
    return [
        FIRM,
        "",
        f"{FIRM} · Hauptstr. 1 · 10115 Berlin",
        *RECIPIENT,
        "",
        *HEADER_DE,
        "",
        f"{FIRM} · USt-IdNr. DE287654321",
        *bank_lines,
    ]


def test_a_text_pdf_naming_two_accounts_gives_both() -> None:
    pdf = write_text_pdf(
        _letter(
            f"Berliner Volksbank · IBAN {FIRM_IBAN} · BIC BEVODEBBXXX",
            f"Deutsche Bank · IBAN {SECOND[:4]} {SECOND[4:8]} {SECOND[8:12]} {SECOND[12:16]} "
            f"{SECOND[16:20]} {SECOND[20:]} · BIC DEUTDEDBBER",
        )
    )
    outcome = parse_document(pdf, "rechnung.pdf", today=TODAY)
    invoice = outcome.invoice
    assert invoice is not None
    assert invoice.payment_accounts == (
        PaymentAccount(FIRM_IBAN, "BEVODEBBXXX"),
        PaymentAccount(SECOND, "DEUTDEDBBER"),
    )
    assert invoice.iban == FIRM_IBAN
    assert outcome.raw["fields"]["payment_accounts"][1]["confidence"] == 0.9
    assert payment_account_problems(invoice) == []


def test_bics_below_their_accounts_in_columns_go_to_each_one() -> None:
    lines = [
        f"IBAN {FIRM_IBAN}          IBAN {SECOND}",
        "BIC BEVODEBBXXX                          BIC DEUTDEDBBER",
    ]
    invoice = parse_ocr_text(
        "\n".join(_letter(*lines)), source_format="image", confidence=0.95, today=TODAY
    ).invoice
    assert invoice is not None
    assert invoice.payment_accounts == (
        PaymentAccount(FIRM_IBAN, "BEVODEBBXXX"),
        PaymentAccount(SECOND, "DEUTDEDBBER"),
    )


def test_a_misread_iban_on_a_scan_is_a_finding_not_dropped() -> None:
    """OCR read one digit wrong: the account is kept (at the extractor's floor) and held."""
    misread = FIRM_IBAN[:-1] + ("1" if FIRM_IBAN[-1] != "1" else "2")
    outcome = parse_ocr_text(
        "\n".join(_letter(f"IBAN {misread}  BIC BEVODEBBXXX")),
        source_format="image",
        confidence=0.62,
        today=TODAY,
    )
    invoice = outcome.invoice
    assert invoice is not None
    assert invoice.payment_accounts == (PaymentAccount(misread, "BEVODEBBXXX"),)
    assert invoice.confidence["iban"] < 0.5
    [finding] = payment_account_problems(invoice)
    assert finding.rule == BAD_IBAN and finding.stage == "review"
    assert "as read from the scan" in finding.message
    held = payment_account_doubts({1: outcome})[1]
    assert finding in held.review


def test_a_masked_debit_account_is_no_account_and_keeps_its_bic() -> None:
    """A direct debit's masked account (the customer's) is not paid to; its BIC is not given to
    the seller's account on the next lines."""
    lines = [
        "Wir buchen den Betrag von Ihrem Konto ab: IBAN DE54 5004 **** **** **** 00",
        "BIC COBADEFFXXX",
        "",
        f"Unsere Bankverbindung: IBAN {FIRM_IBAN}",
    ]
    invoice = parse_document(write_text_pdf(_letter(*lines)), "r.pdf", today=TODAY).invoice
    assert invoice is not None
    assert invoice.payment_accounts == (PaymentAccount(FIRM_IBAN, None),)


def test_an_unlabelled_number_of_an_iban_shape_is_no_account() -> None:
    text = "\n".join(_letter(f"Auftrag AB12 3456 7890 1234 · IBAN {FIRM_IBAN}"))
    invoice = parse_ocr_text(text, source_format="image", confidence=0.9, today=TODAY).invoice
    assert invoice is not None
    assert [a.iban for a in invoice.payment_accounts] == [FIRM_IBAN]


def test_a_bad_iban_or_bic_holds_a_read_outcome_only() -> None:
    good = parse_document(_cii(("58", FIRST, None)), "good.xml")
    bad = parse_document(_cii(("58", FIRST, "COBADEFF1")), "bad.xml")
    checked = payment_account_doubts({1: good, 2: bad})
    assert checked[1] is good
    assert checked[2].status == "NEEDS_REVIEW"
    assert [f.rule for f in checked[2].review] == [BAD_BIC]
