"""The intake's jobs: `intake_job` materializes `incoming_invoices` with the ids the upload
sensor hands over, `retry_failed_invoices_job` with the FAILED ones moved back; the launchpad's
review job, the supplier notices' job and `change_supplier_register_job` (a person registers or
changes a supplier from the launchpad, audited as the `suppliers` command's), and
`confirm_supplier_job` (a person vouches for a supplier its first invoice registered), with their
ops and configs."""

from dagster import (
    AssetSelection,
    OpExecutionContext,
    ResourceParam,
    RunConfig,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.intake.assets import IncomingInvoicesConfig, incoming_invoices
from invoice_pipelines.intake.checks import INTAKE_RUN_CHECKS
from invoice_pipelines.intake.domain import supplier_actions as actions
from invoice_pipelines.intake.domain.review_action import Review, ReviewParts, review
from invoice_pipelines.intake.domain.supplier_actions import NewSupplier, RegisterParts, Who
from invoice_pipelines.intake.domain.supplier_answers import AnswerParts, answer_suppliers
from invoice_pipelines.lib.refusals import OrganizationConfig, refused
from invoice_pipelines.resources.dagster_instance.run_report import RunReport, refusals
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import PeppolTransport
from invoice_pipelines.supplier_register import Change

# The asset and the checks it evaluates itself; not the scheduled checks (no_stuck_documents,
# discounts_not_expiring), which an asset job would otherwise run along with every intake run.
INCOMING_INVOICES_RUN = AssetSelection.assets(incoming_invoices).without_checks() | (
    AssetSelection.checks(*(spec.key for spec in INTAKE_RUN_CHECKS))
)

# Both jobs run in one process: a run is one step, and a step subprocess would only add start-up
# time. The organization is the partition key; the run coordinator tags the run with it.
intake_job = define_asset_job(
    "intake_job",
    selection=INCOMING_INVOICES_RUN,
    executor_def=in_process_executor,
    description="Parse and validate incoming invoices of one organization (the partition): "
    "launched by upload_sensor with the ids of newly registered documents, or by hand (no ids: "
    "every waiting document).",
)

retry_failed_invoices_job = define_asset_job(
    "retry_failed_invoices_job",
    selection=INCOMING_INVOICES_RUN,
    executor_def=in_process_executor,
    config=RunConfig(ops={"incoming_invoices": IncomingInvoicesConfig(retry_failed=True)}),
    description="Retry FAILED incoming invoices of one organization (the partition): all of "
    "them, or the ids given in document_ids; they go back to CREATED and through intake again.",
)


class ReviewConfig(OrganizationConfig):
    document_id: int = Field(
        description="Id of the incoming invoice in NEEDS_REVIEW (or VALIDATED, to reopen it)."
    )
    corrections: dict[str, str] = Field(
        default_factory=dict,
        description="Field -> new value: number, type_code, currency, seller_name, seller_vat_id, "
        "issue_date / due_date (YYYY-MM-DD), net_total, tax_total, gross_total, amount_due, "
        "breakdown (rate:basis:vat;... e.g. 19:100.00:19.00). Each change is recorded.",
    )
    confirm: bool = Field(
        default=False,
        description="Book it (VALIDATED) if its values, as corrected, hold; otherwise it stays in "
        "review and the run says why.",
    )
    reject_reason: str = Field(default="", description="Not empty: FAILED with this reason.")
    reopen: bool = Field(
        default=False,
        description="A VALIDATED document not exported yet back to NEEDS_REVIEW (needs reason); "
        "an EXPORTED one is corrected through reopen_exported_invoices_job first.",
    )
    reason: str = Field(default="", description="Why it is reopened (kept in the audit log).")
    reviewed_by: str = Field(description="Who reviews (kept with every change).")
    expected_version: int | None = Field(
        default=None,
        description="Required: the processing_version you looked at (incoming show); a document "
        "changed since is refused.",
    )


@op(
    description="A person confirms, corrects or rejects a supplier invoice in NEEDS_REVIEW, or "
    "reopens a VALIDATED one not exported yet; every change is recorded (who, when, old, new) "
    "and only values that hold, as a reading's must, are booked."
)
def review_incoming_invoice(
    context: OpExecutionContext,
    config: ReviewConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    org = config.named_organization(system_database)
    parts = ReviewParts(database, system_database, RunReport(context))
    with refusals():
        result = review(
            parts, org, _asked(config), told_as=f"{context.job_name} by {config.reviewed_by}"
        )
    context.log.info(
        f"incoming invoice {result.document_id}: {result.status}; corrected "
        f"{sorted(result.corrected) or 'nothing'}"
    )
    if config.confirm and result.problems:
        raise refused(
            f"incoming invoice {result.document_id} stays in review, nothing changed (the "
            "refusal is its finding IP-REV-13): " + "; ".join(result.problems)
        )


def _asked(config: ReviewConfig) -> Review:
    return Review(
        config.document_id,
        config.reviewed_by,
        config.expected_version,
        corrections=config.corrections,
        confirm=config.confirm,
        reject=config.reject_reason or None,
        reopen=config.reopen,
        reason=config.reason or None,
    )


@job(
    executor_def=in_process_executor,
    description="Review: confirm, correct or reject one supplier invoice in NEEDS_REVIEW, or reopen "
    "a VALIDATED one (config: organization, document_id, corrections, confirm, reject_reason or "
    "reopen with reason, reviewed_by, expected_version).",
)
def review_incoming_invoice_job():
    review_incoming_invoice()


@op(
    description="Answers each supplier whose document the intake rejected, once: an Invoice "
    "Response over Peppol where the document came over Peppol and the sender's access point takes "
    "one, else its notice (at most once, through the outbox); a notice without an address ends "
    "failed, saying so."
)
def send_supplier_notices_op(
    context: OpExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    mailer: ResourceParam[Smtp],
    peppol_access_point: ResourceParam[PeppolTransport],
):
    report = RunReport(context)
    answer_suppliers(AnswerParts(database, system_database, mailer, peppol_access_point, report))


@job(
    executor_def=in_process_executor,
    description="Sends the pending supplier notices of rejected documents (every organization).",
)
def supplier_notices_job():
    send_supplier_notices_op()


class SupplierChangeConfig(OrganizationConfig):
    supplier_id: int | None = Field(
        default=None, description="The supplier to change; none: register a new one."
    )
    name: str = Field(default="", description="Its name (required for a new supplier).")
    add_names: list[str] = Field(default_factory=list, description="Other names it goes by.")
    vat_id: str = Field(default="", description="Its VAT id, in full.")
    tax_number: str = Field(default="", description="Its tax number (Steuernummer).")
    add_ibans: list[str] = Field(
        default_factory=list, description="IBANs to add, each IBAN or IBAN:BIC."
    )
    remove_ibans: list[str] = Field(default_factory=list, description="IBANs to remove.")
    notice_email: str = Field(default="", description="Where its rejection notices go.")
    qbo_vendor_id: str = Field(default="", description="Its QuickBooks vendor's Id.")
    datev_creditor_account: int | None = Field(default=None, description="DATEV creditor.")
    active: bool | None = Field(default=None, description="false: the supplier is retired.")
    expected_version: int | None = Field(
        default=None, description="The supplier's version you looked at (changes only)."
    )
    despite_lookalike: bool = Field(
        default=False,
        description="A new supplier whose name reads like a registered one's is another company "
        "all the same (else it is refused).",
    )
    changed_by: str = Field(description="Who makes the change (audited).")
    reason: str = Field(description="Why (audited).")


def _pairs(values: list[str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((v.split(":", 1)[0], v.split(":", 1)[1] if ":" in v else None) for v in values)


@op(
    description="A person registers a supplier or changes one (names, VAT id, IBANs, notice "
    "address, QuickBooks vendor, DATEV creditor account); every change is audited with who and "
    "why, and the register's asset shows the result."
)
def change_supplier_register(
    context: OpExecutionContext,
    config: SupplierChangeConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    org = config.named_organization(system_database)
    parts = RegisterParts(database, RunReport(context))
    who = Who(config.changed_by, config.reason, f"{context.job_name} by {config.changed_by}")
    supplier_id, version = config.supplier_id, config.expected_version
    with refusals():
        if supplier_id is None:
            supplier_id = actions.register(parts, org, _new_supplier(config), who)
        else:
            actions.change(parts, org, supplier_id, _change(config), who, expected_version=version)
    context.log.info(f"supplier {supplier_id} of {org.slug}: changed by {config.changed_by}")


def _new_supplier(config: SupplierChangeConfig) -> NewSupplier:
    """The launchpad's new supplier (no supplier_id)."""
    return NewSupplier(
        name=config.name,
        vat_id=config.vat_id or None,
        tax_number=config.tax_number or None,
        ibans=_pairs(config.add_ibans),
        notice_email=config.notice_email or None,
        qbo_vendor_id=config.qbo_vendor_id or None,
        datev_creditor_account=config.datev_creditor_account,
        despite_lookalike=config.despite_lookalike,
    )


def _change(config: SupplierChangeConfig) -> Change:
    """The launchpad's change of one supplier (an empty value: unchanged)."""
    return Change(
        name=config.name or None,
        vat_id=config.vat_id or None,
        tax_number=config.tax_number or None,
        notice_email=config.notice_email or None,
        qbo_vendor_id=config.qbo_vendor_id or None,
        datev_creditor_account=config.datev_creditor_account,
        add_names=tuple(config.add_names),
        add_ibans=_pairs(config.add_ibans),
        remove_ibans=tuple(config.remove_ibans),
        active=config.active,
    )


@job(
    executor_def=in_process_executor,
    description="The supplier register: register a supplier or change one (config: organization, "
    "supplier_id or none for a new one, the values, changed_by, reason); audited.",
)
def change_supplier_register_job():
    change_supplier_register()


class SupplierConfirmConfig(OrganizationConfig):
    supplier_id: int = Field(description="The supplier its first invoice registered.")
    expected_version: int = Field(description="The supplier's version you looked at.")
    despite_lookalike: bool = Field(
        default=False,
        description="It reads like another registered supplier and is another company all the "
        "same.",
    )
    confirmed_by: str = Field(description="Who vouches for the supplier (audited).")
    reason: str = Field(description="Why, e.g. how it was verified (audited).")


@op(
    description="A person vouches for a supplier the first-invoice policy registered: from now "
    "on a QuickBooks vendor may be created and its bills pushed. Audited; a supplier that reads "
    "like another registered one is refused unless despite_lookalike."
)
def confirm_supplier_op(
    context: OpExecutionContext,
    config: SupplierConfirmConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    org = config.named_organization(system_database)
    who = Who(config.confirmed_by, config.reason, f"{context.job_name} by {config.confirmed_by}")
    with refusals():
        actions.confirm(
            RegisterParts(database, RunReport(context)),
            org,
            config.supplier_id,
            who,
            expected_version=config.expected_version,
            despite_lookalike=config.despite_lookalike,
        )
    context.log.info(
        f"supplier {config.supplier_id} of {org.slug}: confirmed by {config.confirmed_by}"
    )


@job(
    executor_def=in_process_executor,
    description="The supplier register: a person confirms a supplier its first invoice "
    "registered (config: organization, supplier_id, expected_version, confirmed_by, reason); "
    "its bills may reach QuickBooks from then on.",
)
def confirm_supplier_job():
    confirm_supplier_op()
