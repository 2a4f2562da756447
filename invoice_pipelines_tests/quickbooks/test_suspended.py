"""A suspended organization gets nothing from QuickBooks' automatic work (issue 75), on both
databases: a sync run over a range of organizations leaves it undone and unmaterialized and says
why; the daily schedules leave it out of their batches."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import (
    AssetKey,
    DagsterInstance,
    build_schedule_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import update

from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    partition_range_tags,
)
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.schedules import DAILY_SCHEDULES
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.test_defs_and_cli import _resources as qbo_resources
from invoice_pipelines_tests.tenants.test_suspended_get_nothing import REASON, _said, _suspend


def test_a_quickbooks_run_over_a_range_leaves_a_suspended_organization_alone(db, simulator):
    good = connect(db, simulator)
    good.add_customer("Guter Kunde GmbH")
    paused = connect(db, simulator)
    paused.add_customer("Pausierter Kunde GmbH")
    _suspend(db, paused.org)
    slugs = [good.org["slug"], paused.org["slug"]]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        result = materialize(
            [SYNC_ASSETS["customers"]],
            instance=instance,
            tags=partition_range_tags(slugs[0], slugs[-1]),
            resources=qbo_resources(good),
        )
        materialized = instance.get_materialized_partitions(AssetKey("qbo_customers"))
        said = _said(instance, result.run_id)
    assert result.success
    assert materialized == {good.org["slug"]}
    assert len(simulator.records(good.realm, "Customer")) == 1
    # the suspended organization's customer did not go to its QuickBooks company
    assert len(simulator.records(paused.realm, "Customer")) == 0
    assert len(said) == 1 and paused.org["slug"] in said[0] and REASON in said[0]


def test_the_quickbooks_daily_schedule_requests_nothing_for_a_suspended_organization(db, simulator):
    running, paused = connect(db, simulator), connect(db, simulator)
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id.in_([running.org_id, paused.org_id]))
            .values(timezone="Europe/Berlin")
        )
    _suspend(db, paused.org)
    slugs = [running.org["slug"], paused.org["slug"]]
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        # 01:00 UTC in November is 02:00 in Berlin: the payments' hour
        with build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 23, 1, 0, tzinfo=UTC),
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            requests = DAILY_SCHEDULES["payments"](context)
    asked = {
        slug
        for r in requests
        for slug in r.run_config["ops"]["qbo_payments"]["config"]["organizations"]
    }
    assert running.org["slug"] in asked
    assert paused.org["slug"] not in asked
