"""The organizations' lifecycle on the launchpad: `organizations_add_job`, `_change_job`,
`_suspend_job`, `_resume_job` and `_offboard_job`. Each op is an adapter over the request's action
(tenants/domain/actions.py), which `invoice-pipelines organizations ...` calls too: it reads the
request from the run's config and hands the action the run's report (its log and events, the
partitions on its instance; resources/dagster_instance/run_report.py). A request a person can correct fails with the
action's sentences, no retry."""

from pathlib import Path

from dagster import (
    Config,
    OpExecutionContext,
    ResourceParam,
    in_process_executor,
    job,
    op,
)
from pydantic import Field, create_model
from sqlalchemy import Engine

from invoice_pipelines.core.organization_values import FIELDS
from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig
from invoice_pipelines.resources.dagster_instance.run_report import RunReport, refusals
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.tenants.domain import actions
from invoice_pipelines.tenants.domain.actions import Parts
from invoice_pipelines.tenants.domain.offboarding import Stores
from invoice_pipelines.tenants.domain.partition_keys import sync_partitions


def _parts(context: OpExecutionContext, system: Engine, uploads: Uploads) -> Parts:
    """The actions' parts in a run: its log and events, the partitions on its instance."""
    return Parts(
        system,
        uploads,
        RunReport(context),
        lambda add, remove: sync_partitions(add, remove, instance=context.instance),
    )


# the values of one organization (FIELDS, in the CSV's order) as the launchpad's config describes
# them: AddConfig takes each, ChangeConfig each but the slug as its "New value: "
VALUE_DESCRIPTIONS = {
    "slug": "Its key: lower-case letters, digits, dashes.",
    "name": "Its name as documents and exports write it.",
    "country": "ISO country code (default DE).",
    "vat_id": "Its VAT id, checked by its country's check digit.",
    "tax_number": "Its tax number (Steuernummer).",
    "datev_berater_nr": "DATEV Beraternummer (1001..9999999).",
    "datev_mandant_nr": "DATEV Mandantennummer (1..99999).",
    "datev_chart": "DATEV chart: SKR03 or SKR04.",
    "invoice_number_format": "e.g. RE-{year}-{counter:06d}.",
}

AddConfig = create_model(
    "AddConfig",
    __base__=Config,
    csv=(
        str,
        Field(
            default="",
            description="An onboarding CSV on the run's machine: " + ",".join(FIELDS) + " (or "
            "the values of one organization below)",
        ),
    ),
    **{name: (str, Field(default="", description=VALUE_DESCRIPTIONS[name])) for name in FIELDS},
    requested_by=(str, Field(default="", description="Who adds them. " + REQUESTED_BY_HELP)),
)


@op(description="Adds organizations (one, or a CSV's), all or none, and their partitions.")
def add_organizations_op(
    context: OpExecutionContext,
    config: AddConfig,
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
) -> dict:
    values = {n: getattr(config, n) for n in FIELDS}
    csv = Path(config.csv) if config.csv else None
    who = who_asked(config.requested_by, context.run.tags)
    with refusals():
        added = actions.add(
            _parts(context, system_database, upload_store),
            csv=csv,
            values=values,
            by=who,
            where="config",
        )
    return {"added": len(added.added), "unchanged": len(added.unchanged)}


@job(
    executor_def=in_process_executor,
    description="Onboarding: adds organizations from a CSV (or one by its values) with their "
    "partitions; the same file twice changes nothing.",
)
def organizations_add_job():
    add_organizations_op()


ChangeConfig = create_model(
    "ChangeConfig",
    __base__=OrganizationConfig,
    why=(str, Field(description="Why, for the audit.")),
    **{
        name: (
            str | None,
            Field(default=None, description=f"New value: {VALUE_DESCRIPTIONS[name]}"),
        )
        for name in FIELDS[1:]
    },
    requested_by=(str, Field(default="", description="Who changes it. " + REQUESTED_BY_HELP)),
)


