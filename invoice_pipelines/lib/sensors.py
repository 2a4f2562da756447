"""The sensor that requests a period's runs over every working organization a few a tick (issue
76): the month-end's exports and the dunning each make theirs with `period_runs_sensor`; the
cursor and its rules are lib/periods.py, the organizations it leaves out lib/automation.py."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    JobDefinition,
    ResourceParam,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.lib.automation import automatic_organizations
from invoice_pipelines.lib.partitions import (
    PERIOD_SENSOR_INTERVAL_SECONDS,
    RUNS_PER_TICK,
    organizations_per_run,
)
from invoice_pipelines.lib.periods import Cadence, Chunk, Progress, step


def period_runs_sensor(
    *,
    name: str,
    job: JobDefinition,
    cadence: Cadence,
    period: Callable[[datetime], str],
    run_request: Callable[[datetime, str, str, str], RunRequest],
    organizations_per_run_at_least: int,
    description: str,
    runs_per_tick: int = RUNS_PER_TICK,
    minimum_interval_seconds: int = PERIOD_SENSOR_INTERVAL_SECONDS,
    clock: Callable[[], datetime] | None = None,
) -> SensorDefinition:
    """A sensor that requests each due period's runs over every working organization, at most
    `runs_per_tick` a tick (lib/periods.py: the cursor and its rules).

    `cadence` says when a period is due, `period(tick)` names it ("2026-10"), and
    `run_request(tick, run_key, first, last)` is the run over the organizations `first` to `last`
    (partition keys, inclusive; the key is `<period>-batch-<n>`). A period is cut as the
    schedules cut it: ranges of consecutive partitions without a suspended organization
    (lib/automation.py), `organizations_per_run(...)` organizations each, so two such
    sensors' runs over an organization share its slot."""

    def describe(tick: datetime) -> str:
        return f"{period(tick)} (due {tick:%Y-%m-%d %H:%M %Z})"

    @sensor(
        name=name,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
        now = clock() if clock is not None else datetime.now(UTC)
        try:
            progress = Progress.read(context.cursor, cadence)
        except ValueError as exc:  # a cursor a person typed wrong: kept, and what to write
            return SensorResult(skip_reason=str(exc), cursor=context.cursor)
        notes: list[str] = []

        def plan(tick: datetime) -> list[Chunk]:
            automatic = automatic_organizations(context.instance, system_database)
            if automatic.suspended:
                notes.append(automatic.note().removeprefix("; "))
            if not automatic.working:
                notes.append("no organizations yet")
            per_run = organizations_per_run(len(automatic.working), organizations_per_run_at_least)
            return [(batch[0], batch[-1]) for batch in automatic.ranges(per_run)]

        done = step(progress, cadence.due(now), plan, runs_per_tick)
        cursor, tick = done.progress, done.progress.tick
        later = f"next: {describe(cadence.after(cursor.latest))}" if cursor.latest else ""
        if done.fresh:
            message = (
                f"first tick: {describe(cursor.latest)} taken as done, as a new schedule skips "
                "the ticks before it; to request it, set this sensor's cursor to "
                f'{{"tick": "{cursor.latest:%Y-%m-%dT%H:%M}"}}; {later}'
            )
            return SensorResult(skip_reason=message, cursor=cursor.write())
        if tick is None:  # nothing requested since the first tick
            message = f"nothing due since this sensor's first tick; {later}"
            return SensorResult(skip_reason=message, cursor=cursor.write())
        message = f"{period(tick)}: {cursor.requested} of {cursor.runs} runs requested"
        message += "".join(f"; {note}" for note in notes)
        if not done.chunks:
            return SensorResult(skip_reason=f"{message}; {later}", cursor=cursor.write())
        context.log.info(message)
        label = period(tick)
        requests = [
            run_request(tick, f"{label}-batch-{number}", first, last)
            for number, first, last in done.chunks
        ]
        return SensorResult(run_requests=requests, cursor=cursor.write())

    return _sensor
