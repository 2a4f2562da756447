"""Asset checks that guard `incoming_invoices`.

Three judge a materialization and are evaluated by the intake run itself, for the run's
organization (`check_specs` of the asset, yielded with its materialization: the UI shows their
result on the latest materialization). All WARN and none blocking: a supplier's bad file or a
document held for a person is no reason to stop the run or hold anything downstream.

- `no_failed_documents`: the documents this run processed that ended FAILED, with file name and
  rule ids. A FAILED document is a supplier's bad file, not a broken pipeline: the run stays green
  for the documents it did record, and the asset shows the failure without opening a log.
- `no_documents_waiting_for_review`: the organization's documents in NEEDS_REVIEW after the run.
  Nothing is broken (they are held on purpose, and no export counts them as unbooked), but they
  are not booked until a person confirms or corrects them; the check names them, why each waits
  and how to review it.
- `validated_invoices_exportable`: the organization's VALIDATED documents dated outside every
  month the export assets have a partition for (before INVOICE_PIPELINES_EXPORT_START_MONTH, or
  after the running month). No export partition books them and nothing else would say so; the
  check names them and the way out.

Two watch what time does, not what a run wrote, so they run on a schedule across organizations
(`incoming_invoices_checks_schedule`, every 5 minutes) and their descriptions say so; every intake
run evaluates them too, beside its materialization (`scheduled_evaluations`: two cheap statements),
so the UI never shows them "Not evaluated" on the latest materialization:

- `no_stuck_documents`: documents waiting in UPLOADED/CREATED for more than 5 minutes. The upload
  sensor dispatches them again after 15 minutes, so a stuck document is a warning that recovery is
  under way, not data loss (ERROR is kept for broken data, as in billing's checks).
- `discounts_not_expiring`: early-payment discounts (Skonto) of booked incoming invoices whose last
  day is today or within the next 3 days: money left on the table unless someone pays. Nothing is
  broken, so WARN; the check names each invoice, its last day, the discount and the amount that
  settles it.

The supplier register's two (`supplier_register`, evaluated by its own materialization, WARN):
`suppliers_told_apart`, no two active suppliers share a name by what a person sees, and
`booked_documents_from_registered_suppliers`, the VALIDATED documents whose seller the register
does not agree with.
"""

import warnings

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    PreviewWarning,
    ResourceParam,
    asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.intake.domain.check_findings import (
    DISCOUNT_WARNING_DAYS,
    DISCOUNTS_CHECK,
    EXPORTABLE,
    IN_REVIEW,
    INCOMING_INVOICES,
    NO_FAILED,
    STUCK_CHECK,
    discounts_finding,
    scheduled_findings,
)
from invoice_pipelines.intake.domain.figures import (
    REGISTERED_CHECK,
    SUPPLIER_REGISTER,
    TOLD_APART_CHECK,
    register_findings,
)
from invoice_pipelines.intake.domain.mailbox_status import (
    FRESH_CHECK,
    MAILBOX_MESSAGES,
    STALE_MINUTES,
    fresh_finding,
)
from invoice_pipelines.lib.asset_metadata import check_result
from invoice_pipelines.lib.partitions import organizations_partitions
from invoice_pipelines.scheduled_checks import evaluation, scheduled_checks


