"""A supplier invoice held for review (NEEDS_REVIEW) is not booked and not counted as a failure to
book: every_invoice_booked passes and says how many wait; once a person confirms it, the month's
next export books it. PostgreSQL and SQLite."""

from __future__ import annotations

from dagster import MultiPartitionKey, instance_for_test
from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.test_export_defs import (
    OVER,
    _checks,
    _materializations,
    _run,
)
from invoice_pipelines_tests.intake.test_review import version


def _status(db, org, doc_id) -> str:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_an_invoice_in_review_is_neither_booked_nor_a_failure_and_is_booked_once_confirmed(
    db, tmp_path
):
    org = db.new_organization(**DATEV)
    booked = incoming(db.engine, org["id"], "B-1", day=OVER)
    held = incoming(db.engine, org["id"], "H-1", day=OVER, status="NEEDS_REVIEW")
    key = MultiPartitionKey({"organizations": org["slug"], "month": "2026-10"})
    with instance_for_test() as instance:
        result = _run(db, tmp_path, instance, org["slug"], partition_key=key)
    assert result.success
    meta = _materializations(result, "incoming_invoice_exports")[key]
    assert (meta["invoices"].value, meta["skipped"].value, meta["in_review"].value) == (1, 0, 1)
    assert _checks(result)["incoming_invoice_exports"] is True
    [evaluation] = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.asset_key.to_user_string() == "incoming_invoice_exports"
    ]
    assert evaluation.metadata["in_review"].value == 1
    assert "1 supplier invoice(s) of the month wait for review" in evaluation.description
    assert (_status(db, org, booked), _status(db, org, held)) == ("EXPORTED", "NEEDS_REVIEW")

    review_document(db.engine, find_organization(db.engine, org["slug"]), held, reviewed_by="erik", confirm=True,
                    expected_version=version(db, org, held))  # fmt: skip
    with instance_for_test() as instance:
        again = _run(db, tmp_path, instance, org["slug"], partition_key=key)
    meta = _materializations(again, "incoming_invoice_exports")[key]
    assert meta["invoices"].value == 2 and "in_review" not in meta
    assert _status(db, org, held) == "EXPORTED"
