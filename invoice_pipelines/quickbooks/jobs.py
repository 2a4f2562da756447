"""QuickBooks' jobs: one asset job an entity's sync (`qbo_<entity>_job`), the launchpad's
resolution of a conflict held for a person and its push of chosen supplier invoices as bills."""

from dagster import (
    AssetSelection,
    OpExecutionContext,
    ResourceParam,
    define_asset_job,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.lib.partitions import who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig
from invoice_pipelines.quickbooks.assets import POOL, SYNC_ASSETS
from invoice_pipelines.quickbooks.checks import check_evaluations
from invoice_pipelines.quickbooks.domain.actions import push_chosen, resolve
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings
from invoice_pipelines.resources.dagster_instance.run_report import refusals
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.resources.messaging.letter_types import Letters
from invoice_pipelines.resources.workers import stop_signal


def _job(name: str, target, description: str):
    return define_asset_job(name, selection=AssetSelection.assets(target), description=description)


SYNC_JOBS = {
    entity.sync: _job(entity.job, SYNC_ASSETS[entity.sync], entity.job_description)
    for entity in SYNCED
}


class ResolveConflictConfig(OrganizationConfig):
    conflict_id: int = Field(description="The open sync_conflicts row (qbo-conflicts lists them).")
    keep: str = Field(
        description="local: our version goes to QuickBooks; qbo: QuickBooks' version is taken."
    )
    resolved_by: str = Field(default="", description="Who decided (default: the launching user).")


@op(description="Resolves one conflict held for manual review and releases the record.")
def resolve_qbo_conflict(
    context: OpExecutionContext,
    config: ResolveConflictConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    quickbooks: ResourceParam[QboSettings],
):
    org = config.named_organization(system_database)
    who = who_asked(config.resolved_by, context.run.tags)
    with refusals():
        result = resolve(database, quickbooks, org, config.conflict_id, keep=config.keep, by=who)
    context.log.info(f"conflict {config.conflict_id} resolved by {who}: kept {config.keep}")
    return result


@job(
    description="Resolves a QuickBooks sync conflict held for manual review (launchpad: "
    "organization, conflict id, keep local or qbo); the record syncs again afterwards."
)
def qbo_resolve_conflict_job():
    resolve_qbo_conflict()


class PushBillsConfig(OrganizationConfig):
    document_ids: list[int] = Field(
        description="Ids of incoming invoices to push to QuickBooks as bills now (VALIDATED "
        "ones, or FAILED ones whose bill is to be deleted)."
    )
    retry_failed: bool = Field(
        default=True,
        description="Also send those whose last push failed (QuickBooks refused it, or it was a "
        "conflict someone has resolved in QuickBooks).",
    )


@op(
    description="Pushes the chosen supplier invoices of one organization to QuickBooks as bills "
    "(or deletes their bills), with the same exactly-once machinery as qbo_bills_job, and says "
    "for each document where it stands.",
    pool=POOL,
)
def push_chosen_bills(
    context: OpExecutionContext,
    config: PushBillsConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    quickbooks: ResourceParam[QboSettings],
    upload_store: ResourceParam[Uploads],
    letter_writer: ResourceParam[Letters],
):
    stop_signal.remember()  # a SIGTERM Dagster's handler loses still stops the push (bills.py)
    with refusals():
        pushed = push_chosen(
            database, quickbooks, config.named_organization(system_database),
            list(config.document_ids), run_id=context.run.run_id,
            retry_failed=config.retry_failed, read_upload=upload_store.read,
            write_letter=letter_pdf(letter_writer),
        )  # fmt: skip
    for document_id, text in pushed["documents"].items():
        context.log.info(f"incoming invoice {document_id}: {text}")
    # what waits, and what QuickBooks has, changed with the push: the bill checks say so now
    for event in check_evaluations(database, system_database, SYNC_ASSETS["bills"].key):
        context.log_event(event)
    return pushed


@job(
    description="Push chosen supplier invoices to QuickBooks as bills now (launchpad: the "
    "organization and the incoming invoice ids); each document's outcome is in the run's log."
)
def qbo_push_bills_job():
    push_chosen_bills()
