"""Organizations as Dagster partitions and what a run's tags say: the organization that
per-organization concurrency keys on, the range of partitions it covers, who asked for it."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DynamicPartitionsDefinition

ORGANIZATIONS_PARTITIONS_NAME = "organizations"
organizations_partitions = DynamicPartitionsDefinition(name=ORGANIZATIONS_PARTITIONS_NAME)

# the instance yaml (deploy/dagster.yaml) limits concurrent runs per unique value of this tag (applyLimitPerUniqueValue), so
# two runs for the same organization queue while other organizations proceed.
ORGANIZATION_TAG = "invoice_pipelines/organization"


def organization_tags(slug: str) -> dict[str, str]:
    return {ORGANIZATION_TAG: slug}


# Dagster's own run tag for the partition of a run ("dagster/partition").
PARTITION_TAG = "dagster/partition"


def partition_run_tags(slug: str) -> dict[str, str]:
    """Tags of a run request for an organization's partition that the sensor has checked exists.

    Sensors read the partition keys once per tick (`get_dynamic_partitions`) and request runs only
    for known organizations. With the partition tag already set, Dagster takes the request's
    partition as resolved instead of looking the key up again, which on dagster-postgres is one
    new connection and query per request: about 30 ms each, 4.5 s for 150 run requests, the
    largest part of a busy tick at 10,000 organizations (`bench tenants`).
    """
    return {**organization_tags(slug), PARTITION_TAG: slug}


# Dagster's own run tags for a run over a range of partitions: the UI shows the run on each
# partition of the range and backfill-style runs materialize all of them.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


# How a period's runs over every organization are cut (the month-end's exports and dunning,
# lib/sensors.period_runs_sensor): one rule, so that two sensors' runs over one organization
# cover the same span of partitions and so share one slot
# (lib/run_coordinator.organizations_slot_of_range): one run at a time per organization.
# Issue 76: with 10 organizations per export run and 100 per dunning run, a month-end of 200
# organizations ran 20 pairs of runs of the same organizations at once.
# 100 a run, as the dunning had: a run's own cost (its submission, start, events) weighs against
# 10 organizations' month-end (about 3 s of work); at 1,000 organizations 200 runs of 10 took
# 2.13 times the work done in one process (bench month-end, under load).
ORGANIZATIONS_PER_RUN = 100
# With many organizations the runs grow instead of their number: beyond 10,000 organizations at
# most 100 runs a period (thousands of runs would queue for hours behind the instance's run limit
# and flood the Runs page on the 1st of every month).
MAX_RUNS_PER_PERIOD = 100
# Runs a sensor submits a tick (issue 76): submitting one run over 100 organizations costs
# Dagster 0.4-1.5 s of Python at 10,000 organizations, under the GIL (submit threads do not
# help), so 100 at once made a 100-125 s tick; 8 a tick took 3.5-11.9 s there (load 6-10), 5 keep
# a tick to a few seconds.
RUNS_PER_TICK = 5
# Seconds between a period sensor's ticks: the 100 runs of a period take 20 ticks. At 30 s (10
# runs a minute) the runs, once a dunning run over 100 organizations took 13 s, waited for their
# requests: at 10,000 organizations the month-end's 200 runs took 20 minutes to request alone,
# 1.4 times the work done in one process (bench month-end, issue 76). At 15 s a tick (5 runs, 2-3
# s) leaves the daemon's sensor threads room for the intake's ticks.
PERIOD_SENSOR_INTERVAL_SECONDS = 15


def organizations_per_run(organizations: int, at_least: int = ORGANIZATIONS_PER_RUN) -> int:
    """Organizations per run of a period over `organizations` of them: `at_least`, more beyond
    `at_least * MAX_RUNS_PER_PERIOD` so that a period has at most MAX_RUNS_PER_PERIOD runs."""
    return max(at_least, -(-organizations // MAX_RUNS_PER_PERIOD))


def partition_range_tags(first: str, last: str) -> dict[str, str]:
    """Tags of a run request for the partitions from `first` to `last` (keys, inclusive)."""
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}


# Dagster's tags on a run: the user who launched it (Dagster+ only) and what started it by itself
USER_TAG = "dagster/user"
AUTOMATION_TAGS = ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill")
REQUESTED_BY_HELP = (
    "Empty: the user who launched the run (dagster/user tag), else launchpad for a run launched "
    "by hand, dagster for one a schedule, sensor or backfill started."
)


def who_asked(given: str | None, run_tags: Mapping[str, str]) -> str:
    """Who asked for a run, for audit logs: the name its config gives, else the user who launched
    it, else `dagster` when a schedule, sensor or backfill started it and `launchpad` when a
    person did (open-source Dagster names no user)."""
    for name in (given, run_tags.get(USER_TAG)):
        if name and name.strip():
            return name.strip()
    return "dagster" if any(tag in run_tags for tag in AUTOMATION_TAGS) else "launchpad"
