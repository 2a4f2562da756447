"""The intake's assets: `uploads`, the external asset the upload sensor observes, and
`incoming_invoices`, one organization's parsed and validated documents (a partition), with the
config of its runs and the metadata each records. Materializing a partition by hand without ids
processes every document of that organization still waiting.

`supplier_register` is the organization's supplier register (the suppliers a person confirmed),
materialized by hand, by every launchpad change of it (`change_supplier_register_job`) and by
every intake run that registered a supplier under the first-invoice policy; each
materialization lists the register and evaluates its two checks (checks.py)."""

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS, defined_here
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import (
    tenant_transaction,
)
from invoice_pipelines.intake.checks import (
    INTAKE_RUN_CHECKS,
    SUPPLIER_REGISTER,
    register_checks,
    registered_spec,
    scheduled_evaluations,
    told_apart_spec,
)
from invoice_pipelines.intake.domain.check_findings import (
    HOW_TO_REVIEW,
    failed_documents_table,
    in_review_table,
    not_exportable_table,
    run_findings,
    way_out,
)
from invoice_pipelines.intake.domain.figures import (
    register_events,
    register_figures,
    rejected_table,
)
from invoice_pipelines.intake.domain.incoming_invoices import waiting_documents
from invoice_pipelines.intake.domain.mailbox_status import MAILBOX_MESSAGES
from invoice_pipelines.intake.domain.pipeline import (
    IntakeSummary,
    process_documents,
    retry_documents,
)
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.lib.asset_metadata import as_metadata, check_result
from invoice_pipelines.lib.partitions import (
    REQUESTED_BY_HELP,
    organizations_partitions,
    who_asked,
)
from invoice_pipelines.lib.refusals import partition_organization, refused
from invoice_pipelines.resources.dagster_instance.run_report import RunReport
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.resources.ocr.readers import OcrReader

mailbox_messages = AssetSpec(
    MAILBOX_MESSAGES,
    metadata=defined_here(),
    group_name="intake",
    partitions_def=organizations_partitions,
    kinds={"email"},
    owners=OWNERS,
    description="The messages of the organization's invoice mailbox (an IMAP folder, configured "
    "with `invoice-pipelines mailbox set`). Written from outside: mailbox_sensor reads new "
    "messages (UIDVALIDITY/UID), makes each invoice attachment an upload once, moves the message "
    "after that commit, and records an observation per organization (read, refused, duplicates, "
    "uploads); `mailbox_fresh` warns when a mailbox was not read recently.",
)

uploads = AssetSpec(
    "uploads",
    metadata=defined_here(),
    group_name="intake",
    partitions_def=organizations_partitions,
    kinds={"files"},
    owners=OWNERS,
    deps=[mailbox_messages],
    description="Supplier invoices (PDF, XML, scans) dropped into the upload store, one folder per "
    "organization. Written from outside, so nothing here materializes it: upload_sensor registers "
    "settled files and records an observation per organization (files registered, duplicates).",
)


class IncomingInvoicesConfig(Config):
    document_ids: list[int] = Field(
        default=[],
        description="Incoming invoice ids of this organization. Empty: every document of the "
        "organization waiting in UPLOADED/CREATED (or, with retry_failed, every FAILED one).",
    )
    retry_failed: bool = Field(
        default=False,
        description="Move the FAILED documents (document_ids, or all) back to CREATED and "
        "process them again; the audit log records who asked.",
    )
    requested_by: str | None = Field(
        default=None,
        description="Who asked for a retry, for the audit log. " + REQUESTED_BY_HELP,
    )


def _policy_metadata(
    context: AssetExecutionContext, org: Organization, summary: IntakeSummary
) -> dict:
    """The intake policy the run judged its documents by, as the pipeline read it (none when it
    judged none); a stored policy that names an unknown class or action (written past `incoming
    policy`, which refuses it) is said, and the defaults applied."""
    if summary.policy is None:
        return {}
    shown = {"intake_policy": MetadataValue.json(summary.policy)}
    if summary.policy_error:
        context.log.warning(
            f"organization {org.slug}: {summary.policy_error}; the default intake policy applied "
            f"(fix it with invoice-pipelines incoming policy --org {org.slug} --set CLASS=ACTION)"
        )
        shown["intake_policy_error"] = MetadataValue.text(
            f"{summary.policy_error}; the defaults applied"
        )
    return shown


