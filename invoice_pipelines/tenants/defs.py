"""Tenants' Dagster definitions: `organizations_sensor`, which keeps the organizations' partitions
in step with the organizations table (sensors.py), the `organizations` asset (assets.py) and the
lifecycle's launchpad jobs (jobs.py)."""

from dagster import Definitions

from invoice_pipelines.tenants.assets import organizations_asset
from invoice_pipelines.tenants.jobs import (
    organizations_add_job,
    organizations_change_job,
    organizations_offboard_job,
    organizations_resume_job,
    organizations_suspend_job,
)
from invoice_pipelines.tenants.sensors import organizations_sensor

defs = Definitions(
    assets=[organizations_asset],
    jobs=[
        organizations_add_job,
        organizations_change_job,
        organizations_suspend_job,
        organizations_resume_job,
        organizations_offboard_job,
    ],
    sensors=[organizations_sensor],
)
