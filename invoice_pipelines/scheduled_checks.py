"""Asset checks evaluated on a timetable, apart from their assets' runs: the job that selects just
those checks and the schedule that starts it, written once for every area that has such checks
(a checks job with no asset in it: the checks read the database for every organization); and a
check's result as the event a run logs beside a materialization it logs itself."""

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    MetadataValue,
    RunRequest,
    ScheduleDefinition,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    in_process_executor,
    sensor,
)

# every schedule's zone, settings.SCHEDULE_TIMEZONE, written out: settings is a layer above this
# one (test_import_graph.py); test_schedule_timezone.py holds every schedule to it
SCHEDULE_TIMEZONE = "Europe/Berlin"


class ScheduledChecks(NamedTuple):
    job: Any  # what `define_asset_job` gives: resolved against the assets when defs load
    schedule: ScheduleDefinition


def scheduled_checks(
    name: str,
    checks: Sequence[AssetChecksDefinition | AssetCheckKey],
    *,
    cron: str,
    job_description: str,
    schedule_description: str,
) -> ScheduledChecks:
    """`<name>_job`, which evaluates `checks` and nothing else, in the run's process, and
    `<name>_schedule`, which starts it on `cron` (read in SCHEDULE_TIMEZONE, every schedule's
    zone) and is on from the start."""
    job = define_asset_job(
        f"{name}_job",
        selection=AssetSelection.checks(*checks),
        executor_def=in_process_executor,
        description=job_description,
    )
    schedule = ScheduleDefinition(
        name=f"{name}_schedule",
        job=job,
        cron_schedule=cron,
        execution_timezone=SCHEDULE_TIMEZONE,
        default_status=DefaultScheduleStatus.RUNNING,
        description=schedule_description,
    )
    return ScheduledChecks(job, schedule)


FIRST_EVALUATIONS_SENSOR = "checks_first_evaluation_sensor"


def first_evaluations_sensor(jobs: Sequence[Any]) -> SensorDefinition:
    """A sensor that starts each scheduled checks' job once, at the first tick after the job
    appears (a fresh installation, a new area): a fresh demo showed 13 of 25 checks "Not
    evaluated" until their schedules came round, hours later for the daily ones (issue 85). Its
    cursor names the jobs started; a run key per job, so a reset cursor starts none twice."""
    names = sorted(job.name for job in jobs)

    @sensor(
        name=FIRST_EVALUATIONS_SENSOR,
        jobs=list(jobs),
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Starts each scheduled checks' job once when it is new (a fresh "
        f"installation): {', '.join(names)}; after that their schedules evaluate them.",
    )
    def _first_evaluations(context: SensorEvaluationContext):
        started = set(json.loads(context.cursor or "[]"))
        new = [name for name in names if name not in started]
        if not new:
            return SkipReason("every scheduled checks' job has run once; their schedules go on")
        return SensorResult(
            run_requests=[RunRequest(run_key=f"{name}-first", job_name=name) for name in new],
            cursor=json.dumps(sorted(started | set(new))),
        )

    return _first_evaluations


def evaluation(
    result: AssetCheckResult,
    asset_key: AssetKey | str,
    partition: str | None = None,
    check_name: str | None = None,
) -> AssetCheckEvaluation:
    """`result` as an event a run logs (`context.log_event`) or the instance records without a
    run: for a check evaluated outside its own step, beside a materialization logged the same
    way (the UI shows a check as not evaluated on a materialization its run did not check)."""
    return AssetCheckEvaluation(
        asset_key=AssetKey.from_coercible(result.asset_key or asset_key),
        check_name=check_name or result.check_name,
        passed=result.passed,
        severity=result.severity,
        description=result.description,
        metadata=result.metadata,
        partition=partition,
    )


EVALUATED_AT = "evaluated_at"


def latest_or_now(
    instance: DagsterInstance,
    asset_key: str,
    names: Sequence[str],
    evaluate: Callable[[], Iterable[AssetCheckResult]],
) -> list[AssetCheckEvaluation]:
    """Checks over every organization too costly for every run (a daily audit of every invoice),
    for a run that materializes their asset: their latest evaluations, restated on this
    materialization with when they were made (`evaluated_at`, and said in the description), so
    the UI shows what the schedule found instead of "Not evaluated"; never evaluated yet (a new
    installation): `evaluate()` now."""
    keys = [AssetCheckKey(AssetKey(asset_key), name) for name in names]
    records = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    found = [records.get(key) for key in keys]
    # a check planned in a run under way has no evaluation yet: evaluated now then
    if not all(isinstance(r and r.evaluation, AssetCheckEvaluation) for r in found):
        return [evaluation(result, asset_key) for result in evaluate()]
    restated = []
    for record in found:
        was = record.evaluation
        again = EVALUATED_AT in was.metadata  # restated before: keep when it was evaluated
        when = datetime.fromtimestamp(record.event.timestamp, UTC)
        restated.append(
            AssetCheckEvaluation(
                asset_key=was.asset_key,
                check_name=was.check_name,
                passed=was.passed,
                severity=was.severity,
                description=was.description
                if again
                else f"{was.description or ''} (as evaluated {when:%Y-%m-%d %H:%M} UTC)",
                metadata={
                    **was.metadata,
                    **({} if again else {EVALUATED_AT: MetadataValue.timestamp(when)}),
                },
            )
        )
    return restated
