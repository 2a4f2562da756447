"""The stuck-document check and the per-organization stats asset."""

from datetime import timedelta

from dagster import DagsterInstance, materialize
from sqlalchemy import update

from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.intake.defs import incoming_invoice_stats, intake_health
from invoice_pipelines.intake.documents import register_upload
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.partitions import ORGANIZATIONS_PARTITIONS_NAME


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
    result = materialize(
        [intake_health],
        resources={"database": Database(url=db.url)},
        instance=DagsterInstance.ephemeral(),
    )
    return result.get_asset_check_evaluations()[0]


def test_check_reports_documents_waiting_more_than_five_minutes(db):
    org = db.new_organization()
    _doc(db, org, "fresh.xml", minutes_ago=1)
    before = _check(db)
    mine_before = before.metadata["by_organization"].value.get(org["slug"], 0)
    assert mine_before == 0

    stuck = _doc(db, org, "stuck.xml", minutes_ago=7)
    after = _check(db)
    assert not after.passed
    assert after.metadata["by_organization"].value[org["slug"]] == 1
    assert stuck in [d["id"] for d in after.metadata["oldest"].value]


def test_stats_asset_reports_counts_and_rates(db):
    org = db.new_organization()
    _doc(db, org, "a.xml", 0)
    _doc(db, org, "b.xml", 0)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    result = materialize(
        [incoming_invoice_stats],
        partition_key=org["slug"],
        resources={"database": Database(url=db.url)},
        instance=instance,
    )
    metadata = result.asset_materializations_for_node("incoming_invoice_stats")[0].metadata
    assert metadata["total"].value == 2
    assert metadata["count_uploaded"].value == 2
    assert metadata["failure_rate_pct"].value == 0.0
