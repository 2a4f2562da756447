"""Dunning's jobs: `dunning_job` (the notices of the chosen organizations, what the schedule
launches) and `dunning_block_job` (the launchpad's dunning block or disputed flag)."""

from dagster import (
    AssetSelection,
    OpExecutionContext,
    ResourceParam,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig, refused
from invoice_pipelines.overdue.assets import dunning_notices
from invoice_pipelines.overdue.domain.pipeline import set_dunning_block

dunning_job = define_asset_job(
    "dunning_job",
    selection=AssetSelection.assets(dunning_notices),
    executor_def=in_process_executor,
    description="Notices the overdue invoices of the chosen organizations (partitions).",
)


class DunningBlockConfig(OrganizationConfig):
    customer_ids: list[int] = Field(
        default_factory=list, description="Customers whose dunning block (Mahnsperre) changes."
    )
    invoice_ids: list[int] = Field(
        default_factory=list, description="Sales invoices whose disputed flag changes."
    )
    lift: bool = Field(default=False, description="Lift the block / flag instead of setting it.")
    reason: str = Field(description="Why (kept in the audit log).")
    requested_by: str = Field(
        default="", description="Who asked for it (audit log). " + REQUESTED_BY_HELP
    )


@op(
    description="Sets or lifts the dunning block of customers or the disputed flag of invoices; "
    "each change is recorded in the audit log."
)
def change_dunning_block(
    context: OpExecutionContext,
    config: DunningBlockConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    org = config.named_organization(system_database)
    _refuse_unless_asked_right(config)
    changed, unknown = set_dunning_block(
        database, org.id, customer_ids=config.customer_ids, invoice_ids=config.invoice_ids,
        blocked=not config.lift, reason=config.reason,
        requested_by=who_asked(config.requested_by, context.run.tags),
    )  # fmt: skip
    what = "customers" if config.customer_ids else "invoices"
    for i in unknown:
        context.log.warning(f"{what[:-1]} {i} is not in {org.slug}: unchanged")
    if not changed:
        raise refused(f"None of the given {what} belongs to {org.slug}.")
    context.log.info(f"{'lifted' if config.lift else 'set'} for {what} {changed}")


def _refuse_unless_asked_right(config: DunningBlockConfig) -> None:
    """Refused: neither or both of customer_ids and invoice_ids, or no reason."""
    if bool(config.customer_ids) == bool(config.invoice_ids):
        raise refused("Name either customer_ids or invoice_ids (one of the two).")
    if not config.reason.strip():
        raise refused("Say why (reason): it is kept in the audit log.")


@job(
    executor_def=in_process_executor,
    description="Sets or lifts a customer's dunning block (Mahnsperre) or an invoice's disputed "
    "flag (config: organization, customer_ids or invoice_ids, lift, reason).",
)
def dunning_block_job():
    change_dunning_block()
