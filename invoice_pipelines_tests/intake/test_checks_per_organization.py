"""Issue 85, point 4: the checks that judge one organization are partitioned like their asset.
validated_invoices_exportable failed for one organization and showed "Succeeded" after the next
organization's run, the document still unexportable; now each organization's partition keeps
its own evaluation, and the failure stays visible until it is gone."""

from __future__ import annotations

from dagster import AssetCheckKey, AssetKey, Definitions, instance_for_test
from dagster._core.event_api import PartitionKeyFilter

from invoice_pipelines.intake import assets as intake_assets
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.intake.jobs import intake_job
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.exports.books import DATEV
from invoice_pipelines_tests.intake.test_intake_jobs import GOOD_CII, _drop, _resources

EXPORTABLE = AssetCheckKey(AssetKey("incoming_invoices"), "validated_invoices_exportable")


def _latest(instance, slug: str):
    found = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [EXPORTABLE], partition_filter=PartitionKeyFilter(key=slug)
    )
    return found[EXPORTABLE].evaluation


def test_one_organizations_failure_stays_visible_after_anothers_run(db, tmp_path):
    dated_2018, clean = db.new_organization(**DATEV), db.new_organization(**DATEV)
    store = LocalUploads(str(tmp_path / "uploads"))
    # the ZUGFeRD sample is dated 2018-03-05: before every export month
    _drop(store, dated_2018, {"einfach-2018.xml": (samples_dir() / GOOD_CII).read_bytes()})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    [doc_id] = [i for b in scan.batches for i in b.document_ids]
    job = Definitions(
        assets=[intake_assets.uploads, intake_assets.incoming_invoices],
        jobs=[intake_job],
        resources=_resources(db, store),
    ).resolve_job_def("intake_job")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(
            ORGANIZATIONS_PARTITIONS_NAME, [dated_2018["slug"], clean["slug"]]
        )
        for org, ids in ((dated_2018, [doc_id]), (clean, [])):
            config = {"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}}
            result = job.execute_in_process(
                run_config=config, instance=instance, partition_key=org["slug"]
            )
            assert result.success
        failed, passed = _latest(instance, dated_2018["slug"]), _latest(instance, clean["slug"])
    assert failed.partition == dated_2018["slug"] and not failed.passed
    assert "INVOICE_PIPELINES_EXPORT_START_MONTH" in failed.description
    assert passed.partition == clean["slug"] and passed.passed
