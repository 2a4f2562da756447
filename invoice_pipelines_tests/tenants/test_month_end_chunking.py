"""The month-end's two sensors (the monthly exports and the dunning, both on the 1st) cut the
organizations into runs by one rule (lib/partitions.organizations_per_run), so that the two
runs over an organization cover the same span and get the same slot from the run coordinator: one
at a time per organization (issue 76: at 200 organizations, 10 per export run against 100 per
dunning run, 20 of the 22 runs ran beside another run of the same organizations)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dagster import DagsterRun, instance_for_test

from invoice_pipelines.exports.sensors import build_monthly_exports_sensor
from invoice_pipelines.lib.partitions import (
    MAX_RUNS_PER_PERIOD,
    ORGANIZATIONS_PARTITIONS_NAME,
    ORGANIZATIONS_PER_RUN,
    RUNS_PER_TICK,
    organizations_per_run,
)
from invoice_pipelines.lib.run_coordinator import organizations_slot_of_range
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.overdue.sensors import build_dunning_sensor
from invoice_pipelines_tests.tenants.period_ticks import every_tick

# the dunning's tick at 00:00 on the 1st in Berlin, the exports' at 03:00
DUNNING_TICK = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
EXPORTS_TICK = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def test_a_period_has_at_most_a_hundred_runs_of_a_hundred_organizations_or_more():
    most = ORGANIZATIONS_PER_RUN * MAX_RUNS_PER_PERIOD
    assert organizations_per_run(1) == organizations_per_run(most) == ORGANIZATIONS_PER_RUN
    assert organizations_per_run(most + 1) == ORGANIZATIONS_PER_RUN + 1
    assert organizations_per_run(3, at_least=2) == 2
    assert organizations_per_run(2001, at_least=10) == 21
    for count in (1, 999, 1000, 1001, 10_000, 25_001):
        runs = -(-count // organizations_per_run(count))
        assert runs <= MAX_RUNS_PER_PERIOD


def _slots(requests, slugs: set[str]) -> list[str]:
    def is_organization(key: str) -> bool:
        return key in slugs

    return [
        organizations_slot_of_range(DagsterRun(job_name="job", tags=r.tags), is_organization)
        for r in requests
    ]


@pytest.mark.parametrize("count", [250, 10_050])
def test_an_organizations_export_run_and_dunning_run_on_the_first_share_one_slot(
    sqlite_database, count
):
    slugs = [f"org-{number:05d}" for number in range(count)]
    later = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)
    sensors = {
        "exports": (build_monthly_exports_sensor(clock=lambda: later), EXPORTS_TICK),
        "dunning": (
            build_dunning_sensor(schedule_settings({}), clock=lambda: later),
            DUNNING_TICK,
        ),
    }
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        requests = {}
        for name, (sensor, tick) in sensors.items():
            cursor = json.dumps({"tick": tick.isoformat()})
            results = every_tick(sensor, instance, sqlite_database.engine, cursor)
            assert max(len(r.run_requests) for r in results) <= RUNS_PER_TICK
            requests[name] = [r for result in results for r in result.run_requests]
    exports, dunning = (_slots(requests[name], set(slugs)) for name in ("exports", "dunning"))
    assert exports == dunning
    assert len(exports) == -(-count // organizations_per_run(count)) <= MAX_RUNS_PER_PERIOD
    # every organization in exactly one span, the spans in the instance's order
    covered = []
    for slot in exports:
        first, last = slot.split("..")
        covered += slugs[slugs.index(first) : slugs.index(last) + 1]
    assert covered == slugs
