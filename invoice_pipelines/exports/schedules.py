"""The exports' schedule: on the 1st of every month, the month before for every organization,
both directions, the organizations batched into runs over partition ranges."""

from datetime import UTC, datetime, timedelta

from dagster import (
    DefaultScheduleStatus,
    MultiPartitionKey,
    ResourceParam,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from sqlalchemy import Engine

from invoice_pipelines.exports.jobs import export_job
from invoice_pipelines.exports.partitions import MONTH_DIMENSION
from invoice_pipelines.settings import SCHEDULE_TIMEZONE
from invoice_pipelines.tenants.domain.automation import automatic_organizations
from invoice_pipelines.tenants.partitions import (
    MAX_RUNS_PER_TICK,
    ORGANIZATIONS_PARTITIONS_NAME,
    ORGANIZATIONS_PER_RUN,
    organizations_per_run,
    partition_range_tags,
)


def previous_month(moment: datetime) -> str:
    first = moment.date().replace(day=1)
    last_month = first - timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


@schedule(
    name="monthly_exports_schedule",
    cron_schedule="0 3 1 * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    job=export_job,
    default_status=DefaultScheduleStatus.RUNNING,
    description="On the 1st at 03:00 (Berlin), exports the month before for every organization, "
    f"both directions: one run per {ORGANIZATIONS_PER_RUN} organizations (more per run beyond "
    f"{ORGANIZATIONS_PER_RUN * MAX_RUNS_PER_TICK} organizations: at most {MAX_RUNS_PER_TICK} runs).",
)
def monthly_exports_schedule(context: ScheduleEvaluationContext, database: ResourceParam[Engine]):
    period = previous_month(context.scheduled_execution_time or datetime.now(UTC))
    # in the instance's order: a range of the multi-partition covers consecutive organizations,
    # none suspended (tenants/domain/automation.py)
    automatic = automatic_organizations(context.instance, database)
    slugs = automatic.working
    if not slugs:
        return SkipReason("No organizations yet" + (automatic.note() or "."))
    if automatic.suspended:
        context.log.info(automatic.note().removeprefix("; "))

    def key(slug: str) -> str:
        return str(
            MultiPartitionKey({ORGANIZATIONS_PARTITIONS_NAME: slug, MONTH_DIMENSION: period})
        )

    requests = []
    # the dunning schedule cuts them the same way (tenants/partitions.py)
    per_run = organizations_per_run(len(slugs), ORGANIZATIONS_PER_RUN)
    for number, batch in enumerate(automatic.ranges(per_run)):
        requests.append(
            RunRequest(
                run_key=f"{period}-batch-{number}",
                tags=partition_range_tags(key(batch[0]), key(batch[-1])),
            )
        )
    return requests
