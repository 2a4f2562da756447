"""Housekeeping's schedules, each daily at a quiet hour (Europe/Berlin): archive retention at
02:30 in runs of ORGANIZATIONS_PER_RUN organizations, Dagster run retention at 02:15."""

from datetime import UTC, datetime

from dagster import (
    DefaultScheduleStatus,
    ResourceParam,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import organization_slugs, suspended_organizations
from invoice_pipelines.housekeeping.jobs import (
    DEFAULT_KEEP_DAYS,
    archive_retention_job,
    dagster_run_retention_job,
)
from invoice_pipelines.settings import SCHEDULE_TIMEZONE

TIMEZONE = SCHEDULE_TIMEZONE  # Europe/Berlin, every schedule's
# the work per organization is two queries and the files that are due; most days nothing is due
ORGANIZATIONS_PER_RUN = 500


def organization_batches(slugs: list[str], size: int = ORGANIZATIONS_PER_RUN) -> list[list[str]]:
    return [slugs[i : i + size] for i in range(0, len(slugs), size)]


@schedule(
    name="archive_retention_schedule",
    cron_schedule="30 2 * * *",
    execution_timezone=TIMEZONE,
    job=archive_retention_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Daily at 02:30 (Berlin): archive retention for every organization, "
    f"{ORGANIZATIONS_PER_RUN} organizations per run, the suspended ones left out. Removes "
    "nothing younger than the legal 10 years, so it is safe to leave running.",
)
def archive_retention_schedule(
    context: ScheduleEvaluationContext, system_database: ResourceParam[Engine]
):
    every = organization_slugs(system_database)
    # a suspended organization's files are left as they are until it is resumed
    suspended = suspended_organizations(system_database)
    slugs = [slug for slug in every if slug not in suspended]
    note = "; ".join(f"{slug} ({suspended[slug]})" for slug in every if slug in suspended)
    if note:
        context.log.info(f"suspended, nothing requested: {note}")
    if not slugs:
        return SkipReason(
            "No organizations yet." if not every else f"Suspended, nothing requested: {note}."
        )
    day = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%d")
    return [
        RunRequest(
            run_key=f"{day}-batch-{number}",
            run_config={"ops": {"purge_archived_files": {"config": {"organizations": batch}}}},
            tags={"invoice_pipelines/housekeeping": "archive_retention"},
        )
        for number, batch in enumerate(organization_batches(slugs))
    ]


@schedule(
    name="dagster_run_retention_schedule",
    cron_schedule="15 2 * * *",
    execution_timezone=TIMEZONE,
    job=dagster_run_retention_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description=f"Daily at 02:15 (Berlin): deletes finished runs older than {DEFAULT_KEEP_DAYS} "
    "days with their event logs, keeping each job's last successful run.",
)
def dagster_run_retention_schedule(context: ScheduleEvaluationContext):
    day = (context.scheduled_execution_time or datetime.now(UTC)).strftime("%Y-%m-%d")
    return RunRequest(run_key=day)
