"""The documents area's job: `documents_job` materializes one organization's
sales_invoice_documents."""

from dagster import AssetSelection, define_asset_job

from invoice_pipelines.documents.assets import sales_invoice_documents_asset

documents_job = define_asset_job(
    "documents_job",
    selection=AssetSelection.assets(sales_invoice_documents_asset),
    description="Writes the documents of one organization's sales invoices (Factur-X PDF, "
    "XRechnung XML).",
)
