"""The intake's schedules: the supplier notices' every five minutes (the checks' schedule is in
checks.py)."""

from dagster import DefaultScheduleStatus, ScheduleDefinition

from invoice_pipelines.intake.jobs import supplier_notices_job
from invoice_pipelines.settings import SCHEDULE_TIMEZONE

supplier_notices_schedule = ScheduleDefinition(
    name="supplier_notices_schedule",
    job=supplier_notices_job,
    cron_schedule="*/5 * * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: the notices of documents the intake rejected, each sent once.",
)
