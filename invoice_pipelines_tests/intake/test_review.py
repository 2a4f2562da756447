"""The review step and each organization's policy (issue 36), end to end through the intake run on
PostgreSQL and SQLite: what a document becomes, what a person does with it, what is recorded.
And duplicates re-sent with characters nobody sees."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterInstance, RunConfig
from lxml import etree
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import audit_log, incoming_invoices, incoming_reviews
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.review import ReviewError, review_document
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.intake.jobs import ReviewConfig, review_incoming_invoice_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_intake_jobs import _drop

RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
NS = {"ram": RAM}


class InProcess:
    def parse_many(self, items):
        return [parse_document(data, name) for data, name in items]


def run_intake(db, tmp_path, org, files: dict[str, bytes]) -> dict[str, dict]:
    """Drop, register and process the files; each document's row by file name."""
    store = LocalUploads(str(tmp_path))
    _drop(store, org, files)
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, max_files_per_tick=len(files) + 1,
        only_organizations={org["slug"]},
    )  # fmt: skip
    ids = [i for b in scan.batches for i in b.document_ids]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids, parser=InProcess(), ocr=None)
    return documents(db, org)


def documents(db, org) -> dict[str, dict]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(incoming_invoices).where(incoming_invoices.c.organization_id == org["id"])
        ).mappings()
        return {r["raw_json"]["filename"]: dict(r) for r in rows}


def version(db, org, doc_id: int) -> int:
    """The document's processing_version: what a reviewer looked at (`incoming show`)."""
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.processing_version).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def basic_wl(number: str = "BWL-1") -> bytes:
    root = etree.fromstring(own_invoice(number))
    (guideline,) = root.xpath(
        "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", namespaces=NS
    )
    guideline.text = "urn:factur-x.eu:1p0:basicwl"
    for line in root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=NS):
        line.getparent().remove(line)
    return etree.tostring(root)


def broken_totals(number: str) -> bytes:
    """Net 240.00 + VAT 45.60 stated as 300.00: BR-CO-15, a business-rule error."""
    return own_invoice(number).replace(
        b"<ram:GrandTotalAmount>285.60", b"<ram:GrandTotalAmount>300.00"
    )


def test_each_class_meets_the_default_policy(db, tmp_path) -> None:
    org = db.new_organization()
    rows = run_intake(
        db,
        tmp_path,
        org,
        {
            "valid.xml": own_invoice("V-1"),
            "basicwl.xml": basic_wl(),
            "errors.xml": broken_totals("E-1"),
            "garbage.xml": b"<Invoice>not closed",
        },
    )
    got = {
        name: (r["status"], r["einvoice_class"], r["einvoice_reason"]) for name, r in rows.items()
    }
    assert got == {
        "valid.xml": ("VALIDATED", "valid_einvoice", None),
        "basicwl.xml": ("NEEDS_REVIEW", "not_einvoice", "profile"),
        "errors.xml": ("FAILED", "einvoice_with_errors", None),
        "garbage.xml": ("FAILED", "not_einvoice", "format_error"),
    }


# who switches the intake policy and why (audited)
WHO = ("--by", "anna", "--reason", "the test's setup")


def test_an_organization_decides_what_a_class_leads_to(db, tmp_path, monkeypatch, capsys) -> None:
    org = db.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    assert main(["incoming", "policy", "--org", org["slug"], "--set", "einvoice_with_errors=review",
                 "--set", "valid_einvoice=reject", *WHO]) == 0  # fmt: skip
    policy = json.loads(capsys.readouterr().out)
    assert policy["einvoice_with_errors"] == "review" and policy["valid_einvoice"] == "reject"
    # an unknown class or action is refused in one sentence, and nothing is stored
    assert main(["incoming", "policy", "--org", org["slug"], "--set", "valid=accept", *WHO]) == 2
    assert "names 'valid', which is none of" in capsys.readouterr().err
    assert (
        main(["incoming", "policy", "--org", org["slug"], "--set", "hybrid_mismatch=reject", *WHO])
        == 2
    )
    capsys.readouterr()

    rows = run_intake(
        db, tmp_path, org, {"v.xml": own_invoice("P-1"), "e.xml": broken_totals("P-2")}
    )
    assert rows["v.xml"]["status"] == "FAILED"
    assert rows["e.xml"]["status"] == "NEEDS_REVIEW"


