"""Dunning's sensor: INVOICE_PIPELINES_DUNNING_* settings (overdue/domain/scheduling.py) say when a
dunning is due, by default daily at 00:00 Europe/Berlin (settings.SCHEDULE_TIMEZONE, every
schedule's zone). `dunning_sensor` requests its runs of `dunning_job`, one per
INVOICE_PIPELINES_DUNNING_BATCH_SIZE organizations (a partition range, run key
`<tick>-batch-<n>`; more per run beyond 100 runs, as the monthly exports cut them, so that on the
1st both sensors' runs of an organization share its slot), a few a tick (lib/sensors.py
`period_runs_sensor`), each passing the due tick's instant so every organization notices as of
its own local day."""

from datetime import UTC, datetime

from dagster import RunRequest, SensorDefinition

from invoice_pipelines.lib.partitions import (
    MAX_RUNS_PER_PERIOD,
    RUNS_PER_TICK,
    partition_range_tags,
)
from invoice_pipelines.lib.periods import Cadence
from invoice_pipelines.lib.sensors import period_runs_sensor
from invoice_pipelines.overdue.assets import ASSET
from invoice_pipelines.overdue.domain.scheduling import ScheduleSettings, schedule_settings
from invoice_pipelines.overdue.jobs import dunning_job

# read when the code location loads: a bad INVOICE_PIPELINES_DUNNING_* value (or old SCHEDULER_*
# one) stops the load with its name
SCHEDULE = schedule_settings()


def tick_label(tick: datetime) -> str:
    """A dunning tick's name in run keys and messages: its instant in UTC to the minute."""
    return f"{tick.astimezone(UTC):%Y-%m-%dT%H:%M}"


def dunning_run(tick: datetime, run_key: str, first: str, last: str) -> RunRequest:
    """The dunning run as of `tick` over the organizations `first` to `last`."""
    as_of = tick.astimezone(UTC).isoformat()
    return RunRequest(
        run_key=run_key,
        run_config={"ops": {ASSET: {"config": {"as_of": as_of}}}},
        tags=partition_range_tags(first, last),
    )


def dunning_cadence(settings: ScheduleSettings) -> Cadence:
    """When a dunning is due: the settings' cron in their timezone, on the hours that count."""
    return Cadence(settings.cron, settings.timezone, settings.runs_at)


def build_dunning_sensor(settings: ScheduleSettings, **overrides) -> SensorDefinition:
    """The dunning's sensor for `settings` (`overrides`: the factory's, e.g. a test's clock)."""
    every = (
        f"every {settings.interval_hours} hours"
        if settings.interval_hours
        else f"on cron '{settings.cron}' ({settings.timezone})"
    )
    given = dict(
        name="dunning_sensor",
        job=dunning_job,
        cadence=dunning_cadence(settings),
        period=tick_label,
        run_request=dunning_run,
        organizations_per_run_at_least=settings.batch_size,
        description=f"Notices overdue invoices {every} (INVOICE_PIPELINES_DUNNING_* settings): "
        f"one run per {settings.batch_size} organizations (more per run beyond "
        f"{settings.batch_size * MAX_RUNS_PER_PERIOD}: at most {MAX_RUNS_PER_PERIOD} runs), "
        f"{RUNS_PER_TICK} requested a tick. Missed ticks need no catch-up: each run notices "
        "every invoice at the highest level due (docs/dunning.md).",
    )
    return period_runs_sensor(**{**given, **overrides})


dunning_sensor = build_dunning_sensor(SCHEDULE)
