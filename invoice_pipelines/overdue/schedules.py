"""Dunning's schedule: INVOICE_PIPELINES_DUNNING_* settings (overdue/domain/scheduling.py), by default
daily at 00:00 Europe/Berlin (settings.SCHEDULE_TIMEZONE, every schedule's zone). It launches one
run of `dunning_job` per INVOICE_PIPELINES_DUNNING_BATCH_SIZE organizations (a partition range,
run key `<tick>-batch-<n>`; more per run beyond 100 runs, as the monthly exports cut them, so that
on the 1st both schedules' runs of an organization share its slot), each passing the tick's
instant so every organization notices as of its own local day."""

from datetime import UTC, datetime

from dagster import (
    DefaultScheduleStatus,
    ResourceParam,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)
from sqlalchemy import Engine

from invoice_pipelines.overdue.assets import ASSET
from invoice_pipelines.overdue.domain.scheduling import ScheduleSettings, schedule_settings
from invoice_pipelines.overdue.jobs import dunning_job
from invoice_pipelines.tenants.domain.automation import automatic_organizations
from invoice_pipelines.tenants.partitions import (
    MAX_RUNS_PER_TICK,
    organizations_per_run,
    partition_range_tags,
)

# read when the code location loads: a bad INVOICE_PIPELINES_DUNNING_* value (or old SCHEDULER_*
# one) stops the load with its name
SCHEDULE = schedule_settings()


def build_dunning_schedule(settings: ScheduleSettings) -> ScheduleDefinition:
    every = (
        f"every {settings.interval_hours} hours"
        if settings.interval_hours
        else f"on cron '{settings.cron}' ({settings.timezone})"
    )

    @schedule(
        name="dunning_schedule",
        cron_schedule=settings.cron,
        execution_timezone=settings.timezone,
        job=dunning_job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Notices overdue invoices {every} (INVOICE_PIPELINES_DUNNING_* settings): "
        f"one run per {settings.batch_size} organizations (more per run beyond "
        f"{settings.batch_size * MAX_RUNS_PER_TICK}: at most {MAX_RUNS_PER_TICK} runs). Missed "
        "ticks need no catch-up: each "
        "run notices every invoice at the highest level due.",
    )
    def dunning_schedule(context: ScheduleEvaluationContext, database: ResourceParam[Engine]):
        moment = context.scheduled_execution_time or datetime.now(UTC)
        if not settings.runs_at(moment):
            return SkipReason(f"Not an {settings.interval_hours}-hour tick.")
        # ranges of consecutive partitions, none suspended (tenants/domain/automation.py)
        automatic = automatic_organizations(context.instance, database)
        if not automatic.working:
            return SkipReason("No organizations yet" + (automatic.note() or "."))
        if automatic.suspended:
            context.log.info(automatic.note().removeprefix("; "))
        tick = moment.astimezone(UTC)
        requests = []
        # as the monthly exports cut them (tenants/partitions.py): on the 1st an organization's
        # export run and dunning run cover the same span and share its slot, one at a time
        per_run = organizations_per_run(len(automatic.working), settings.batch_size)
        for number, batch in enumerate(automatic.ranges(per_run)):
            requests.append(
                RunRequest(
                    run_key=f"{tick:%Y-%m-%dT%H:%M}-batch-{number}",
                    run_config={"ops": {ASSET: {"config": {"as_of": tick.isoformat()}}}},
                    tags=partition_range_tags(batch[0], batch[-1]),
                )
            )
        return requests

    return dunning_schedule


dunning_schedule = build_dunning_schedule(SCHEDULE)
