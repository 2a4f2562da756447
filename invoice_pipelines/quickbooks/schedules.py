"""QuickBooks' daily syncs (issue 13): one schedule an entity with a daily hour, at that hour of
each organization's timezone, the due organizations batched into runs over partition ranges.
The checks' daily schedule is in checks.py, beside the checks it runs."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dagster import (
    DefaultScheduleStatus,
    ResourceParam,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from sqlalchemy import Engine

from invoice_pipelines.core.qbo_entities import SYNCED, QboEntity
from invoice_pipelines.lib.automation import automatic_organizations
from invoice_pipelines.lib.partitions import partition_range_tags
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.quickbooks.assets import ORGANIZATIONS_PER_RUN
from invoice_pipelines.quickbooks.domain.watch import connected_organizations
from invoice_pipelines.quickbooks.jobs import SYNC_JOBS
from invoice_pipelines.settings import SCHEDULE_TIMEZONE


def due_batches(
    slugs_in_order: list[str], due: set[str], per_run: int = ORGANIZATIONS_PER_RUN
) -> list[list[str]]:
    """The due organizations in partition order, `per_run` to a batch (a range per run)."""
    ordered = [s for s in slugs_in_order if s in due]
    return [ordered[i : i + per_run] for i in range(0, len(ordered), per_run)]


def _local_hour(moment: datetime, timezone: str) -> int:
    try:
        return moment.astimezone(ZoneInfo(timezone)).hour
    except (KeyError, ValueError):
        return moment.astimezone(UTC).hour


def _daily_schedule(entity: QboEntity):
    asset_name, hour, job = entity.asset, entity.daily_hour, SYNC_JOBS[entity.sync]

    @schedule(
        name=f"{asset_name}_schedule",
        cron_schedule="0 * * * *",
        # any zone ticks on the hour; each organization's own zone picks its hour
        execution_timezone=SCHEDULE_TIMEZONE,
        job=job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Hourly: runs {asset_name} for the organizations whose local time is "
        f"{hour:02d}:00 (their timezone), {ORGANIZATIONS_PER_RUN} organizations per run.",
    )
    def _daily(context: ScheduleEvaluationContext, system_database: ResourceParam[Engine]):
        moment = context.scheduled_execution_time or datetime.now(UTC)
        due = {
            slug
            for slug, tz in connected_organizations(system_database)
            if _local_hour(moment, tz) == hour
        }
        # the suspended organizations wait (lib/automation.py)
        automatic = automatic_organizations(context.instance, system_database)
        batches = due_batches(automatic.working, due)
        if not batches:
            return SkipReason(
                f"No connected organization has {hour:02d}:00 now" + (automatic.note(due) or ".")
            )
        stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H")
        return [
            RunRequest(
                run_key=f"{asset_name}-{stamp}-batch-{number}",
                run_config={"ops": {asset_name: {"config": {"organizations": batch}}}},
                tags={**partition_range_tags(batch[0], batch[-1]), **BULK_RUN_TAGS},
            )
            for number, batch in enumerate(batches)
        ]

    return _daily


# the daily syncs (issue 13), each at its local hour: payments 02:00, customers 03:00, items 04:00
DAILY_SCHEDULES = {
    entity.sync: _daily_schedule(entity) for entity in SYNCED if entity.daily_hour is not None
}
