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
from invoice_pipelines.exports.domain.corrections import reopen_exported
from invoice_pipelines.lib.partitions import who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig, refused

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
    engine = database
    org = config.named_organization(system_database)
    if not config.document_ids:
        raise refused("Name at least one document to reopen (document_ids).")
    if not config.reason.strip():
        raise refused("Say why the documents are reopened (reason).")
    who = who_asked(config.requested_by, context.run.tags)
    reopened, not_reopened = reopen_exported(
        engine, org.id, config.document_ids, reason=config.reason, requested_by=who
    )
    for doc_id, why in not_reopened.items():
        context.log.warning(f"document {doc_id} not reopened: {why}")
    if not reopened:
        raise refused("None of the given documents is EXPORTED, so none can be reopened.")
    context.log.info(
        f"reopened {len(reopened)} document(s) of {org.slug}: {reopened}; materialize their "
        "months of incoming_invoice_exports to write the corrected version"
    )


@job(
    executor_def=in_process_executor,
    description="Corrections: EXPORTED -> VALIDATED for chosen supplier invoices of one "
    "organization (config: organization, document_ids, reason).",
)
def reopen_exported_invoices_job():
    reopen_exported_invoices()
