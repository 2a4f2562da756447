"""The audit area's Dagster definitions: the data carrier per organization and fiscal year
(assets.py, partitions.py), its job (jobs.py), and the archive check with its job and schedule
(checks.py)."""

from dagster import Definitions

from invoice_pipelines.audit.assets import audit_data_carrier
from invoice_pipelines.audit.checks import (
    archive_checks_job,
    archive_checks_schedule,
    archive_unchanged,
)
from invoice_pipelines.audit.jobs import audit_export_job

defs = Definitions(
    assets=[audit_data_carrier],
    asset_checks=[archive_unchanged],
    jobs=[audit_export_job, archive_checks_job],
    schedules=[archive_checks_schedule],
)
