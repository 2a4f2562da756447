"""The queue's schedule: `fail_stuck_batch_jobs_schedule`, every 10 minutes."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from invoice_pipelines.queue.dagster_jobs import fail_stuck_batch_jobs_job
from invoice_pipelines.settings import SCHEDULE_TIMEZONE

fail_stuck_batch_jobs_schedule = ScheduleDefinition(
    name="fail_stuck_batch_jobs_schedule",
    job=fail_stuck_batch_jobs_job,
    cron_schedule="*/10 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 10 minutes: fail batch jobs without progress for 30 minutes (configurable).",
)
