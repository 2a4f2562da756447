"""The exports' month-end: on the 1st at 03:00 (Berlin) the month before is due for every
organization, both directions, the organizations batched into runs over partition ranges that
`monthly_exports_sensor` requests a few a tick (lib/sensors.py `period_runs_sensor`; its
cursor and its rules: lib/periods.py)."""

from datetime import datetime, timedelta

from dagster import MultiPartitionKey, RunRequest

from invoice_pipelines.exports.jobs import export_job
from invoice_pipelines.exports.partitions import MONTH_DIMENSION
from invoice_pipelines.lib.partitions import (
    MAX_RUNS_PER_PERIOD,
    ORGANIZATIONS_PARTITIONS_NAME,
    ORGANIZATIONS_PER_RUN,
    RUNS_PER_TICK,
    partition_range_tags,
)
from invoice_pipelines.lib.periods import Cadence
from invoice_pipelines.lib.sensors import period_runs_sensor
from invoice_pipelines.settings import SCHEDULE_TIMEZONE

MONTH_END = Cadence("0 3 1 * *", SCHEDULE_TIMEZONE)


def previous_month(moment: datetime) -> str:
    first = moment.date().replace(day=1)
    last_month = first - timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


def export_run(tick: datetime, run_key: str, first: str, last: str) -> RunRequest:
    """The export run of the month before `tick` over the organizations `first` to `last`."""
    month = previous_month(tick)

    def key(slug: str) -> str:
        return str(MultiPartitionKey({ORGANIZATIONS_PARTITIONS_NAME: slug, MONTH_DIMENSION: month}))

    return RunRequest(run_key=run_key, tags=partition_range_tags(key(first), key(last)))


def build_monthly_exports_sensor(**overrides):
    """The month-end exports' sensor (`overrides`: the factory's, e.g. a test's clock)."""
    given = dict(
        name="monthly_exports_sensor",
        job=export_job,
        cadence=MONTH_END,
        period=previous_month,
        run_request=export_run,
        organizations_per_run_at_least=ORGANIZATIONS_PER_RUN,
        description="On the 1st at 03:00 (Berlin) the month before is due for every organization, "
        f"both directions: one run per {ORGANIZATIONS_PER_RUN} organizations (more per run "
        f"beyond {ORGANIZATIONS_PER_RUN * MAX_RUNS_PER_PERIOD}: at most {MAX_RUNS_PER_PERIOD} "
        f"runs), {RUNS_PER_TICK} requested a tick. A new deployment starts with the next 1st; "
        'to export a month now, set the cursor to {"tick": "<the 1st after it>T03:00"} '
        "(docs/exports.md).",
    )
    return period_runs_sensor(**{**given, **overrides})


monthly_exports_sensor = build_monthly_exports_sensor()
