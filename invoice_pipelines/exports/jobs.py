"""The exports' jobs: `export_job` (both directions of one organization's month; what the monthly
schedule launches) and `reopen_exported_invoices_job` (the launchpad's corrections)."""

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

from invoice_pipelines.exports.assets import incoming_invoice_exports, sales_invoice_exports
from invoice_pipelines.exports.domain import actions
from invoice_pipelines.exports.domain.actions import Reopen
from invoice_pipelines.lib.partitions import who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig, refused
from invoice_pipelines.resources.dagster_instance.run_report import refusals

export_job = define_asset_job(
    "export_job",
    selection=AssetSelection.assets(incoming_invoice_exports, sales_invoice_exports),
    description="Exports one organization's month in both directions (CSV and DATEV files).",
)


class ReopenConfig(OrganizationConfig):
    document_ids: list[int] = Field(description="Ids of EXPORTED incoming invoices to correct.")
    reason: str = Field(description="Why they are reopened (kept in the audit log).")
    requested_by: str = Field(default="", description="Who asked for it (audit log).")


@op(
    description="Moves EXPORTED supplier invoices back to VALIDATED (a correction); the next "
    "materialization of their month writes a new export version that names them."
)
def reopen_exported_invoices(
    context: OpExecutionContext,
    config: ReopenConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    org = config.named_organization(system_database)
    who = who_asked(config.requested_by, context.run.tags)
    with refusals():
        done = actions.reopen(database, org, Reopen(config.document_ids, config.reason, who))
    for doc_id, why in done.refused.items():
        context.log.warning(f"document {doc_id} not reopened: {why}")
    if not done.reopened:
        raise refused("None of the given documents is EXPORTED, so none can be reopened.")
    context.log.info(
        f"reopened {len(done.reopened)} document(s) of {org.slug}: {done.reopened}; materialize "
        "their months of incoming_invoice_exports to write the corrected version"
    )


@job(
    executor_def=in_process_executor,
    description="Corrections: EXPORTED -> VALIDATED for chosen supplier invoices of one "
    "organization (config: organization, document_ids, reason).",
)
def reopen_exported_invoices_job():
    reopen_exported_invoices()