def test_a_person_corrects_then_confirms_and_everything_is_recorded(
    db, tmp_path, monkeypatch, capsys
) -> None:
    org = db.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    main(["incoming", "policy", "--org", org["slug"], "--set", "einvoice_with_errors=review", *WHO])
    capsys.readouterr()
    doc = run_intake(db, tmp_path, org, {"e.xml": broken_totals("R-1")})["e.xml"]
    assert doc["status"] == "NEEDS_REVIEW"

    assert (
        main(["incoming", "list", "--org", org["slug"], "--status", "NEEDS_REVIEW", "--json"]) == 0
    )
    (listed,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert listed["id"] == doc["id"] and listed["filename"] == "e.xml"
    assert "BR-CO-15" in {f["rule"] for f in listed["findings"]}

    # confirming as it is: the totals do not add up, so it stays in review and says why
    seen = str(doc["processing_version"])
    code = main(["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]),
                 "--version", seen, "--confirm", "--by", "anna"])  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert code == 1 and said["status"] == "NEEDS_REVIEW"
    assert said["problems"] == ["net 240.00 + VAT 45.60 is not the total 300.00"]

    code = main(["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]),
                 "--set", "gross_total=285.60", "--set", "amount_due=285.60",
                 "--version", seen, "--confirm", "--by", "anna"])  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert (code, said["status"], said["problems"]) == (0, "VALIDATED", [])
    assert said["corrected"]["gross_total"] == {"old": "300.00", "new": "285.60"}

    row = documents(db, org)["e.xml"]
    assert (row["status"], str(row["gross_total"])) == ("VALIDATED", "285.60")
    with tenant_transaction(db.engine, org["id"]) as conn:
        reviews = conn.execute(
            select(
                incoming_reviews.c.action,
                incoming_reviews.c.field,
                incoming_reviews.c.old_value,
                incoming_reviews.c.new_value,
                incoming_reviews.c.reviewed_by,
            )
            # SQLite has no row-level security: other tests' organizations share the tables
            .where(incoming_reviews.c.organization_id == org["id"])
            .order_by(incoming_reviews.c.id)
        ).all()
        audits = conn.execute(
            select(audit_log.c.created_by).where(
                audit_log.c.action == "intake.review", audit_log.c.organization_id == org["id"]
            )
        ).scalars()
        assert list(audits) == ["anna", "anna"]
    assert [tuple(r) for r in reviews] == [
        ("corrected", "gross_total", "300.00", "285.60", "anna"),
        # amount_due was 285.60 already: set to what it is, nothing to record
        ("confirmed", None, None, None, "anna"),
    ]


def test_a_correction_is_held_to_the_rules_a_reading_is(db, tmp_path) -> None:
    """A person's correction gets no easier check than a page's reading (plausibility IP-REV-04):
    a VAT breakdown at a rate VAT law does not know stays in review, whatever adds up."""
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("BWL-R")})["b.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="ben", confirm=True,
        corrections={"net_total": "100.00", "tax_total": "23.50", "gross_total": "123.50",
                     "amount_due": "123.50", "breakdown": "23.5:100.00:23.50"},
        expected_version=doc["processing_version"],
    )  # fmt: skip
    assert result.status == "NEEDS_REVIEW"
    assert "a VAT rate of 23.50 % is not a VAT rate" in result.problems
    assert documents(db, org)["b.xml"]["status"] == "NEEDS_REVIEW"


