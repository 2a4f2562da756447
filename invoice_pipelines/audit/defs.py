"""The audit area's Dagster definitions: the data carrier per organization and fiscal year
(assets.py, partitions.py) and its job (jobs.py)."""

from dagster import Definitions

from invoice_pipelines.audit.assets import audit_data_carrier
from invoice_pipelines.audit.jobs import audit_export_job

defs = Definitions(assets=[audit_data_carrier], jobs=[audit_export_job])
