"""A dropped invoice never waits behind bulk work (issue 47).

Intake runs leave the queue first (`dagster/priority`), have an organization slot of their own
(an organization's batch, documents or QuickBooks run does not hold its intake back), and bulk runs
never take the last runs of `max_concurrent_runs`. Launched as the launchpad and the sensors launch
them, queued by our coordinator on an instance with deploy/dagster.yaml's limits, started by one
iteration of Dagster's queue daemon (see test_run_coordinator.py).
"""

import json
import os
import time
from pathlib import Path

import yaml
from dagster import DagsterInstance, DagsterRunStatus, build_sensor_context

from invoice_pipelines.intake.sensors import UPLOAD_SENSOR_INTERVAL_SECONDS, upload_sensor
from invoice_pipelines.lib.partitions import ORGANIZATION_TAG, ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import (
    BULK_RUN_TAGS,
    LANE_TAG,
    PRIORITY_TAG,
    SLOT_TAG,
)
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.settings import SETTINGS
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.tenants.test_run_coordinator import (  # noqa: F401 (fixtures)
    _workspace,
    dequeue_once,
    launch,
    tags_of,
    workspace,
)

REPO = Path(__file__).resolve().parents[2]
GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"


def _status(instance, run: dict) -> DagsterRunStatus:
    return instance.get_run_by_id(run["run"]["runId"]).status


def _batch(workspace, org: dict) -> dict:  # noqa: F811
    """A batch invoicing run as batch_jobs_sensor requests it: in the bulk lane."""
    run = launch(
        workspace,
        "batch_invoicing_job",
        "sales_invoices",
        {"request": {"all_reviewed": {}}},
        tags=BULK_RUN_TAGS,
        partition=org["slug"],
    )
    assert run["__typename"] == "LaunchRunSuccess", run
    return run


def _intake(workspace, org: dict, document_ids: list[int]) -> dict:  # noqa: F811
    """An intake run as launched by hand: the coordinator puts it in the intake lane."""
    run = launch(
        workspace,
        "intake_job",
        "incoming_invoices",
        {"document_ids": document_ids},
        partition=org["slug"],
    )
    assert run["__typename"] == "LaunchRunSuccess", run
    return run


def test_an_organizations_intake_run_starts_beside_its_bulk_run_one_at_a_time(db, workspace):  # noqa: F811
    shop = make_shop(db)
    instance = workspace.instance
    batch = _batch(workspace, shop.org)
    dequeue_once(workspace)
    assert _status(instance, batch) == DagsterRunStatus.STARTING

    first = _intake(workspace, shop.org, [1])
    second = _intake(workspace, shop.org, [2])
    tags = tags_of(first["run"])
    assert tags[ORGANIZATION_TAG] == shop.org["slug"]
    assert tags[SLOT_TAG] == f"{shop.org['slug']}/intake"
    assert int(tags[PRIORITY_TAG]) > int(BULK_RUN_TAGS[PRIORITY_TAG])
    dequeue_once(workspace)
    # the organization's batch runs on; its first intake run starts, the second waits for it
    assert _status(instance, first) == DagsterRunStatus.STARTING
    assert _status(instance, second) == DagsterRunStatus.QUEUED

    # any other run of the organization still waits for the batch: one at a time, as before
    retry = launch(
        workspace,
        "retry_failed_invoices_job",
        "incoming_invoices",
        {"retry_failed": True},
        partition=shop.org["slug"],
    )
    assert tags_of(retry["run"])[SLOT_TAG] == shop.org["slug"]
    dequeue_once(workspace)
    assert _status(instance, retry) == DagsterRunStatus.QUEUED


def test_bulk_runs_never_take_the_last_slots_and_intake_leaves_the_queue_first(db, workspace):  # noqa: F811
    instance = workspace.instance
    settings = yaml.safe_load((REPO / "deploy" / "dagster.yaml").read_text())
    most = settings["concurrency"]["runs"]["max_concurrent_runs"]
    shops = [make_shop(db) for _ in range(most + 1)]
    # more bulk runs queued than there are slots, of as many organizations, before the intake run
    bulk = [_batch(workspace, shop.org) for shop in shops]
    intake = _intake(workspace, shops[0].org, [1])
    dequeue_once(workspace)

    started = [run for run in bulk if _status(instance, run) == DagsterRunStatus.STARTING]
    assert len(started) == most - 2
    assert _status(instance, intake) == DagsterRunStatus.STARTING
    assert all(tags_of(run["run"])[LANE_TAG] == "bulk" for run in bulk)


def _tick(db, store, *slugs, cursor=None):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, list(slugs))
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": store,
        },
    ) as context:
        return upload_sensor(context)


def test_the_upload_sensors_run_requests_are_in_the_intake_lane(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    name = "invoice.xml"
    store.put(org["slug"], name, (samples_dir() / GOOD_CII).read_bytes())
    past = time.time() - 120  # settled: untouched for longer than the quiet period
    os.utime(os.path.join(store.root, org["slug"], name), (past, past))
    result = _tick(db, store, org["slug"])
    [request] = [r for r in result.run_requests if r.partition_key == org["slug"]]
    assert request.tags[LANE_TAG] == "intake"
    assert int(request.tags[PRIORITY_TAG]) > int(BULK_RUN_TAGS[PRIORITY_TAG])


def test_a_file_just_dropped_is_registered_and_sent_in_the_tick_that_first_sees_it(
    db, tmp_path, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS", "0.5")
    org, other = db.new_organization(), db.new_organization()
    store = LocalUploads(str(tmp_path))
    store.put(org["slug"], "new.xml", (samples_dir() / GOOD_CII).read_bytes())
    # another organization's file, seen by the last tick and changed since: it waits for the next
    # tick and stays remembered in the cursor
    store.put(other["slug"], "growing.xml", b"<?xml")
    growing = f"{other['slug']}/growing.xml"
    cursor = json.dumps({"pending": {growing: [1, 1]}, "dispatched": {}})
    result = _tick(db, store, org["slug"], other["slug"], cursor=cursor)
    [request] = result.run_requests
    assert request.partition_key == org["slug"]
    assert len(request.run_config["ops"]["incoming_invoices"]["config"]["document_ids"]) == 1
    [seen] = result.asset_events
    assert (seen.partition, seen.metadata["registered"].value) == (org["slug"], 1)
    assert json.loads(result.cursor)["pending"][growing][0] == len(b"<?xml")


def test_the_upload_timings_are_the_documented_ones():
    intake = (REPO / "docs" / "intake.md").read_text()
    assert f"`minimum_interval_seconds={UPLOAD_SENSOR_INTERVAL_SECONDS}`" in intake
    # under the daemon's loop of 5 s, so that the sensor ticks on every loop
    assert UPLOAD_SENSOR_INTERVAL_SECONDS < 5
    [settle] = [s.default for s in SETTINGS if s.name == "INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS"]
    configuration = (REPO / "docs" / "configuration.md").read_text()
    assert f"| `INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS` | `{settle}` |" in configuration
    assert float(settle) <= UPLOAD_SENSOR_INTERVAL_SECONDS
