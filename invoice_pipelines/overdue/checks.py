"""Dunning's check, `last_run_fresh` (is the schedule still running?), and `dunning_checks_job` /
`dunning_checks_schedule`, which evaluate it every hour."""

from datetime import UTC, datetime

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    MetadataValue,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import first_organization_added
from invoice_pipelines.overdue.assets import ASSET
from invoice_pipelines.overdue.domain.pipeline import last_successful_run
from invoice_pipelines.overdue.domain.scheduling import ScheduleSettings
from invoice_pipelines.overdue.sensors import SCHEDULE
from invoice_pipelines.scheduled_checks import scheduled_checks


def freshness(
    last: datetime | None,
    now: datetime,
    settings: ScheduleSettings,
    since: datetime | None = None,
) -> AssetCheckResult:
    """`last`: when the last successful overdue run ended; `since`: when the first organization
    was added (no run was due before it, nor within two periods after: a fresh installation is
    not late)."""
    limit = 2 * settings.period()
    if last is None:
        young = since is not None and now - since <= limit
        return AssetCheckResult(
            passed=young,
            severity=AssetCheckSeverity.WARN,
            description=(
                "No overdue run has ended yet, and none is late: the first organization was "
                f"added {now - since} ago, within two schedule periods ({limit})."
                if young
                else "No successful overdue run is recorded yet"
                + (f", and the first organization was added {now - since} ago." if since else ".")
            ),
            metadata={"limit_hours": MetadataValue.float(limit.total_seconds() / 3600)},
        )
    age = now - last
    return AssetCheckResult(
        passed=age <= limit,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"The last successful run ended {age} ago"
            + (" (within two schedule periods)." if age <= limit else f", more than {limit}.")
        ),
        metadata={
            "last_success": MetadataValue.text(last.isoformat()),
            "age_hours": MetadataValue.float(round(age.total_seconds() / 3600, 2)),
            "limit_hours": MetadataValue.float(limit.total_seconds() / 3600),
        },
    )


@asset_check(
    asset=ASSET,
    name="last_run_fresh",
    description="Warns when the last successful (or partly successful) overdue run of any "
    "organization ended more than two schedule periods ago: the schedule is off or failing. "
    "Before the first run, passes for two periods after the first organization was added "
    "(nothing was due yet).",
)
def last_run_fresh(system_database: ResourceParam[Engine]) -> AssetCheckResult:
    return freshness(
        last_successful_run(system_database),
        datetime.now(UTC),
        SCHEDULE,
        since=first_organization_added(system_database),
    )


dunning_checks_job, dunning_checks_schedule = scheduled_checks(
    "dunning_checks",
    [last_run_fresh],
    cron="30 * * * *",
    job_description="Runs the freshness check of dunning_notices.",
    schedule_description="Every hour: is the overdue schedule still running?",
)
