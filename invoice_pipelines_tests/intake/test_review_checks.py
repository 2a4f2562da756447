"""A person's confirmation is checked like a reading (issue 46), on PostgreSQL and SQLite, through
the command line, review_document() and the launchpad job: a value that cannot be one is refused
in one sentence naming the field and nothing changes; values that do not hold together keep the
document in review, saying why; the version looked at is required; a VALIDATED document that is
not exported yet can be reopened for review (audited), an EXPORTED one cannot."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.core.invoice import VatBreakdown
from invoice_pipelines.db.tables import audit_log, processing_errors
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.plausibility import review_findings
from invoice_pipelines.intake.domain.review import ReviewError, review_document
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_plausibility import PAGE, TODAY, reading
from invoice_pipelines_tests.intake.test_review import basic_wl, documents, run_intake
from invoice_pipelines_tests.intake.test_review_flow import _job, _reviews

ARABIC_119 = "\u0661\u0661\u0669.\u0660\u0660"  # ١١٩.٠٠


def _review(org, doc_id, *args: str) -> list[str]:
    return ["incoming", "review", "--org", org["slug"], "--id", str(doc_id), *args]


@pytest.fixture
def in_review(db, tmp_path, monkeypatch):
    """An organization and a document of it waiting in NEEDS_REVIEW (a Factur-X BASIC WL)."""
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("CHK-1")})["b.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    return org, doc


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--set", "type_code=999"], "type_code: the document type (type_code) '999' is not one"),
        (["--set", "currency=XXX"], "currency: the currency 'XXX' is not an ISO 4217 currency"),
        (["--set", "currency=xau"], "currency: the currency 'XAU' is not an ISO 4217 currency"),
        (["--set", "issue_date=0001-01-01"], "issue_date: 0001-01-01 is not a plausible date"),
        (["--set", "issue_date=9999-12-25"], "issue_date: 9999-12-25 is not a plausible date"),
        (["--set", "due_date=9999-12-31"], "due_date: 9999-12-31 is not a plausible date"),
        (["--set", f"gross_total={ARABIC_119}"], "gross_total: '١١٩.٠٠' has the digit '١' (U+0661)"),
        (["--set", "issue_date=２０２４-03-01"], "issue_date: '２０２４-03-01' has the digit '２'"),
        (["--set", "number=RE-\u0663"], "number: 'RE-٣' has the digit '٣' (U+0663)"),
        (["--set", "gross_total=285.601"], "gross_total: '285.601' is not an amount"),
        (["--set", "gross_total=1e3"], "gross_total: '1e3' is not an amount"),
        (["--set", "seller_name=" + "S" * 300], "seller_name: 'SSSS"),
        (["--set", "number=RE\x1b[31m-1"], "number: 'RE\\x1b[31m-1' has a control character"),
        (["--set", "breakdown=" + "19:1.00:0.19;" * 10_000], "breakdown: 10000 entries; at most 50"),
        (["--set", "breakdown=19:100.00:19.00;19:140.00:26.60"], "breakdown: the VAT breakdown names the rate 19.00 % in category S twice"),
        (["--reopen", "--reason", "x", "--set", "number=A"], "a reopening takes no corrections"),
    ],
    ids=[
        "type code 999", "currency XXX", "gold", "year 1", "year 9999", "due year 9999",
        "arabic-indic digits", "full-width digits", "digit in the number", "a tenth of a cent",
        "exponent", "300-character name", "terminal escape", "10,000-entry breakdown",
        "a rate twice", "reopen with corrections",
    ],
)  # fmt: skip
def test_a_value_that_cannot_be_one_is_refused_naming_the_field_and_nothing_changes(
    db, in_review, capsys, args, said
) -> None:
    org, doc = in_review
    code = main(_review(org, doc["id"], *args, "--confirm", "--version",
                        str(doc["processing_version"]), "--by", "anna"))  # fmt: skip
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("invoice-pipelines incoming review: ") and said in line, line
    assert "Traceback" not in captured.err and len(line) < 400
    row = documents(db, org)["b.xml"]
    assert (row["status"], row["processing_version"]) == ("NEEDS_REVIEW", doc["processing_version"])
    assert (row["type_code"], row["currency"], row["gross_total"]) == ("380", "EUR", D("285.60"))
    assert _reviews(db, org, doc["id"]) == []


def test_who_reviews_must_fit_its_column(db, in_review, capsys) -> None:
    """A 300-character --by ended in a StringDataRightTruncation traceback on PostgreSQL."""
    org, doc = in_review
    code = main(_review(org, doc["id"], "--confirm", "--version", str(doc["processing_version"]),
                        "--by", "b" * 300))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "reviewed_by (--by): 'bbbb" in err and "1 to 255 characters" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert documents(db, org)["b.xml"]["status"] == "NEEDS_REVIEW"


def test_the_version_looked_at_is_required_and_the_command_says_where_it_is(
    db, in_review, capsys
) -> None:
    org, doc = in_review
    for args in (["--confirm"], ["--reject", "not ours"], ["--set", "seller_name=Lieferant AG"]):
        # a usage error (its usage marks --version required, issue 56)
        with pytest.raises(SystemExit) as ended:
            main(_review(org, doc["id"], *args, "--by", "anna"))
        err = capsys.readouterr().err
        assert ended.value.code == 2, args
        assert "--version N" in err and "incoming show --org ORG --id ID" in err
    assert documents(db, org)["b.xml"]["processing_version"] == doc["processing_version"]
    assert _reviews(db, org, doc["id"]) == []
    with pytest.raises(ReviewError, match="say which version"):
        review_document(
            db.engine,
            find_organization(db.engine, org["slug"]),
            doc["id"],
            reviewed_by="anna",
            confirm=True,
        )
    # the launchpad's run says the same in its one sentence
    result = _job(db, organization=org["slug"], document_id=doc["id"], reviewed_by="anna",
                  confirm=True)  # fmt: skip
    assert not result.success
    message = result.failure_data_for_node("review_incoming_invoice").error.message
    assert "say which version" in message and "Traceback" not in message


def test_an_invoice_with_every_total_negative_is_a_credit_note_typed_wrong(
    db, in_review, capsys
) -> None:
    """Type 380 with negative totals stays in review saying why; as a credit note (381) the
    amounts are stated positive, and then it is booked."""
    org, doc = in_review
    negative = ["--set", "net_total=-240.00", "--set", "tax_total=-45.60",
                "--set", "gross_total=-285.60", "--set", "amount_due=-285.60",
                "--set", "breakdown=19:-240.00:-45.60"]  # fmt: skip
    code = main(_review(org, doc["id"], *negative, "--confirm", "--version",
                        str(doc["processing_version"]), "--by", "anna"))  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"]) == (1, "NEEDS_REVIEW")
    assert (
        "the net total and the total with VAT are negative on a document of type 380: a credit "
        "is type 381 with positive amounts (type_code=381 and the amounts without their sign)"
    ) in said["problems"]

    # a refused confirmation changes nothing (issue 56): the same version is reviewed again
    seen = str(doc["processing_version"])
    code = main(_review(org, doc["id"], *negative, "--set", "type_code=381", "--confirm",
                        "--version", seen, "--by", "anna"))  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"]) == (1, "NEEDS_REVIEW")
    assert any("negative on a credit note (381)" in p for p in said["problems"]), said["problems"]

    positive = ["--set", "net_total=240.00", "--set", "tax_total=45.60",
                "--set", "gross_total=285.60", "--set", "amount_due=285.60",
                "--set", "breakdown=19:240.00:45.60", "--set", "type_code=381"]  # fmt: skip
    code = main(_review(org, doc["id"], *positive, "--confirm", "--version", seen, "--by", "anna"))
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"], said["problems"]) == (0, "VALIDATED", [])
    row = documents(db, org)["b.xml"]
    assert (row["status"], row["type_code"], row["gross_total"]) == (
        "VALIDATED",
        "381",
        D("285.60"),
    )


def test_what_a_document_arrived_with_is_held_to_the_same_rules(db, tmp_path, capsys) -> None:
    """Confirming as it is: a currency that is no money (XXX) and a due date before the issue date
    keep it in review, whatever came in the document; corrected, it is booked."""
    org = db.new_organization()
    xml = basic_wl("CHK-2").replace(b">EUR<", b">XXX<").replace(b'"EUR"', b'"XXX"')
    doc = run_intake(db, tmp_path, org, {"x.xml": xml})["x.xml"]
    assert (doc["status"], doc["currency"]) == ("NEEDS_REVIEW", "XXX")
    result = review_document(db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anna", confirm=True,
                             expected_version=doc["processing_version"])  # fmt: skip
    assert result.status == "NEEDS_REVIEW"
    assert "the currency 'XXX' is not an ISO 4217 currency (EUR, USD, CHF, ...)" in result.problems
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anna", confirm=True,
        corrections={"currency": "eur", "due_date": "2024-02-01"},
        expected_version=doc["processing_version"],
    )  # fmt: skip
    assert result.status == "NEEDS_REVIEW"
    assert result.problems == [
        "the due date 2024-02-01 is before the issue date 2024-03-01 (payable at once: the issue "
        "date)"
    ]
    # refused, nothing of it kept (issue 56): the currency is corrected again with the due date
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anna", confirm=True,
        corrections={"currency": "eur", "due_date": "2024-03-31"},
        expected_version=doc["processing_version"],
    )  # fmt: skip
    assert (result.status, result.problems) == ("VALIDATED", [])
    assert documents(db, org)["x.xml"]["currency"] == "EUR"


def test_a_validated_document_is_reopened_corrected_and_confirmed_with_who_and_why(
    db, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"v.xml": own_invoice("RO-1")})["v.xml"]
    assert doc["status"] == "VALIDATED"
    seen = str(doc["processing_version"])

    # a review of a VALIDATED document says how to reopen it; a reopening needs a reason
    code = main(_review(org, doc["id"], "--set", "seller_vat_id=DE116584028", "--confirm",
                        "--version", seen, "--by", "anna"))  # fmt: skip
    assert code == 2 and "(reopen it first: --reopen --reason WHY)" in capsys.readouterr().err
    code = main(_review(org, doc["id"], "--reopen", "--version", seen, "--by", "anna"))
    assert code == 2 and "a reopening needs a reason" in capsys.readouterr().err
    code = main(_review(org, doc["id"], "--reopen", "--reason", "x", "--version", "1",
                        "--by", "anna"))  # fmt: skip
    assert code == 2 and f"changed since version 1 (it is at version {seen})" in (
        capsys.readouterr().err
    )
    assert documents(db, org)["v.xml"]["status"] == "VALIDATED"

    code = main(_review(org, doc["id"], "--reopen", "--reason", "the seller's VAT id is wrong",
                        "--version", seen, "--by", "anna"))  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"]) == (0, "NEEDS_REVIEW")
    row = documents(db, org)["v.xml"]
    assert (row["status"], row["processing_version"]) == ("NEEDS_REVIEW", int(seen) + 1)
    # the list says why it waits
    assert main(["incoming", "list", "--org", org["slug"], "--status", "NEEDS_REVIEW"]) == 0
    listed = capsys.readouterr().out
    assert "IP-REV-11: reopened by anna: the seller's VAT id is wrong" in listed

    code = main(_review(org, doc["id"], "--set", "seller_vat_id=DE116584028", "--confirm",
                        "--version", str(int(seen) + 1), "--by", "berta"))  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"], said["problems"]) == (0, "VALIDATED", [])
    assert documents(db, org)["v.xml"]["seller_vat_id"] == "DE116584028"
    assert _reviews(db, org, doc["id"]) == [
        ("corrected", "seller_vat_id", "DE999999999", "DE116584028", "berta"),
        ("confirmed", None, None, None, "berta"),
    ]
    with tenant_transaction(db.engine, org["id"]) as conn:
        audits = conn.execute(
            select(audit_log.c.action, audit_log.c.created_by, audit_log.c.details)
            .where(
                audit_log.c.organization_id == org["id"], audit_log.c.entity_id == str(doc["id"])
            )
            .order_by(audit_log.c.id)
        ).all()
        severity = conn.execute(
            select(processing_errors.c.severity).where(
                processing_errors.c.incoming_invoice_id == doc["id"],
                processing_errors.c.rule_id == "IP-REV-11",
            )
        ).scalar_one()
    assert [(a, who) for a, who, _ in audits] == [
        ("intake.reopen", "anna"),
        ("intake.review", "berta"),
    ]
    details = audits[0][2]
    assert (details["status"], details["reopened_from"], details["reason"]) == (
        "NEEDS_REVIEW", "VALIDATED", "the seller's VAT id is wrong"
    )  # fmt: skip
    assert severity == "warning"


def test_an_exported_document_is_not_reopened_here(db, tmp_path, capsys, monkeypatch) -> None:
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines_tests.exports.books import DATEV

    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(**DATEV)
    doc = run_intake(db, tmp_path, org, {"v.xml": own_invoice("EX-1")})["v.xml"]
    run_export(db.engine, LocalFiles(str(tmp_path / "exports")), find_organization(db.engine, org["slug"]), "2024-03",
               "incoming")  # fmt: skip
    row = documents(db, org)["v.xml"]
    assert row["status"] == "EXPORTED"
    code = main(_review(org, doc["id"], "--reopen", "--reason", "wrong supplier", "--version",
                        str(row["processing_version"]), "--by", "anna"))  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"incoming invoice {doc['id']} is EXPORTED" in err
    assert f"invoice-pipelines export-reopen --org {org['slug']} --documents {doc['id']}" in err
    assert documents(db, org)["v.xml"]["processing_version"] == row["processing_version"]
    assert _reviews(db, org, doc["id"]) == []


def test_the_launchpad_reopens_and_refuses_in_one_sentence(db, tmp_path) -> None:
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"v.xml": own_invoice("RO-2")})["v.xml"]
    result = _job(db, organization=org["slug"], document_id=doc["id"], reviewed_by="carla",
                  reopen=True, reason="the amount due is wrong",
                  expected_version=doc["processing_version"])  # fmt: skip
    assert result.success
    assert documents(db, org)["v.xml"]["status"] == "NEEDS_REVIEW"
    result = _job(db, organization=org["slug"], document_id=doc["id"], reviewed_by="carla",
                  corrections={"issue_date": "9999-12-25"}, confirm=True,
                  expected_version=doc["processing_version"] + 1)  # fmt: skip
    assert not result.success
    message = result.failure_data_for_node("review_incoming_invoice").error.message
    assert "issue_date: 9999-12-25 is not a plausible date (1990-01-01 to " in message
    assert "Traceback" not in message
    assert documents(db, org)["v.xml"]["issue_date"] == date(2024, 3, 1)


def _doubts(**changes) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in review_findings(reading(**changes), PAGE, origin="text", today=TODAY):
        found.setdefault(f.rule, []).append(f.message)
    return found


@pytest.mark.parametrize(
    ("changes", "rule", "words"),
    [
        ({"issue_date": date(1850, 1, 1)}, "IP-REV-06", "the issue date 1850-01-01 is not a plausible date (1990-01-01 to 2027-11-26)"),
        ({"issue_date": date(2200, 1, 1)}, "IP-REV-06", "the issue date 2200-01-01 is not a plausible date"),
        ({"due_date": date(9999, 12, 31)}, "IP-REV-06", "the due date 9999-12-31 is not a plausible date (2026-11-03 to 2036-11-10)"),
        ({"currency": "XXX"}, "IP-REV-10", "the currency 'XXX' is not an ISO 4217 currency"),
        ({"type_code": "999"}, "IP-REV-10", "the document type (type_code) '999' is not one EN 16931 allows"),
        ({"type_code": "381", "gross_total": D("-119.00")}, "IP-REV-09", "negative on a credit note (381)"),
        (
            {"vat_breakdown": (VatBreakdown(None, D("19"), D("50.00"), D("9.50")),) * 2},
            "IP-REV-04",
            "the VAT breakdown names the rate 19 % twice",
        ),
    ],
    ids=["1850", "2200", "due 9999", "XXX", "type 999", "negative credit note", "a rate twice"],
)  # fmt: skip
def test_a_reading_is_doubted_for_what_a_confirmation_is_refused(changes, rule, words) -> None:
    """The bounds hold for readings too: a finding that sends the page to a person, never an
    exception."""
    doubts = _doubts(**changes)
    assert any(words in message for message in doubts.get(rule, [])), doubts
