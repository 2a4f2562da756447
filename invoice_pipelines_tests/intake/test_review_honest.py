"""A person's review kept honestly (issue 56), on PostgreSQL and SQLite: a confirmation the rules
refuse changes nothing of the document and leaves a finding (IP-REV-13) saying what was refused
and why, where `incoming list` and `incoming show` print it; a confirmation that books the
document resolves the review findings that no longer hold (a reopening's IP-REV-11, a refusal's
IP-REV-13), which the listings then leave out and `incoming show` keeps with who resolved them."""

from __future__ import annotations

import json
from decimal import Decimal

from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoice_taxes, incoming_reviews
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_review import basic_wl, documents, run_intake


def _listed(org, doc_id: int, capsys) -> dict:
    assert main(["incoming", "list", "--org", org["slug"], "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return next(r for r in rows if r["id"] == doc_id)


def _shown(org, doc_id: int, capsys) -> dict:
    assert main(["incoming", "show", "--org", org["slug"], "--id", str(doc_id)]) == 0
    return json.loads(capsys.readouterr().out)


def _review_rows(db, org, doc_id: int) -> list[tuple]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(incoming_reviews.c.action, incoming_reviews.c.field)
                .where(incoming_reviews.c.incoming_invoice_id == doc_id)
                .order_by(incoming_reviews.c.id)
            )
        ]


def _breakdown(db, org, doc_id: int) -> list[tuple]:
    t = incoming_invoice_taxes.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(t.vat_rate, t.basis, t.amount)
                .where(t.incoming_invoice_id == doc_id)
                .order_by(t.id)
            )
        ]


def test_a_refused_confirmation_changes_nothing_and_says_why(
    db, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("HN-1")})["b.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    before = documents(db, org)["b.xml"]
    taxes = _breakdown(db, org, doc["id"])

    # a credit's sign typed on an invoice (380): net + VAT is not the total, and the signs do
    # not fit the type; the confirmation is refused
    code = main(["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]),
                 "--set", "gross_total=-336.90", "--set", "breakdown=19:100.00:19.00",
                 "--version", str(doc["processing_version"]), "--confirm", "--by", "anna"])  # fmt: skip
    said = json.loads(capsys.readouterr().out)
    assert code == 1 and said["status"] == "NEEDS_REVIEW" and said["changed"] == "nothing"
    assert said["corrected"] == {}
    assert said["refused"]["gross_total"] == {"old": str(before["gross_total"]), "new": "-336.90"}
    assert said["problems"]

    # nothing of the document changed: its values, its breakdown, its version
    after = documents(db, org)["b.xml"]
    assert after["gross_total"] == before["gross_total"] != Decimal("-336.90")
    assert after["processing_version"] == before["processing_version"]
    assert after["status"] == "NEEDS_REVIEW"
    assert _breakdown(db, org, doc["id"]) == taxes
    assert _review_rows(db, org, doc["id"]) == []

    # the refusal is a finding a person sees where they look
    listed = _listed(org, doc["id"], capsys)
    assert listed["gross_total"] == str(before["gross_total"])
    [refusal] = [f for f in listed["findings"] if f["rule"] == "IP-REV-13"]
    assert refusal["stage"] == "review"
    assert "confirmation by anna refused, nothing changed" in refusal["message"]
    assert f"gross_total -336.90 (stored {before['gross_total']})" in refusal["message"]
    assert said["problems"][0] in refusal["message"]
    shown = _shown(org, doc["id"], capsys)
    assert "IP-REV-13" in {f["rule"] for f in shown["findings"]}

    # the same version is still the one to review, and the stored values, which hold, book
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anna", confirm=True,
        expected_version=before["processing_version"],
    )  # fmt: skip
    assert (result.status, result.refused) == ("VALIDATED", {})
    assert documents(db, org)["b.xml"]["gross_total"] == before["gross_total"]
    listed = _listed(org, doc["id"], capsys)
    assert "IP-REV-13" not in {f["rule"] for f in listed["findings"]}


def test_a_correction_without_a_confirmation_is_still_kept(db, tmp_path) -> None:
    """Only a confirmation is refused whole: a correction alone is recorded as before."""
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"b.xml": basic_wl("HN-2")})["b.xml"]
    result = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="anna",
        corrections={"gross_total": "-336.90"}, expected_version=doc["processing_version"],
    )  # fmt: skip
    assert result.status == "NEEDS_REVIEW" and "gross_total" in result.corrected
    row = documents(db, org)["b.xml"]
    assert row["gross_total"] == Decimal("-336.90")
    assert row["processing_version"] == doc["processing_version"] + 1
    assert _review_rows(db, org, doc["id"]) == [("corrected", "gross_total")]


def _reopen(db, org, doc_id: int, version: int, reason: str) -> None:
    review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc_id, reviewed_by="carla", reopen=True, reason=reason,
        expected_version=version,
    )  # fmt: skip


def test_a_confirmation_resolves_the_findings_that_no_longer_hold(
    db, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"v.xml": own_invoice("HN-3")})["v.xml"]
    assert doc["status"] == "VALIDATED"
    seen = doc["processing_version"]
    _reopen(db, org, doc["id"], seen, "the amount due is wrong")
    assert [f["rule"] for f in _listed(org, doc["id"], capsys)["findings"]] == ["IP-REV-11"]

    # confirmed: the reopening's warning no longer holds, so the listings leave it out
    booked = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="dora", confirm=True,
        expected_version=seen + 1,
    )  # fmt: skip
    assert booked.status == "VALIDATED"
    listed = _listed(org, doc["id"], capsys)
    assert listed["status"] == "VALIDATED"
    assert "IP-REV-11" not in {f["rule"] for f in listed["findings"]}
    # kept for the audit trail, with who resolved it and when
    shown = _shown(org, doc["id"], capsys)
    assert "IP-REV-11" not in {f["rule"] for f in shown["findings"]}
    [resolved] = shown["resolved_findings"]
    assert (resolved["rule"], resolved["resolved_by"]) == ("IP-REV-11", "dora")
    assert resolved["message"] == "reopened by carla: the amount due is wrong"
    assert resolved["resolved_at"]

    # reopened again: a refused confirmation's finding and the new reopening hold until a
    # confirmation books it
    _reopen(db, org, doc["id"], seen + 2, "once more")
    refused = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="carla", confirm=True,
        corrections={"gross_total": "-336.90"}, expected_version=seen + 3,
    )  # fmt: skip
    assert refused.status == "NEEDS_REVIEW"
    findings = _listed(org, doc["id"], capsys)["findings"]
    assert [f["rule"] for f in findings] == ["IP-REV-11", "IP-REV-13"]
    assert findings[0]["message"] == "reopened by carla: once more"
    booked = review_document(
        db.engine, find_organization(db.engine, org["slug"]), doc["id"], reviewed_by="dora", confirm=True,
        expected_version=seen + 3,
    )  # fmt: skip
    assert booked.status == "VALIDATED"
    listed = _listed(org, doc["id"], capsys)
    assert {"IP-REV-11", "IP-REV-13"}.isdisjoint({f["rule"] for f in listed["findings"]})
    shown = _shown(org, doc["id"], capsys)
    assert [(f["rule"], f["resolved_by"]) for f in shown["resolved_findings"]] == [
        ("IP-REV-11", "dora"),
        ("IP-REV-11", "dora"),
        ("IP-REV-13", "dora"),
    ]
