"""Intake area's Dagster definitions, each kind in its module: mailbox_messages -> uploads ->
incoming_invoices (assets.py), the intake, retry, review and notices jobs (jobs.py), the upload,
failure and mailbox sensors (sensors.py), the notices' schedule (schedules.py), the checks and
their five-minute run (checks.py); the supplier register's asset, checks and job among them."""

from dagster import Definitions

from invoice_pipelines.intake.assets import (
    incoming_invoices,
    mailbox_messages,
    supplier_register,
    uploads,
)
from invoice_pipelines.intake.checks import (
    discounts_not_expiring,
    incoming_invoices_checks_job,
    incoming_invoices_checks_schedule,
    mailbox_fresh,
    no_stuck_documents,
)
from invoice_pipelines.intake.jobs import (
    change_supplier_register_job,
    confirm_supplier_job,
    intake_job,
    retry_failed_invoices_job,
    review_incoming_invoice_job,
    supplier_notices_job,
)
from invoice_pipelines.intake.schedules import supplier_notices_schedule
from invoice_pipelines.intake.sensors import intake_failure_sensor, mailbox_sensor, upload_sensor

defs = Definitions(
    assets=[mailbox_messages, uploads, incoming_invoices, supplier_register],
    asset_checks=[no_stuck_documents, discounts_not_expiring, mailbox_fresh],
    jobs=[
        intake_job,
        retry_failed_invoices_job,
        incoming_invoices_checks_job,
        review_incoming_invoice_job,
        supplier_notices_job,
        change_supplier_register_job,
        confirm_supplier_job,
    ],
    sensors=[upload_sensor, intake_failure_sensor, mailbox_sensor],
    schedules=[incoming_invoices_checks_schedule, supplier_notices_schedule],
)