def test_a_review_of_a_version_nobody_saw_or_of_a_booked_document_is_refused(db, tmp_path) -> None:
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl()})["b.xml"]
    with pytest.raises(ReviewError, match="changed since version 1"):
        review_document(db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="ben", confirm=True,
                        expected_version=1)  # fmt: skip
    seen = doc["processing_version"]
    with pytest.raises(ReviewError, match="is not an amount"):
        review_document(db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="ben",
                        corrections={"gross_total": "NaN"}, expected_version=seen)  # fmt: skip
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="ben", reject="not our invoice",
        expected_version=seen,
    )  # fmt: skip
    assert result.status == "FAILED"
    with pytest.raises(ReviewError, match="only documents in NEEDS_REVIEW are reviewed"):
        review_document(db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="ben", confirm=True,
                        expected_version=seen + 1)  # fmt: skip


def test_the_review_job_in_the_launchpad(db, tmp_path) -> None:
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl()})["b.xml"]
    config = ReviewConfig(
        organization=org["slug"],
        document_id=doc["id"],
        confirm=True,
        reviewed_by="carla",
        expected_version=doc["processing_version"],
    )
    result = review_incoming_invoice_job.execute_in_process(
        run_config=RunConfig(ops={"review_incoming_invoice": config}),
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    assert documents(db, org)["b.xml"]["status"] == "VALIDATED"


ZWSP, SOFT_HYPHEN = "\u200b", "\u00ad"


@pytest.mark.parametrize(
    ("number", "vat_id"),
    [
        (f"DUP{ZWSP}-42", "DE999999999"),
        (f"DUP-{SOFT_HYPHEN}42", "DE999999999"),
        ("DUP-４２", "DE999999999"),  # full-width digits
        ("DUP-42", f"DE{ZWSP}999999999\u2060"),  # invisible characters in the VAT id
    ],
    ids=["zero-width space", "soft hyphen", "full-width digits", "invisible in the VAT id"],
)
def test_an_invoice_sent_again_with_invisible_characters_is_a_duplicate(
    db, tmp_path, number, vat_id
) -> None:
    org = db.new_organization()
    first = own_invoice("DUP-42")
    again = own_invoice(number).replace(b"DE999999999", vat_id.encode())
    rows = run_intake(db, tmp_path, org, {"a.xml": first})
    assert rows["a.xml"]["status"] == "VALIDATED"
    rows = run_intake(db, tmp_path, org, {"b.xml": again})
    assert rows["b.xml"]["status"] == "FAILED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        from invoice_pipelines.db.tables import processing_errors

        rules = conn.execute(
            select(processing_errors.c.rule_id).where(
                processing_errors.c.incoming_invoice_id == rows["b.xml"]["id"]
            )
        ).scalars()
        assert "IP-DUP-01" in set(rules)


def test_a_rejected_supplier_gets_one_notice_with_the_reasons(db, tmp_path) -> None:
    """Through the production mail client to the SMTP stand-in on 127.0.0.1: the notice goes to
    the address an accepted invoice of the seller named, names the invoice, what it is under the
    law and the rule ids; a second send sends nothing; a seller with no address known is recorded
    as not sent, saying why (more in test_supplier_notices.py)."""
    from invoice_pipelines.intake.domain.notices import send_supplier_notices
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.intake.test_supplier_notices import (
        KNOWN,
        document,
        known_supplier,
        notices,
    )

    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    rows = run_intake(
        db,
        tmp_path / "rejected",
        org,
        {"a.xml": document("N-1"), "b.xml": document("N-2", vat_id="DE811569869")},
    )
    assert {rows[name]["status"] for name in ("a.xml", "b.xml")} == {"FAILED"}
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        first = send_supplier_notices(db.engine, mailer, org["id"])
        again = send_supplier_notices(db.engine, mailer, org["id"])
        (message,) = sink.mailbox.messages
    assert (len(first.sent), first.failed, again.sent, again.failed) == (1, {}, [], {})
    assert message["To"] == KNOWN
    assert message["Subject"] == f"Not accepted: invoice N-1 to {org['name']}"
    body = message.get_body(("plain",)).get_content()
    assert "e-invoice with business-rule errors" in body and "BR-CO-15" in body
    unsent = notices(db, org)[rows["b.xml"]["id"]]
    assert unsent["status"] == "failed"
    assert unsent["error"].startswith("no address known for this supplier")
