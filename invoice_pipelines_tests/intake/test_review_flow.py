"""The review step beyond the happy path (issue 36), on PostgreSQL and SQLite: a confirmation
whose correction still breaks our own rules is refused, changes nothing and says why while the
document stays in review (from the launchpad job; issue 56); two reviewers, the second working from a version the first changed, are told so;
a correction that makes the document a duplicate of a booked one is refused, invisible characters
or not."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from dagster import DagsterInstance, RunConfig
from sqlalchemy import select

from invoice_pipelines.db.tables import audit_log, incoming_reviews
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import ReviewError, review_document
from invoice_pipelines.intake.jobs import ReviewConfig, review_incoming_invoice_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_review import basic_wl, documents, run_intake


def _job(db, **config):
    return review_incoming_invoice_job.execute_in_process(
        run_config=RunConfig(ops={"review_incoming_invoice": ReviewConfig(**config)}),
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _reviews(db, org, doc_id) -> list[tuple]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(
                    incoming_reviews.c.action,
                    incoming_reviews.c.field,
                    incoming_reviews.c.old_value,
                    incoming_reviews.c.new_value,
                    incoming_reviews.c.reviewed_by,
                )
                .where(incoming_reviews.c.incoming_invoice_id == doc_id)
                .order_by(incoming_reviews.c.id)
            )
        ]


def test_a_correction_that_breaks_our_rules_stays_in_review_saying_why(db, tmp_path) -> None:
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("F-1")})["b.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    old_date = doc["issue_date"].isoformat()

    # a month typed wrong: the issue date lies in the future (IP-DATE-01), the run says so
    later = (date.today() + timedelta(days=40)).isoformat()
    result = _job(
        db, organization=org["slug"], document_id=doc["id"], reviewed_by="fritz",
        corrections={"issue_date": later}, confirm=True, expected_version=doc["processing_version"],
    )  # fmt: skip
    assert not result.success
    failure = result.failure_data_for_node("review_incoming_invoice")
    assert "stays in review, nothing changed" in failure.error.message
    assert "IP-DATE-01" in failure.error.message
    row = documents(db, org)["b.xml"]
    assert row["status"] == "NEEDS_REVIEW" and row["issue_date"].isoformat() == old_date
    # a refused confirmation changes nothing: not the values, not the version, no correction
    assert row["processing_version"] == doc["processing_version"]
    assert _reviews(db, org, doc["id"]) == []

    # a due date before the issue date: a confirmation is held to it as a reading is (EN 16931
    # allows it; "payable at once" is the issue date), and refused whole
    result = _job(
        db, organization=org["slug"], document_id=doc["id"], reviewed_by="fritz",
        corrections={"issue_date": old_date, "due_date": "2000-01-01"}, confirm=True,
        expected_version=row["processing_version"],
    )  # fmt: skip
    assert not result.success
    assert f"the due date 2000-01-01 is before the issue date {old_date}" in (
        result.failure_data_for_node("review_incoming_invoice").error.message
    )
    row = documents(db, org)["b.xml"]
    result = _job(
        db, organization=org["slug"], document_id=doc["id"], reviewed_by="fritz",
        corrections={"due_date": old_date}, confirm=True, expected_version=row["processing_version"],
    )  # fmt: skip
    assert result.success
    assert documents(db, org)["b.xml"]["status"] == "VALIDATED"
    assert documents(db, org)["b.xml"]["issue_date"].isoformat() == old_date
    assert [r[:2] for r in _reviews(db, org, doc["id"])] == [
        ("corrected", "due_date"),
        ("confirmed", None),
    ]
    with tenant_transaction(db.engine, org["id"]) as conn:
        audits = conn.execute(
            select(audit_log.c.created_by, audit_log.c.details)
            .where(audit_log.c.action == "intake.review", audit_log.c.entity_id == str(doc["id"]))
            .order_by(audit_log.c.id)
        ).all()
    assert [(who, details["status"]) for who, details in audits] == [
        ("fritz", "NEEDS_REVIEW"),
        ("fritz", "NEEDS_REVIEW"),
        ("fritz", "VALIDATED"),
    ]


def test_a_reviewer_working_from_a_version_another_changed_is_refused(db, tmp_path) -> None:
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("S-1")})["b.xml"]
    seen = doc["processing_version"]
    # Berta corrects the supplier's name first
    review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="berta",
        corrections={"seller_name": "Lieferant AG"}, expected_version=seen,
    )  # fmt: skip
    # Anton confirms what he saw before: refused, nothing of his recorded
    with pytest.raises(ReviewError, match=f"changed since version {seen}"):
        review_document(
            db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anton", confirm=True,
            expected_version=seen,
        )  # fmt: skip
    assert documents(db, org)["b.xml"]["status"] == "NEEDS_REVIEW"
    assert {r[-1] for r in _reviews(db, org, doc["id"])} == {"berta"}
    # from the launchpad the same refusal is the run's one sentence
    result = _job(
        db, organization=org["slug"], document_id=doc["id"], reviewed_by="anton", confirm=True,
        expected_version=seen,
    )  # fmt: skip
    assert not result.success
    assert f"changed since version {seen}" in (
        result.failure_data_for_node("review_incoming_invoice").error.message
    )


@pytest.mark.parametrize(
    "typed", ["D-7", "D\u200b-7", "D\u200b-\u00ad7"], ids=["plain", "zwsp", "mixed"]
)
def test_a_correction_that_makes_a_duplicate_of_a_booked_invoice_is_refused(
    db, tmp_path, typed
) -> None:
    org = db.new_organization()
    rows = run_intake(db, tmp_path, org, {"a.xml": own_invoice("D-7")})
    assert rows["a.xml"]["status"] == "VALIDATED"
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("D-8")})["b.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="carl",
        corrections={"number": typed}, confirm=True, expected_version=doc["processing_version"],
    )  # fmt: skip
    assert result.status == "NEEDS_REVIEW"
    assert any("IP-DUP-01" in p for p in result.problems), result.problems


@pytest.mark.parametrize(
    "again",
    [
        ("DUP\u200b-42", "DE999999999"),
        ("DUP-\u00ad42", "DE999999999"),
        ("DUP-４２", "DE999999999"),
        ("DUP-42", "DE\u200b999999999\u2060"),
    ],
    ids=["zero-width space", "soft hyphen", "full-width digits", "invisible in the VAT id"],
)
def test_an_invoice_resent_with_invisible_characters_is_booked_once(db, tmp_path, again) -> None:
    """The second copy is IP-DUP-01, and the month's export books the invoice once."""
    from invoice_pipelines.exports.domain.pipeline import run_export
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines_tests.exports.books import DATEV

    number, vat_id = again
    org = db.new_organization(**DATEV)
    first = own_invoice("DUP-42")
    copy = own_invoice(number).replace(b"DE999999999", vat_id.encode())
    assert copy != first
    run_intake(db, tmp_path, org, {"a.xml": first})
    rows = run_intake(db, tmp_path, org, {"b.xml": copy})
    assert (rows["a.xml"]["status"], rows["b.xml"]["status"]) == ("VALIDATED", "FAILED")
    store = LocalFiles(str(tmp_path / "exports"))
    result = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2024-03", "incoming"
    )
    assert (result.invoice_count, result.skipped_count) == (1, 0)
    booked = documents(db, org)
    assert (booked["a.xml"]["status"], booked["b.xml"]["status"]) == ("EXPORTED", "FAILED")


def test_a_review_that_asks_for_nothing_is_refused_and_records_nothing(
    db, tmp_path, monkeypatch, capsys
) -> None:
    from invoice_pipelines.cli import main

    org = db.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("N-1")})["b.xml"]
    version = str(doc["processing_version"])  # required (issue 56): the version looked at
    code = main(
        ["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]), "--by", "x"]
        + ["--version", version]
    )
    out = capsys.readouterr().err
    assert code == 2 and out.startswith("invoice-pipelines incoming review: nothing to do")
    assert len(out.strip().splitlines()) == 1
    assert _reviews(db, org, doc["id"]) == []
    row = documents(db, org)["b.xml"]
    assert (row["status"], row["processing_version"]) == ("NEEDS_REVIEW", doc["processing_version"])
