"""Asset checks evaluated on a timetable, apart from their assets' runs: the job that selects just
those checks and the schedule that starts it, written once for every area that has such checks
(a checks job with no asset in it: the checks read the database for every organization); and a
check's result as the event a run logs beside a materialization it logs itself."""

from collections.abc import Sequence
from typing import Any, NamedTuple

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    ScheduleDefinition,
    define_asset_job,
    in_process_executor,
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
