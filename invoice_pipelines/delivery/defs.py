"""Delivery area's Dagster definitions: invoice_emails and invoice_text_messages (assets.py), the
jobs that send them (jobs.py), and the `peppol` group (peppol_defs.py)."""

from dagster import Definitions

from invoice_pipelines.delivery.assets import invoice_emails, invoice_text_messages
from invoice_pipelines.delivery.jobs import send_invoices_job, send_text_messages_job
from invoice_pipelines.delivery.peppol_defs import defs as peppol_defs

defs = Definitions.merge(
    Definitions(
        assets=[invoice_emails, invoice_text_messages],
        jobs=[send_invoices_job, send_text_messages_job],
    ),
    # the `peppol` group: participants, documents sent and received, checks, monthly report
    peppol_defs,
)
