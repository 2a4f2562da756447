"""History area's Dagster definitions: the launchpad's `history_import_job` (jobs.py)."""

from dagster import Definitions

from invoice_pipelines.history.jobs import history_import_job

defs = Definitions(jobs=[history_import_job])
