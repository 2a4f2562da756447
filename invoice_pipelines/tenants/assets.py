"""The `organizations` asset: each organization's own partition shows its state (active,
suspended with the reason and since when, offboarded) and its values, as the lifecycle's
launchpad jobs and commands left them (tenants/domain/lifecycle.py). Those jobs record it when they
change an organization; Materialize reads it again."""

import warnings

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    PreviewWarning,
    ResourceParam,
    asset,
)
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.lib.asset_metadata import check_result
from invoice_pipelines.lib.partitions import organizations_partitions
from invoice_pipelines.lib.refusals import partition_organization
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.tenants.domain.listing import (
    HELD_CHECK,
    READY_CHECK,
    organization_facts,
    organization_findings,
    show_organization,
)

ORGANIZATIONS_ASSET = "organizations"

# a check per organization, partitioned like its asset: a partitions_def on a check is a preview
# in Dagster 1.13, whose warning would be printed into every process that loads the code
with warnings.catch_warnings():
    warnings.simplefilter("ignore", PreviewWarning)
    READY = AssetCheckSpec(
        READY_CHECK,
        asset=ORGANIZATIONS_ASSET,
        partitions_def=organizations_partitions,
        description="Warns, for each organization, of a setting it was added without and what "
        "waits for it (no DATEV numbers: its months are held from the DATEV exports); "
        "`organizations show` says the same.",
    )
    HELD = AssetCheckSpec(
        HELD_CHECK,
        asset=ORGANIZATIONS_ASSET,
        partitions_def=organizations_partitions,
        description="Warns, for each organization, while files wait in its drop zone that "
        "nothing reads because it is suspended (or offboarded), with the count and the reason; "
        "`organizations show`, the asset's uploads_waiting and `incoming uploads` say the same.",
    )


@asset(
    name=ORGANIZATIONS_ASSET,
    partitions_def=organizations_partitions,
    group_name="organizations",
    kinds={"sql"},
    owners=OWNERS,
    check_specs=[READY, HELD],
    description="The organization itself: its state (active; suspended, with the reason, when "
    "sensors, schedules and backfills request nothing for it; offboarded) and its values (name, "
    "VAT id, DATEV numbers and chart, invoice number format). Changed only by "
    "`invoice-pipelines organizations` and the launchpad's organizations_*_job, every change "
    "audited; each of them records the organization's partition here.",
)
def organizations_asset(
    context: AssetExecutionContext,
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
):
    # the partition's organization, found once (refused when its partition outlived it)
    system = system_database
    org = partition_organization(system, context, offboarded=True)
    shown = show_organization(system, org, upload_store)
    return MaterializeResult(
        metadata=organization_facts(shown),
        check_results=[
            check_result(finding, check_name=name)
            for name, finding in organization_findings(shown).items()
        ],
    )
