"""The `organizations` asset: each organization's own partition shows its state (active,
suspended with the reason and since when, offboarded) and its values, as the lifecycle's
launchpad jobs and commands left them (tenants/domain/lifecycle.py). Those jobs record it when they
change an organization; Materialize reads it again."""

from dagster import AssetExecutionContext, MaterializeResult, ResourceParam, asset
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.tenants.domain.listing import organization_facts, show_organization
from invoice_pipelines.tenants.partitions import organizations_partitions
from invoice_pipelines.tenants.refusals import partition_organization

ORGANIZATIONS_ASSET = "organizations"


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
def organizations_asset(context: AssetExecutionContext, system_database: ResourceParam[Engine]):
    # the partition's organization, found once (refused when its partition outlived it)
    system = system_database
    shown = show_organization(system, partition_organization(system, context, offboarded=True))
    return MaterializeResult(metadata=organization_facts(shown))
