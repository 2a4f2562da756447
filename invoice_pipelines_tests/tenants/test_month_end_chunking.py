"""The month-end's two schedules (the monthly exports and the dunning, both on the 1st) cut the
organizations into runs by one rule (tenants/partitions.organizations_per_run), so that the two
runs over an organization cover the same span and get the same slot from the run coordinator: one
at a time per organization (issue 76: at 200 organizations, 10 per export run against 100 per
dunning run, 20 of the 22 runs ran beside another run of the same organizations)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from dagster import DagsterRun, build_schedule_context, instance_for_test

from invoice_pipelines.exports.schedules import monthly_exports_schedule
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.overdue.schedules import build_dunning_schedule
from invoice_pipelines.tenants.partitions import (
    MAX_RUNS_PER_TICK,
    ORGANIZATIONS_PARTITIONS_NAME,
    ORGANIZATIONS_PER_RUN,
    organizations_per_run,
)
from invoice_pipelines.tenants.run_coordinator import organizations_slot_of_range

# the dunning's tick at 00:00 on the 1st in Berlin, the exports' at 03:00
DUNNING_TICK = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
EXPORTS_TICK = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def test_a_tick_asks_for_at_most_a_hundred_runs_of_a_hundred_organizations_or_more():
    most = ORGANIZATIONS_PER_RUN * MAX_RUNS_PER_TICK
    assert organizations_per_run(1) == organizations_per_run(most) == ORGANIZATIONS_PER_RUN
    assert organizations_per_run(most + 1) == ORGANIZATIONS_PER_RUN + 1
    assert organizations_per_run(3, at_least=2) == 2
    assert organizations_per_run(2001, at_least=10) == 21
    for count in (1, 999, 1000, 1001, 10_000, 25_001):
        runs = -(-count // organizations_per_run(count))
        assert runs <= MAX_RUNS_PER_TICK


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
    dunning_schedule = build_dunning_schedule(schedule_settings({}))
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        requests = {}
        for name, schedule, tick in (
            ("exports", monthly_exports_schedule, EXPORTS_TICK),
            ("dunning", dunning_schedule, DUNNING_TICK),
        ):
            with build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                resources={"database": sqlite_database.engine},
            ) as context:
                requests[name] = list(schedule(context))
    exports, dunning = (_slots(requests[name], set(slugs)) for name in ("exports", "dunning"))
    assert exports == dunning
    assert len(exports) == -(-count // organizations_per_run(count)) <= MAX_RUNS_PER_TICK
    # every organization in exactly one span, the spans in the instance's order
    covered = []
    for slot in exports:
        first, last = slot.split("..")
        covered += slugs[slugs.index(first) : slugs.index(last) + 1]
    assert covered == slugs
