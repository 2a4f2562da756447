"""The `organizations` asset: each organization's own partition shows its state (active,
suspended with the reason and since when, offboarded) and its values, as the lifecycle's
launchpad jobs and commands left them (tenants/lifecycle.py). Those jobs record it when they
change an organization; Materialize reads it again."""

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, ResourceParam, asset
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.tenants.listing import show_organization
from invoice_pipelines.tenants.partitions import organizations_partitions

ORGANIZATIONS_ASSET = "organizations"


def organization_metadata(shown: Mapping[str, Any]) -> dict[str, Any]:
    """What a partition of `organizations` records (show_organization's answer)."""
    metadata: dict[str, Any] = {
        "state": MetadataValue.text(shown["state"]),
        "name": MetadataValue.text(shown["name"]),
        "country": MetadataValue.text(shown["country"]),
        "vat_id": MetadataValue.text(shown["vat_id"] or ""),
        "datev": MetadataValue.text(
            f"{shown['datev_berater_nr'] or '-'}/{shown['datev_mandant_nr'] or '-'} "
            f"{shown['datev_chart']}"
        ),
        "invoice_number_format": MetadataValue.text(shown["invoice_number_format"]),
        "uploads_waiting": MetadataValue.int(shown["holds"]["uploads_waiting"]),
    }
    if shown.get("suspension_reason"):
        metadata["suspension_reason"] = MetadataValue.text(shown["suspension_reason"])
        metadata["suspended_at"] = MetadataValue.text(str(shown["suspended_at"]))
        metadata["suspended_by"] = MetadataValue.text(shown.get("suspended_by") or "")
    if shown.get("offboarded_at"):
        metadata["offboarded_at"] = MetadataValue.text(str(shown["offboarded_at"]))
    return metadata


@asset(
    name=ORGANIZATIONS_ASSET,
    partitions_def=organizations_partitions,
    group_name="organizations",
    kinds={"sql"},
    owners=OWNERS,
    description="The organization itself: its state (active; suspended, with the reason, when "
    "sensors, schedules and backfills request nothing for it; offboarded) and its values (name, "
    "VAT id, DATEV numbers and chart, invoice number format). Changed only by "
    "`invoice-pipelines organizations` and the launchpad's organizations_*_job, every change "
    "audited; each of them records the organization's partition here.",
)
def organizations_asset(context: AssetExecutionContext, database: ResourceParam[Engine]):
    shown = show_organization(database, context.partition_key)
    return MaterializeResult(metadata=organization_metadata(shown))
