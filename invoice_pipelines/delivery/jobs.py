"""The delivery area's jobs: `send_invoices_job` and `send_text_messages_job`, each over its asset."""

from dagster import AssetSelection, define_asset_job

from invoice_pipelines.delivery.assets import invoice_emails, invoice_text_messages

send_invoices_job = define_asset_job(
    "send_invoices_job",
    selection=AssetSelection.assets(invoice_emails),
    description="E-mails one organization's invoices that have documents and were never sent.",
)

send_text_messages_job = define_asset_job(
    "send_text_messages_job",
    selection=AssetSelection.assets(invoice_text_messages),
    description="Announces one organization's invoices by SMS or WhatsApp (config: channel).",
)
