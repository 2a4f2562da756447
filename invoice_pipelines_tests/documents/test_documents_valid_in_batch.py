"""`documents_valid` is evaluated on the materialization a batch's documents job records (issue
73): after `batch-invoice --generate-pdf`, the queue's run writes the batch's documents and
records them on sales_invoice_documents, and the check judged them there; before, the UI showed
it "Not evaluated" on that materialization. PostgreSQL and SQLite, the project's definitions."""

from __future__ import annotations

from dagster import DagsterEventType, DagsterInstance

from invoice_pipelines.definitions import build_definitions
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME, organization_tags
from invoice_pipelines_tests.checked_latest import assert_checked_latest
from invoice_pipelines_tests.documents.test_history import _invoiced_with_documents_asked, _org
from invoice_pipelines_tests.queue.kinds import OP


def test_a_batchs_documents_job_evaluates_documents_valid_on_what_it_records(
    db, tmp_path, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path / "documents"))
    org = _org(db)
    follow_up, made = _invoiced_with_documents_asked(db, org, 2)
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    result = (
        build_definitions()
        .resolve_job_def("invoice_batch_job")
        .execute_in_process(
            run_config={
                "ops": {OP: {"config": {"request": {"queued_job": {"batch_job_id": follow_up}}}}}
            },
            instance=instance,
            tags=organization_tags(org["slug"]),
        )
    )
    assert result.success
    [recorded] = result.asset_materializations_for_node(OP)
    assert recorded.asset_key.path == ["sales_invoice_documents"]
    [evaluated] = [
        e.dagster_event.event_specific_data
        for e in instance.all_logs(result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert (evaluated.check_name, evaluated.passed) == ("documents_valid", True)
    assert evaluated.partition == org["slug"] and len(made) == 2
    statuses = assert_checked_latest(
        instance, "sales_invoice_documents", ["documents_valid"], org["slug"]
    )
    assert statuses == {"documents_valid": "SUCCEEDED"}