def _metadata(
    summary: IntakeSummary,
    stats: dict,
    failed: list[dict],
    retried: int,
    not_exportable: tuple[int, list[dict], str],
    in_review: tuple[int, list[dict]] = (0, []),
    rejected: tuple[dict[str, int], list] = ({}, []),
) -> dict:
    metadata = {
        # this run
        "processed": MetadataValue.int(summary.processed),
        "validated": MetadataValue.int(summary.outcomes.get("VALIDATED", 0)),
        "needs_review": MetadataValue.int(summary.outcomes.get("NEEDS_REVIEW", 0)),
        "failed": MetadataValue.int(summary.outcomes.get("FAILED", 0)),
        "rejected": MetadataValue.int(len(summary.rejected)),
        "skipped": MetadataValue.int(len(summary.skipped)),
        "stale": MetadataValue.int(len(summary.stale)),
        "retried": MetadataValue.int(retried),
        "ocr_pages": MetadataValue.int(summary.ocr_pages),
        "run_seconds": MetadataValue.float(round(summary.seconds, 3)),
        "formats": MetadataValue.json(dict(summary.formats)),
        # the organization's documents after this run
        "total": MetadataValue.int(stats["total"]),
        # shares of the organization's documents, named for the status they count
        "exported_rate_pct": MetadataValue.float(stats["exported_rate"]),
        "passed_validation_rate_pct": MetadataValue.float(stats["passed_validation_rate"]),
        "failed_rate_pct": MetadataValue.float(stats["failed_rate"]),
    }
    for status, count in stats["by_status"].items():
        metadata[f"count_{status.lower()}"] = MetadataValue.int(count)
    if stats["avg_processing_seconds"] is not None:
        metadata["avg_processing_seconds"] = MetadataValue.float(stats["avg_processing_seconds"])
    if failed:
        metadata["failed_documents"] = MetadataValue.md(failed_documents_table(failed))
    # what waits for a person (this run's and earlier ones'), and why; not booked until reviewed
    waiting, waiting_docs = in_review
    metadata["waiting_for_review"] = MetadataValue.int(waiting)
    if waiting_docs:
        metadata["documents_in_review"] = MetadataValue.md(
            in_review_table(waiting_docs, with_organization=False)
            + (
                f"\n\n(the oldest {len(waiting_docs)} of {waiting})"
                if waiting > len(waiting_docs)
                else ""
            )
            + f"\n\nReview: {HOW_TO_REVIEW}."
        )
    # rejected by the organization's policy: each supplier's one notice and where it stands
    notices, rejected_rows = rejected
    for state in ("pending", "sent", "failed", "unknown"):
        metadata[f"notices_{state}"] = MetadataValue.int(notices.get(state, 0))
    if rejected_rows:
        metadata["rejected_documents"] = MetadataValue.md(rejected_table(rejected_rows))
    # VALIDATED but dated outside every export month: no export partition will ever book them
    count, outside, table = not_exportable
    metadata["not_exportable"] = MetadataValue.int(count)
    if outside:
        metadata["not_exportable_documents"] = MetadataValue.md(table)
    return metadata


