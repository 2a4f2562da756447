"""Overdue area's Dagster definitions, each kind in its module: receivables -> dunning_notices
(assets.py), the notices' and the block's jobs (jobs.py), the dunning sensor (sensors.py),
the freshness check and its hourly run (checks.py)."""

from dagster import Definitions

from invoice_pipelines.overdue.assets import dunning_notices, receivables
from invoice_pipelines.overdue.checks import (
    dunning_checks_job,
    dunning_checks_schedule,
    last_run_fresh,
)
from invoice_pipelines.overdue.jobs import dunning_block_job, dunning_job
from invoice_pipelines.overdue.sensors import dunning_sensor

defs = Definitions(
    assets=[receivables, dunning_notices],
    asset_checks=[last_run_fresh],
    jobs=[dunning_job, dunning_checks_job, dunning_block_job],
    schedules=[dunning_checks_schedule],
    sensors=[dunning_sensor],
)
