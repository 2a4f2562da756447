"""The stuck-document check of incoming_invoices, run by its own job on a schedule."""

from datetime import timedelta

from dagster import DagsterInstance, Definitions
from sqlalchemy import update

from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake import assets as intake_assets
from invoice_pipelines.intake import checks as intake_checks
from invoice_pipelines.intake.checks import (
    discounts_not_expiring,
    mailbox_fresh,
    no_stuck_documents,
)
from invoice_pipelines.intake.domain.incoming_invoices import register_upload
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine


def _doc(db, org, name, minutes_ago):
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        reg = register_upload(
            conn,
            organization_id=org["id"],
            filename=name,
            storage_key=f"{org['slug']}/{name}",
            content_hash=name,
            size_bytes=1,
        )
        conn.execute(
            update(incoming_invoices)
            .where(incoming_invoices.c.id == reg.document_id)
            .values(status_changed_at=utcnow() - timedelta(minutes=minutes_ago))
        )
    return reg.document_id


def _check(db):
    job = Definitions(
        assets=[intake_assets.incoming_invoices, intake_assets.mailbox_messages],
        asset_checks=[no_stuck_documents, discounts_not_expiring, mailbox_fresh],
        jobs=[intake_checks.incoming_invoices_checks_job],
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": LocalUploadStore(),
            "ocr_engine": TesseractOcrEngine(),
            "document_parser": DocumentParser(workers=1),
        },
    ).resolve_job_def("incoming_invoices_checks_job")
    result = job.execute_in_process(instance=DagsterInstance.ephemeral())
    [evaluation] = [
        e for e in result.get_asset_check_evaluations() if e.check_name == "no_stuck_documents"
    ]
    assert evaluation.asset_key.to_user_string() == "incoming_invoices"
    return evaluation


def test_check_reports_documents_waiting_more_than_five_minutes(db):
    org = db.new_organization()
    _doc(db, org, "fresh.xml", minutes_ago=1)
    before = _check(db)
    mine_before = before.metadata["by_organization"].value.get(org["slug"], 0)
    assert mine_before == 0

    # stuck for days: among the oldest the check lists, whatever documents other tests of the
    # same database left waiting before this one ran
    stuck = _doc(db, org, "stuck.xml", minutes_ago=60 * 24 * 30)
    after = _check(db)
    assert not after.passed and after.severity.value == "WARN"
    assert after.metadata["by_organization"].value[org["slug"]] == 1
    assert stuck in [d["id"] for d in after.metadata["oldest"].value]
