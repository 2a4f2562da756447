"""QuickBooks Online area's Dagster definitions, each kind in its module: the entities' assets
(assets.py), the checks and their daily run (checks.py), the sync jobs and the launchpad's jobs
(jobs.py), the daily syncs in each organization's timezone (schedules.py), the push and webhook
sensors (sensors.py)."""

from dagster import Definitions

from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.checks import (
    qbo_bill_amounts_check,
    qbo_bills_waiting_check,
    qbo_checks_job,
    qbo_checks_schedule,
    qbo_company_check,
    qbo_tokens_check,
)
from invoice_pipelines.quickbooks.jobs import (
    SYNC_JOBS,
    qbo_push_bills_job,
    qbo_resolve_conflict_job,
)
from invoice_pipelines.quickbooks.schedules import DAILY_SCHEDULES
from invoice_pipelines.quickbooks.sensors import (
    qbo_bill_push_sensor,
    qbo_push_sensor,
    qbo_webhook_sensor,
)

defs = Definitions(
    assets=list(SYNC_ASSETS.values()),
    asset_checks=[
        qbo_tokens_check,
        qbo_company_check,
        qbo_bills_waiting_check,
        qbo_bill_amounts_check,
    ],
    jobs=[*SYNC_JOBS.values(), qbo_checks_job, qbo_resolve_conflict_job, qbo_push_bills_job],
    schedules=[*DAILY_SCHEDULES.values(), qbo_checks_schedule],
    sensors=[qbo_push_sensor, qbo_bill_push_sensor, qbo_webhook_sensor],
)
