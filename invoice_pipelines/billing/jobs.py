"""Billing's jobs: `batch_invoicing_job` (sales_invoices, one batch job a run: what the queue's
`batch_jobs_sensor` launches for an invoicing kind, as the kind names it: billing/domain/invoicing_kinds.py `INVOICING_JOB`) and `credit_note_job` (a
credit note for one sales invoice from the launchpad; queued credit notes are run by the queue
itself)."""

from datetime import date

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

from invoice_pipelines.billing.assets import sales_invoices
from invoice_pipelines.billing.checks import gapless_numbers_spec, totals_spec
from invoice_pipelines.billing.credit_note_request import CreditNoteItemConfig
from invoice_pipelines.billing.domain import actions
from invoice_pipelines.billing.domain.credit_notes import CreditNoteRefused
from invoice_pipelines.lib.partitions import (
    REQUESTED_BY_HELP,
    who_asked,
)
from invoice_pipelines.lib.refusals import OrganizationConfig, refused
from invoice_pipelines.queue.dagster import sentence

# One process: the run is one step (its chunks use threads and database connections), and a step
# subprocess would only add start-up time. The organization is the partition key.
batch_invoicing_job = define_asset_job(
    "batch_invoicing_job",
    # the asset and the checks it evaluates itself; the daily audit over every organization
    # runs on its own schedule, not with every batch
    selection=AssetSelection.assets(sales_invoices).without_checks()
    | AssetSelection.checks(gapless_numbers_spec.key, totals_spec.key),
    executor_def=in_process_executor,
    description="Batch invoicing for one organization (the partition): launched per queued job "
    "by batch_jobs_sensor, or by hand with a new request (sales_orders, all_reviewed, "
    "customer_lines) or a queued_job. No config: every reviewed order.",
)


def credit_request(config: CreditNoteItemConfig) -> dict:
    """A credit note's launchpad config as `actions.credit_note` keywords (CreditNoteRefused when
    its date cannot be read; its lines and amounts are the action's to read)."""
    try:
        issue_date = date.fromisoformat(config.issue_date) if config.issue_date else None
    except ValueError as exc:
        raise CreditNoteRefused(f"issue_date: {exc}", "invalid_date") from None
    return {
        "reason": config.reason,
        "lines": None if config.lines is None else [line.model_dump() for line in config.lines],
        "amounts": None if config.amounts is None else [a.model_dump() for a in config.amounts],
        "issue_date": issue_date,
    }


class CreditNoteConfig(OrganizationConfig, CreditNoteItemConfig):
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )


@op(
    description="Issue a credit note (type 381) for one sales invoice: in full, given lines, or a "
    "net amount per VAT rate."
)
def issue_credit_note_op(
    context: OpExecutionContext,
    config: CreditNoteConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
) -> dict:
    org = config.named_organization(system_database)
    who = who_asked(config.requested_by, context.run.tags)
    try:
        note = actions.credit_note(
            database, org, config.invoice_number, **credit_request(config), by=who
        )
    except CreditNoteRefused as exc:
        raise refused(sentence(str(exc))) from None
    context.add_output_metadata(actions.credit_note_metadata(note))
    return note.to_json_dict()


@job(
    executor_def=in_process_executor,
    description="A credit note for one sales invoice: full, given lines or a net amount per VAT "
    "rate, with a reason.",
)
def credit_note_job():
    issue_credit_note_op()
