"""Delivery area's Dagster definitions: invoice_emails, invoice_text_messages and the `peppol`
group (assets.py), the jobs that send them (jobs.py), and the Peppol checks with their job and
schedule (checks.py)."""

from dagster import Definitions

from invoice_pipelines.delivery.assets import (
    invoice_emails,
    invoice_text_messages,
    peppol_monthly_report,
    peppol_participants,
    peppol_received_documents,
    peppol_sent_documents,
)
from invoice_pipelines.delivery.checks import (
    peppol_audit,
    peppol_checks_job,
    peppol_checks_schedule,
)
from invoice_pipelines.delivery.jobs import send_invoices_job, send_text_messages_job

defs = Definitions(
    assets=[
        invoice_emails,
        invoice_text_messages,
        peppol_participants,
        peppol_sent_documents,
        peppol_received_documents,
        peppol_monthly_report,
    ],
    asset_checks=[peppol_audit],
    jobs=[send_invoices_job, send_text_messages_job, peppol_checks_job],
    schedules=[peppol_checks_schedule],
)