@asset(
    name="incoming_invoices",
    partitions_def=organizations_partitions,
    deps=[uploads],
    group_name="intake",
    kinds={"python", "sql", "pdf"},
    owners=OWNERS,
    # judged by the run that wrote it, so the UI shows them on the latest materialization
    check_specs=list(INTAKE_RUN_CHECKS),
    # scans are read by OCR here (CPU-bound RapidOCR or Tesseract, or Google Vision's quota): the
    # `ocr` pool limits how many such runs work at once across all organizations
    # (deploy/dagster.yaml)
    pool="ocr",
    description="Supplier invoices of one organization, parsed (Factur-X/ZUGFeRD, XRechnung "
    "CII/UBL, text PDFs, scans through OCR) and validated (the official EN 16931 and XRechnung "
    "rules, our own sums and dates), each with its class under German VAT law and, by the "
    "organization's intake policy, VALIDATED, NEEDS_REVIEW (a person confirms or corrects it "
    "before it is booked) or FAILED with its findings (a rejected supplier gets one notice). Materialized by intake_job (launched by upload_sensor "
    "with the ids of newly registered documents) and retry_failed_invoices_job; each run records "
    "counts by status, the shares of the organization's documents EXPORTED (exported_rate_pct), "
    "VALIDATED or since exported (passed_validation_rate_pct) and FAILED (failed_rate_pct), and "
    "the documents that FAILED, the documents waiting for review and the rejected ones with the "
    "state of their supplier notice.",
)
def incoming_invoices(
    context: AssetExecutionContext,
    config: IncomingInvoicesConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
    ocr_engine: ResourceParam[OcrReader],
    document_parser: DocumentParser,
):
    engine = database
    org = partition_organization(system_database, context)
    retried = 0
    if config.retry_failed:
        who = who_asked(config.requested_by, context.run.tags)
        ids, not_retried = retry_documents(
            engine, org.id, config.document_ids or None, requested_by=who
        )
        retried = len(ids)
        for doc_id, reason in not_retried.items():
            context.log.warning(f"document {doc_id} not retried: {reason}")
        if config.document_ids and not ids:
            raise refused("None of the given documents is FAILED, so none can be retried.")
    else:
        ids = config.document_ids or waiting_documents(engine, org.id)
    summary = process_documents(
        engine,
        upload_store,
        org,
        ids,
        parser=document_parser,
        ocr=ocr_engine,
        max_bytes=document_parser.max_upload_bytes,
    )
    for doc_id, reason in summary.skipped.items():
        context.log.warning(f"document {doc_id} skipped: {reason}")
    if config.document_ids and summary.skipped and len(summary.skipped) == summary.requested:
        raise Failure(
            "None of the requested documents can be processed.",
            metadata={
                "skipped": MetadataValue.json({str(k): v for k, v in summary.skipped.items()})
            },
            allow_retries=False,
        )
    # the figures, what the run's three judging checks read (check_findings.py), the rejected
    # documents and where those that came by e-mail came from
    found = run_findings(engine, org.id, summary.processed, list(summary.failures), list(ids))
    stats, judged, rejected, emailed = found.stats, found.judged, found.rejected, found.emailed
    failed, outside, outside_count = judged.failed, judged.outside_docs, judged.outside
    first, last = judged.first_month, judged.last_month
    for doc in failed:
        why = ", ".join(doc["rules"]) or doc["message"]
        context.log.warning(f"document {doc['id']} ({doc['filename']}) FAILED: {why}")
    for doc in outside[:10]:
        context.log.warning(
            f"document {doc['id']} ({doc['filename']}) is VALIDATED but no export can book it, "
            f"it is dated {doc['month']}, {way_out(doc, first, last)}"
        )
    not_exportable = (outside_count, outside, not_exportable_table(outside, first, last))
    in_review = (judged.in_review, judged.in_review_docs)
    metadata = _metadata(summary, stats, failed, retried, not_exportable, in_review, rejected)
    metadata.update(_policy_metadata(context, org, summary))
    metadata.update(as_metadata(emailed))
    if summary.registered:
        # the first-invoice policy registered suppliers: the register's asset shows them
        registered = register_events(engine, org, by="the first-invoice policy")
        RunReport(context.op_execution_context).changed(registered)
    yield MaterializeResult(metadata=metadata)
    for name, finding in judged.findings().items():
        yield check_result(finding, check_name=name)
    for event in scheduled_evaluations(system_database):
        context.log_event(event)


def register_metadata(conn, org: Organization) -> dict:
    """What the UI shows of one organization's register (intake/domain/figures.py: what a command
    that changes it reports too), as the register's runs record it."""
    return as_metadata(register_figures(conn, org))


@asset(
    name=SUPPLIER_REGISTER,
    partitions_def=organizations_partitions,
    group_name="intake",
    kinds={"sql"},
    owners=OWNERS,
    check_specs=[told_apart_spec, registered_spec],
    description="The organization's supplier register: the suppliers a person confirmed (or the "
    "organization's first-invoice policy registered, unconfirmed until a person confirms it) "
    "with their full VAT id, names, IBANs, notice address, QuickBooks vendor and DATEV creditor "
    "account. The intake compares every document's seller with it; QuickBooks bills (of "
    "confirmed suppliers only) and supplier notices follow it. Changed only by a person "
    "(change_supplier_register_job, confirm_supplier_job, `invoice-pipelines suppliers`, a "
    "confirmed review) or the first-invoice policy, every change audited.",
)
def supplier_register(
    context: AssetExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    engine = database
    org = partition_organization(system_database, context)
    with tenant_transaction(engine, org.id) as conn:
        metadata = register_metadata(conn, org)
        checks = register_checks(conn, org)
    yield MaterializeResult(metadata=metadata)
    yield from checks
