"""A suspended organization gets nothing from the month-end's sensors: runs over ranges of
partitions leave it out of every range (a range run does each partition of its range), and the
tick says so."""

import json
from datetime import UTC, datetime

from dagster import instance_for_test

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.lib.automation import Automatic
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.overdue.sensors import build_dunning_sensor
from invoice_pipelines.tenants.domain.lifecycle import suspend_organization
from invoice_pipelines_tests.tenants.period_ticks import tick

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def test_ranges_go_around_the_suspended_organizations():
    automatic = Automatic(list("abcdefg"), {"c": "unpaid", "d": "moving"})
    assert automatic.ranges(2) == [["a", "b"], ["e", "f"], ["g"]]
    assert automatic.working == ["a", "b", "e", "f", "g"]
    assert automatic.note() == "; suspended, nothing requested: c (unpaid), d (moving)"
    assert automatic.note(["a", "d"]) == "; suspended, nothing requested: d (moving)"


def test_the_dunning_sensor_requests_nothing_for_a_suspended_organization(db):
    orgs = [db.new_organization() for _ in range(3)]
    suspend_organization(
        db.engine,
        find_organization(db.engine, orgs[1]["slug"]),
        reason="unpaid since March",
        by="anna",
    )
    sensor = build_dunning_sensor(
        schedule_settings({"INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "5"}),
        clock=lambda: datetime(2026, 11, 21, 1, tzinfo=UTC),
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [o["slug"] for o in orgs])
        cursor = json.dumps({"tick": "2026-11-21T00:00"})
        result = tick(sensor, instance, db.engine, cursor)
    assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in result.run_requests] == [
        (orgs[0]["slug"], orgs[0]["slug"]),
        (orgs[2]["slug"], orgs[2]["slug"]),
    ]
