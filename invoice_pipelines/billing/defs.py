"""Billing area's Dagster definitions, each kind in its module: sales_orders -> sales_invoices
(assets.py), their checks and the daily audit (checks.py), `batch_invoicing_job` and
`credit_note_job` (jobs.py). Its queue kinds (billing/area.py: invoicing, run by
`batch_invoicing_job`; credit notes) are gathered with every area's by `areas.kinds()`, which the
queue is built from: its sensors launch them."""

from dagster import Definitions

from invoice_pipelines.billing.assets import sales_invoices, sales_orders
from invoice_pipelines.billing.checks import (
    sales_invoices_audit,
    sales_invoices_checks_job,
    sales_invoices_checks_schedule,
)
from invoice_pipelines.billing.jobs import batch_invoicing_job, credit_note_job

defs = Definitions(
    assets=[sales_orders, sales_invoices],
    asset_checks=[sales_invoices_audit],
    jobs=[batch_invoicing_job, sales_invoices_checks_job, credit_note_job],
    schedules=[sales_invoices_checks_schedule],
)
