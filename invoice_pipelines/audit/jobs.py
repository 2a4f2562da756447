"""The carrier's job: `audit_export_job`, what the launchpad and backfills run (one organization
and fiscal year a partition)."""

from dagster import AssetSelection, define_asset_job

from invoice_pipelines.audit.assets import audit_data_carrier

audit_export_job = define_asset_job(
    "audit_export_job",
    selection=AssetSelection.assets(audit_data_carrier),
    description="Writes one organization's fiscal year as a tax-audit data carrier (Z3).",
)
