"""Exports area's Dagster definitions, each kind in its module: incoming_invoice_exports and
sales_invoice_exports per organization and month (assets.py, partitions.py), `export_job` and
the launchpad's corrections (jobs.py), the month-end's exports (sensors.py)."""

from dagster import Definitions

from invoice_pipelines.exports.assets import incoming_invoice_exports, sales_invoice_exports
from invoice_pipelines.exports.jobs import export_job, reopen_exported_invoices_job
from invoice_pipelines.exports.sensors import monthly_exports_sensor

defs = Definitions(
    assets=[incoming_invoice_exports, sales_invoice_exports],
    jobs=[export_job, reopen_exported_invoices_job],
    sensors=[monthly_exports_sensor],
)
