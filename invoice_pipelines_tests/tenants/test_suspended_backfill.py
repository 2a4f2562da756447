"""A backfill requests nothing for a suspended organization (issue 75): its run is cancelled
before it is queued, saying why and what to do; after `resume` the same backfill's run queues."""

from __future__ import annotations

from dagster import DagsterRunStatus

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import BACKFILL_TAG
from invoice_pipelines.tenants.domain.lifecycle import resume_organization, suspend_organization
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.tenants.test_cancelled_backfill import _backfill
from invoice_pipelines_tests.tenants.test_run_coordinator import _workspace, launch, workspace

__all__ = ["_workspace", "workspace"]  # the fixtures, shared with test_run_coordinator.py


def test_a_backfills_run_of_a_suspended_organization_is_cancelled_until_it_is_resumed(
    db, workspace
):
    shop = make_shop(db)
    slug = shop.org["slug"]
    instance = workspace.instance
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    backfill = _backfill(workspace, slug)

    def submitted() -> str:
        run = launch(
            workspace,
            "documents_job",
            "sales_invoice_documents",
            {},
            tags={BACKFILL_TAG: backfill},
            partition=slug,
        )
        assert run["__typename"] == "LaunchRunSuccess", run
        return run["run"]["runId"]

    suspend_organization(
        db.engine, find_organization(db.engine, slug), reason="migration in progress", by="anna"
    )
    cancelled = submitted()
    assert instance.get_run_by_id(cancelled).status == DagsterRunStatus.CANCELED
    [message] = [
        event.message
        for event in instance.all_logs(cancelled)
        if event.dagster_event and event.dagster_event.event_type_value == "PIPELINE_CANCELED"
    ]
    assert f"{slug} is suspended (migration in progress)" in message
    assert f"invoice-pipelines organizations resume {slug}" in message

    resume_organization(db.engine, find_organization(db.engine, slug), by="anna")
    assert instance.get_run_by_id(submitted()).status == DagsterRunStatus.QUEUED
