"""The checks that judge an intake run's materialization are evaluated by that run (issue 56).

On `incoming_invoices` four of five checks showed "Not Evaluated" in the UI: they ran every
5 minutes in runs of their own, and each new materialization hid their result. Now the run that
materializes the asset evaluates every check that judges what it wrote, against that very
materialization; the checks that watch what time does (a document stuck, a discount running out)
stay on a schedule and say so, and the run evaluates them too (issue 73). PostgreSQL and SQLite, the project's own definitions.
"""

from __future__ import annotations

from dagster import AssetKey, DagsterInstance

from invoice_pipelines.definitions import build_definitions
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME, organization_tags
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.checked_latest import assert_checked_latest
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.intake.test_intake_jobs import BAD_SUMS, GOOD_CII, _drop
from invoice_pipelines_tests.intake.test_review import basic_wl

INCOMING = AssetKey("incoming_invoices")


def _checks_of_incoming_invoices(defs) -> dict[str, str]:
    """Every check of incoming_invoices in the definitions: name -> description."""
    graph = defs.resolve_asset_graph()
    return {
        key.name: graph.get_check_spec(key).description or ""
        for key in graph.asset_check_keys
        if key.asset_key == INCOMING
    }


def test_an_intake_run_evaluates_the_checks_that_judge_its_materialization(
    db, tmp_path, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    org = db.new_organization()
    store = LocalUploads(str(tmp_path / "uploads"))
    _drop(
        store,
        org,
        {
            # VALIDATED, but dated 2018-03: no export month books it
            "einfach-2018.xml": (samples_dir() / GOOD_CII).read_bytes(),
            # a Basic WL document: held for a person (NEEDS_REVIEW)
            "basic-wl.xml": basic_wl("WAIT-56"),
            # sums that do not add up: FAILED
            "bad-sums.xml": (samples_dir() / BAD_SUMS).read_bytes(),
        },
    )
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    ids = [i for batch in scan.batches for i in batch.document_ids]
    assert len(ids) == 3

    defs = build_definitions()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    result = defs.resolve_job_def("intake_job").execute_in_process(
        run_config={"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}},
        instance=instance,
        partition_key=org["slug"],
        tags=organization_tags(org["slug"]),
        resources={"document_parser": DocumentParser(workers=1)},
    )

    [latest] = instance.fetch_materializations(INCOMING, limit=1).records
    evaluations = {
        e.check_name: e for e in result.get_asset_check_evaluations() if e.asset_key == INCOMING
    }
    # the run evaluates every check of the asset that judges what it wrote ...
    judging = {
        "no_failed_documents",
        "no_documents_waiting_for_review",
        "validated_invoices_exportable",
    }
    # ... and the scheduled ones too, over every organization, as their schedule does (issue 73:
    # each intake run left them "Not evaluated" until the next 5-minute tick)
    checks = _checks_of_incoming_invoices(defs)
    scheduled = {name for name, text in checks.items() if text.startswith("Scheduled check")}
    assert scheduled == {"no_stuck_documents", "discounts_not_expiring"}
    assert set(evaluations) == set(checks)
    # each against the materialization the run wrote, the latest: the UI shows it there
    assert latest.run_id == result.run_id
    for name in judging:
        target = evaluations[name].target_materialization_data
        assert (target.run_id, target.storage_id) == (result.run_id, latest.storage_id)
    # the judging ones for the organization's partition (issue 85: partitioned like their
    # asset), the scheduled ones over every organization
    assert_checked_latest(instance, "incoming_invoices", sorted(judging), org["slug"])
    assert_checked_latest(instance, "incoming_invoices", sorted(scheduled))

    # and each judges this organization's documents, naming the one it warns about
    failed = evaluations["no_failed_documents"]
    assert not failed.passed and failed.metadata["failed"].value == 1
    assert "bad-sums.xml" in failed.metadata["failed_documents"].value.replace("\\", "")
    waiting = evaluations["no_documents_waiting_for_review"]
    assert not waiting.passed and waiting.severity.value == "WARN"
    assert waiting.metadata["in_review"].value == 1
    assert "WAIT-56" in waiting.metadata["documents_in_review"].value.replace("\\", "")
    assert "incoming review" in waiting.description
    outside = evaluations["validated_invoices_exportable"]
    assert not outside.passed and outside.severity.value == "WARN"
    assert outside.metadata["not_exportable"].value == 1
    assert "2018-03" in outside.metadata["not_exportable_documents"].value
    assert "INVOICE_PIPELINES_EXPORT_START_MONTH" in outside.description
    # warnings, not failures: the run and its materialization stand
    assert result.success
