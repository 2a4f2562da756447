"""A run for an offboarded organization (issue 75): its data are read-only until the deletion, so
a run of its partition alone, or a launchpad job naming it, is refused before any work with the
sentence that says why (not the database's read-only error half-way through); a run over a range
of organizations leaves its partition and does the others. The organizations asset still shows
it. On both databases."""

from __future__ import annotations

from datetime import date

from dagster import AssetKey, instance_for_test, materialize

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    partition_range_tags,
)
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.assets import organizations_asset
from invoice_pipelines.tenants.domain.offboarding import export_organization
from invoice_pipelines_tests.overdue.helpers import customer, invoice, levels_by_invoice
from invoice_pipelines_tests.overdue.test_defs import TICK, _defs

READ_ONLY = "is offboarded: its data are kept read-only"


def _offboard(db, org: dict, tmp_path) -> None:
    export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        tmp_path / org["slug"],
        system=db.system_engine,
        by="anna",
    )


def _dunning(db, instance, **run):
    config = {"ops": {"dunning_notices": {"config": {"as_of": TICK.isoformat()}}}}
    return (
        _defs(db)
        .resolve_job_def("dunning_job")
        .execute_in_process(instance=instance, run_config=config, raise_on_error=False, **run)
    )


def test_a_run_of_an_offboarded_organizations_partition_is_refused_before_any_work(db, tmp_path):
    org = db.new_organization()
    invoice(db, org, customer(db, org), date(2026, 10, 1))  # overdue: a run would notice it
    _offboard(db, org, tmp_path)
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
        result = _dunning(db, instance, partition_key=org["slug"])
        materialized = instance.get_materialized_partitions(AssetKey("dunning_notices"))
        errors = [
            e.message
            for e in instance.all_logs(result.run_id)
            if e.message and READ_ONLY in e.message
        ]
        # the organizations asset still shows it, offboarded
        shown = materialize(
            [organizations_asset],
            partition_key=org["slug"],
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "upload_store": LocalUploads(str(tmp_path / "uploads")),
            },
            instance=instance,
        )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert org["slug"] in message and READ_ONLY in message
    assert "read-only transaction" not in message and "25006" not in message
    assert errors and materialized == set()
    assert levels_by_invoice(db, org) == {}
    assert shown.success
    [event] = shown.get_asset_materialization_events()
    state = event.materialization.metadata["state"].value
    assert state == "offboarded"


def test_a_run_over_a_range_leaves_an_offboarded_organization_and_does_the_others(db, tmp_path):
    first, gone, last = (db.new_organization() for _ in range(3))
    late = {
        org["slug"]: invoice(db, org, customer(db, org), date(2026, 10, 1))
        for org in (first, gone, last)
    }
    _offboard(db, gone, tmp_path)
    slugs = [first["slug"], gone["slug"], last["slug"]]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        result = _dunning(db, instance, tags=partition_range_tags(slugs[0], slugs[-1]))
        materialized = instance.get_materialized_partitions(AssetKey("dunning_notices"))
        said = [
            e.message
            for e in instance.all_logs(result.run_id)
            if e.message and READ_ONLY in e.message
        ]
    assert result.success
    assert materialized == {first["slug"], last["slug"]}
    for org in (first, last):
        assert levels_by_invoice(db, org) == {late[org["slug"]]: ["final_notice"]}
    assert levels_by_invoice(db, gone) == {}
    assert len(said) == 1 and gone["slug"] in said[0]