@op(description="Changes an organization's values through the checks of `add`, audited.")
def change_organization_op(
    context: OpExecutionContext,
    config: ChangeConfig,
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
) -> dict:
    given = {n: getattr(config, n) for n in FIELDS[1:] if getattr(config, n) is not None}
    org = config.named_organization(system_database, offboarded=True)  # once
    who = who_asked(config.requested_by, context.run.tags)
    with refusals():
        changes = actions.change(
            _parts(context, system_database, upload_store), org, given, by=who, why=config.why
        )
    return {name: [str(old), str(new)] for name, (old, new) in changes.items()}


@job(executor_def=in_process_executor, description="Changes an organization's values, audited.")
def organizations_change_job():
    change_organization_op()


class SuspendConfig(OrganizationConfig):
    reason: str = Field(description="Why: shown on it and in the sensors' skip messages.")
    requested_by: str = Field(default="", description="Who suspends it. " + REQUESTED_BY_HELP)


@op(description="Suspends an organization: nothing automatic is requested for it.")
def suspend_organization_op(
    context: OpExecutionContext,
    config: SuspendConfig,
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
) -> bool:
    org = config.named_organization(system_database, offboarded=True)  # once
    who = who_asked(config.requested_by, context.run.tags)
    with refusals():
        return actions.suspend(
            _parts(context, system_database, upload_store), org, reason=config.reason, by=who
        )


@job(
    executor_def=in_process_executor,
    description="Suspends an organization: sensors, schedules and backfills request nothing for "
    "it; its uploads wait, nothing is lost.",
)
def organizations_suspend_job():
    suspend_organization_op()


class ResumeConfig(OrganizationConfig):
    requested_by: str = Field(default="", description="Who resumes it. " + REQUESTED_BY_HELP)


@op(description="Resumes a suspended organization: its waiting uploads first.")
def resume_organization_op(
    context: OpExecutionContext,
    config: ResumeConfig,
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
) -> dict:
    org = config.named_organization(system_database, offboarded=True)  # once
    who = who_asked(config.requested_by, context.run.tags)
    with refusals():
        resumed = actions.resume(_parts(context, system_database, upload_store), org, by=who)
    return resumed or {}


@job(
    executor_def=in_process_executor,
    description="Resumes a suspended organization; its sensors pick up what waited.",
)
def organizations_resume_job():
    resume_organization_op()


class OffboardConfig(OrganizationConfig):
    export_dir: str = Field(
        default="", description="Step 1: a new or empty folder on the run's machine."
    )
    delete: bool = Field(
        default=False,
        description="Step 2: delete its data (refused before every retention period, the law's "
        "and its own, is over, naming the date it may, and under a legal hold); its audit trail "
        "of the years still kept stays with its row and partition until a later deletion.",
    )
    requested_by: str = Field(default="", description="Who offboards it. " + REQUESTED_BY_HELP)


@op(
    description="Offboarding: writes everything an organization has as readable files with a "
    "manifest (export_dir), or deletes it once the law allows (delete)."
)
def offboard_organization_op(
    context: OpExecutionContext,
    config: OffboardConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
    document_store: ResourceParam[Files],
    export_store: ResourceParam[Files],
) -> dict:
    org = config.named_organization(system_database, offboarded=True)  # once
    with refusals():
        return actions.offboard(
            _parts(context, system_database, upload_store),
            org,
            database=database,
            stores=Stores(upload_store, document_store, export_store),
            export_dir=Path(config.export_dir) if config.export_dir else None,
            delete=config.delete,
            by=who_asked(config.requested_by, context.run.tags),
        )


@job(
    executor_def=in_process_executor,
    description="Offboarding: step 1 writes everything an organization has (CSV per table, "
    "originals, documents, exports, settings, SHA-256 manifest) and offboards it; step 2 deletes "
    "what every retention period and hold allow, keeping the audit trail of the years still kept.",
)
def organizations_offboard_job():
    offboard_organization_op()