def _per_organization(name: str, asset: str, description: str) -> AssetCheckSpec:
    """A check that judges one organization, partitioned like its asset (issue 85): each
    organization's partition keeps its own result, so one organization's run never hides
    another's failure (an unpartitioned check showed only the latest run's). A partitions_def on
    a check is a preview in Dagster 1.13; its warning is not printed into every process."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return AssetCheckSpec(
            name, asset=asset, partitions_def=organizations_partitions, description=description
        )


no_failed_documents_spec = _per_organization(
    NO_FAILED,
    INCOMING_INVOICES,
    "The documents of this intake run: none ended FAILED. WARN with the file names "
    "and rule ids of those that did (retry them with retry_failed_invoices_job once fixed).",
)


@asset_check(
    asset=INCOMING_INVOICES,
    name=STUCK_CHECK,
    description="Scheduled check (every 5 minutes, incoming_invoices_checks_schedule, and every "
    "intake run; all organizations): no document has waited in UPLOADED/CREATED for more than "
    "5 minutes.",
)
def no_stuck_documents(
    context: AssetCheckExecutionContext, system_database: ResourceParam[Engine]
) -> AssetCheckResult:
    return check_result(scheduled_findings(system_database)[STUCK_CHECK])


no_documents_waiting_for_review_spec = _per_organization(
    IN_REVIEW,
    INCOMING_INVOICES,
    "After this intake run, no document of its organization waits in NEEDS_REVIEW: "
    "WARN with the documents a person has to confirm, correct or reject before they are booked, "
    "and why each waits.",
)

validated_invoices_exportable_spec = _per_organization(
    EXPORTABLE,
    INCOMING_INVOICES,
    "After this intake run, every VALIDATED document of its organization is dated "
    "within the months incoming_invoice_exports has partitions for "
    "(INVOICE_PIPELINES_EXPORT_START_MONTH to the running month); WARN with the documents no "
    "export can book and the way out.",
)


# evaluated by every intake run, in the order the asset yields them
INTAKE_RUN_CHECKS = (
    no_failed_documents_spec,
    no_documents_waiting_for_review_spec,
    validated_invoices_exportable_spec,
)


def discounts_not_expiring_result(found: list[dict], within_days: int) -> AssetCheckResult:
    return check_result(discounts_finding(found, within_days))


@asset_check(
    asset=INCOMING_INVOICES,
    name=DISCOUNTS_CHECK,
    description="Scheduled check (every 5 minutes, incoming_invoices_checks_schedule, and every "
    "intake run; all organizations): no early-payment discount (Skonto) of a booked incoming invoice runs out "
    f"today or within {DISCOUNT_WARNING_DAYS} days; WARN with each invoice, its last day, the "
    "discount and the amount to pay.",
)
def discounts_not_expiring(
    context: AssetCheckExecutionContext, system_database: ResourceParam[Engine]
) -> AssetCheckResult:
    return check_result(scheduled_findings(system_database)[DISCOUNTS_CHECK])


@asset_check(
    asset=MAILBOX_MESSAGES,
    name=FRESH_CHECK,
    description="Scheduled check (every 5 minutes, incoming_invoices_checks_schedule; all "
    f"organizations): every active invoice mailbox was read within {STALE_MINUTES} minutes and "
    "its last read succeeded; WARN with each mailbox that was not and why (a refused login, a "
    "timeout, a dropped connection, the password's variable not set).",
)
def mailbox_fresh(
    context: AssetCheckExecutionContext, system_database: ResourceParam[Engine]
) -> AssetCheckResult:
    return check_result(fresh_finding(system_database))


def scheduled_evaluations(system: Engine) -> list[AssetCheckEvaluation]:
    """The two scheduled checks evaluated now (every organization; each one statement over the
    documents in the intake and the discounts of the coming days): what an intake run logs
    beside its materialization, so the UI does not show them "Not evaluated" on it until the
    next 5-minute tick (Dagster judges a check by the latest materialization)."""
    return [
        evaluation(check_result(finding), INCOMING_INVOICES, check_name=name)
        for name, finding in scheduled_findings(system).items()
    ]


incoming_invoices_checks_job, incoming_invoices_checks_schedule = scheduled_checks(
    "incoming_invoices_checks",
    [no_stuck_documents, discounts_not_expiring, mailbox_fresh],
    cron="*/5 * * * *",
    job_description="Evaluates the scheduled checks of incoming_invoices, no_stuck_documents and "
    "discounts_not_expiring, and mailbox_messages' mailbox_fresh (all organizations); the intake "
    "run evaluates the others.",
    schedule_description="Every 5 minutes: warns when a document has waited in UPLOADED/CREATED "
    "for more than 5 minutes, when an early-payment discount runs out within 3 days, and when an "
    "invoice mailbox was not read recently.",
)


told_apart_spec = _per_organization(
    TOLD_APART_CHECK,
    SUPPLIER_REGISTER,
    "No two active suppliers of the register share a name by what a person sees "
    "(confusables skeleton). WARN with the pairs: one supplier registered twice, or a look-alike.",
)
registered_spec = _per_organization(
    REGISTERED_CHECK,
    SUPPLIER_REGISTER,
    "Every VALIDATED document not exported yet comes from a supplier the register "
    "agrees with. WARN with those that do not (their QuickBooks bills wait): register or confirm "
    "the supplier (invoice-pipelines suppliers add / change).",
)


def register_checks(conn, organization: Organization) -> list[AssetCheckResult]:
    """The register's two checks for one organization (intake/domain/figures.py: their one rule)."""
    return [
        check_result(finding, check_name=name, asset_key=SUPPLIER_REGISTER)
        for name, finding in register_findings(conn, organization).items()
    ]
