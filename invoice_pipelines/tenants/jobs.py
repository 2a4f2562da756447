"""The organizations' lifecycle on the launchpad: `organizations_add_job`, `_change_job`,
`_suspend_job`, `_resume_job` and `_offboard_job`, the same work as `invoice-pipelines
organizations ...` (tenants/domain/lifecycle.py, tenants/domain/offboarding.py). Each writes the partitions
in the same run (one call for all the keys it adds) and records the organizations it changed on
the `organizations` asset. A request a person can correct fails with its sentences, no retry."""

from pathlib import Path

from dagster import (
    AssetMaterialization,
    Config,
    OpExecutionContext,
    ResourceParam,
    in_process_executor,
    job,
    op,
)
from pydantic import Field, create_model
from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.organization_values import FIELDS
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.lib.asset_metadata import check_result
from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import OrganizationConfig, refused
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.scheduled_checks import evaluation
from invoice_pipelines.tenants.assets import ORGANIZATIONS_ASSET
from invoice_pipelines.tenants.domain.lifecycle import (
    Refused,
    add_organizations,
    change_organization,
    resume_organization,
    suspend_organization,
)
from invoice_pipelines.tenants.domain.listing import (
    organization_facts,
    organization_findings,
    show_organization,
)
from invoice_pipelines.tenants.domain.offboarding import (
    NotYet,
    Stores,
    delete_organization,
    deletion_lines,
    export_organization,
)
from invoice_pipelines.tenants.domain.organizations_csv import CsvProblem, read_organizations_csv
from invoice_pipelines.tenants.domain.partition_keys import sync_partitions

# organizations whose partition a run records on the asset; an onboarding of thousands records
# the count in the run's metadata instead (Materialize shows each one's partition)
RECORDED = 100
NAMED = 10


def _refuse(problems: list[str]) -> Exception:
    more = f" and {len(problems) - NAMED} more" if len(problems) > NAMED else ""
    return refused("; ".join(problems[:NAMED]) + more)


def _record(
    context: OpExecutionContext, engine: Engine, orgs: list[Organization], uploads: Uploads
) -> None:
    """Each organization's partition of the `organizations` asset as the change left it, with
    its checks evaluated on it (the UI shows a check "Not evaluated" on a materialization that
    came without its evaluation)."""
    for org in orgs[:RECORDED]:
        shown = show_organization(engine, org, uploads)
        context.log_event(
            AssetMaterialization(
                ORGANIZATIONS_ASSET, partition=org.slug, metadata=organization_facts(shown)
            )
        )
        for name, finding in organization_findings(shown).items():
            context.log_event(
                evaluation(check_result(finding), ORGANIZATIONS_ASSET, org.slug, check_name=name)
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
    if config.csv:
        try:
            rows, problems = read_organizations_csv(Path(config.csv))
        except CsvProblem as exc:
            raise refused(str(exc)) from None
    else:
        rows, problems = [("config", {n: getattr(config, n) for n in FIELDS})], []
    who = who_asked(config.requested_by, context.run.tags)
    report = add_organizations(system_database, rows, by=who, problems=problems)
    if report.problems:
        for problem in report.problems:
            context.log.error(problem)
        raise _refuse(report.problems)
    context.log.info(report.summary())
    for slug in report.added:  # each one's drop zone, where a person drops its invoices
        try:
            upload_store.make_inbox(slug)
        except OSError as exc:
            context.log.warning(f"{slug}: drop zone not made ({exc})")
    context.log.info(sync_partitions([*report.added, *report.unchanged], instance=context.instance))
    _record(context, system_database, report.organizations, upload_store)
    return {"added": len(report.added), "unchanged": len(report.unchanged)}


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
    try:
        changes = change_organization(
            system_database,
            org,
            given,
            by=who_asked(config.requested_by, context.run.tags),
            why=config.why,
        )
    except Refused as exc:
        raise _refuse(exc.problems) from None
    context.log.info(f"changed: {', '.join(changes) or 'nothing'}")
    _record(context, system_database, [org], upload_store)
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
    try:
        done = suspend_organization(
            system_database,
            org,
            reason=config.reason,
            by=who_asked(config.requested_by, context.run.tags),
        )
    except Refused as exc:
        raise _refuse(exc.problems) from None
    _record(context, system_database, [org], upload_store)
    return done


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
    try:
        resumed = resume_organization(
            system_database, org, by=who_asked(config.requested_by, context.run.tags)
        )
    except Refused as exc:
        raise _refuse(exc.problems) from None
    _record(context, system_database, [org], upload_store)
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
    if bool(config.export_dir) == config.delete:
        raise refused("Give export_dir (step 1) or delete: true (step 2), one of them.")
    by = who_asked(config.requested_by, context.run.tags)
    stores = Stores(upload_store, document_store, export_store)
    org = config.named_organization(system_database, offboarded=True)  # once
    try:
        if config.delete:
            deleted = delete_organization(
                database, org, system=system_database, by=by, stores=stores
            )
        else:
            manifest = export_organization(
                database,
                org,
                Path(config.export_dir),
                system=system_database,
                by=by,
                stores=stores,
            )
    except (Refused, NotYet, UnknownOrganization) as exc:
        raise refused(str(exc)) from None
    if config.delete:
        for line in deletion_lines(deleted):
            context.log.info(line)
        if deleted.gone:
            context.log.info(sync_partitions([], [deleted.slug], instance=context.instance))
        return {
            "deleted_rows": sum(deleted.rows.values()),
            "files": deleted.files_removed,
            "kept": deleted.kept,
        }
    for missing in manifest["not_copied"]:
        context.log.warning(f"not copied: {missing}")
    _record(context, system_database, [org], upload_store)
    return {"files": manifest["files"], "deletable_from": manifest["deletable_from"]}


@job(
    executor_def=in_process_executor,
    description="Offboarding: step 1 writes everything an organization has (CSV per table, "
    "originals, documents, exports, settings, SHA-256 manifest) and offboards it; step 2 deletes "
    "what every retention period and hold allow, keeping the audit trail of the years still kept.",
)
def organizations_offboard_job():
    offboard_organization_op()
