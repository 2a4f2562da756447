"""Intake area: uploads -> incoming_invoices, the upload sensor that feeds it, and its checks.

`uploads` is an external asset: files arrive from outside and the upload sensor registers them
(an observation per organization). `incoming_invoices` is the parsed and validated documents of
one organization (a partition); `intake_job` materializes it with the ids the sensor hands over,
`retry_failed_invoices_job` with the FAILED ones moved back. Materializing a partition by hand
without ids processes every document of that organization still waiting.
"""

import json
import time
from functools import partial

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    AssetSelection,
    AssetSpec,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    define_asset_job,
    in_process_executor,
    job,
    op,
    run_failure_sensor,
    sensor,
)
from pydantic import Field
from sqlalchemy import select

from invoice_pipelines.catalog import OWNERS, defined_here
from invoice_pipelines.core.export_months import export_months
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_months import validated_outside_months
from invoice_pipelines.db.tables import incoming_invoices as incoming_invoices_table
from invoice_pipelines.db.tenancy import (
    UnknownOrganization,
    resolve_organization,
    tenant_transaction,
)
from invoice_pipelines.einvoice.classes import POLICY_SETTING, PolicyError, checked_policy
from invoice_pipelines.intake.checks import (
    HOW_TO_REVIEW,
    INTAKE_RUN_CHECKS,
    TABLE_ROWS,
    discounts_not_expiring,
    failed_documents_table,
    in_review_table,
    no_documents_waiting_for_review_result,
    no_failed_documents_result,
    no_stuck_documents,
    not_exportable_table,
    validated_invoices_exportable_result,
    way_out,
)
from invoice_pipelines.intake.duplicate_uploads import duplicates_table, invoice_named
from invoice_pipelines.intake.incoming_invoices import (
    documents_in_review,
    failed_documents,
    organization_stats,
)
from invoice_pipelines.intake.notices import rejected_documents
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.intake.pipeline import IntakeSummary, process_documents, retry_documents
from invoice_pipelines.intake.redispatch import DEPTH_TAG, redispatch_batches, run_depth
from invoice_pipelines.intake.supplier_defs import (
    change_supplier_register_job,
    register_materialization,
    supplier_register,
)
from invoice_pipelines.intake.uploads import ScanResult, ScanState, scan_uploads
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.mail import SmtpMailer
from invoice_pipelines.resources.ocr import OcrEngine
from invoice_pipelines.resources.peppol import PeppolAccessPoint
from invoice_pipelines.resources.upload_stores import UploadStore
from invoice_pipelines.scheduled_checks import scheduled_checks
from invoice_pipelines.settings import positive_number
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    REQUESTED_BY_HELP,
    organizations_partitions,
    partition_run_tags,
    who_asked,
)
from invoice_pipelines.tenants.refusals import organization_or_refuse, refused
from invoice_pipelines.tenants.run_coordinator import INTAKE_RUN_TAGS

uploads = AssetSpec(
    "uploads",
    metadata=defined_here(),
    group_name="intake",
    partitions_def=organizations_partitions,
    kinds={"files"},
    owners=OWNERS,
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


def _waiting(engine, organization_id: int) -> list[int]:
    with tenant_transaction(engine, organization_id) as conn:
        return list(
            conn.execute(
                select(incoming_invoices_table.c.id)
                .where(
                    incoming_invoices_table.c.organization_id == organization_id,
                    incoming_invoices_table.c.status.in_(
                        [Status.UPLOADED.value, Status.CREATED.value]
                    ),
                )
                .order_by(incoming_invoices_table.c.id)
            ).scalars()
        )


def _organization(engine, partition_key: str) -> dict:
    try:
        return resolve_organization(engine, partition_key)
    except UnknownOrganization:
        raise refused(
            f"There is no organization {partition_key!r} (its partition outlived it)."
        ) from None


def _policy_metadata(context: AssetExecutionContext, org: dict) -> dict:
    """The intake policy this run applied; a stored policy that names an unknown class or action
    (written past `incoming policy`, which refuses it) is said, and the defaults applied."""
    stored = (org.get("settings") or {}).get(POLICY_SETTING)
    try:
        return {"intake_policy": MetadataValue.json(checked_policy(stored))}
    except PolicyError as exc:
        context.log.warning(
            f"organization {org['slug']}: {exc}; the default intake policy applied (fix it with "
            f"invoice-pipelines incoming policy --org {org['slug']} --set CLASS=ACTION)"
        )
        return {
            "intake_policy": MetadataValue.json(checked_policy(None)),
            "intake_policy_error": MetadataValue.text(f"{exc}; the defaults applied"),
        }


def _rejected_table(rows) -> str:
    """The organization's rejected documents and the state of each one's supplier notice."""
    return markdown_table(
        ("id", "file", "invoice number", "class", "notice to", "notice", "why not sent"),
        (
            (
                r.incoming_invoice_id,
                r.filename or "",
                r.invoice_number or "",
                ".".join(filter(None, (r.einvoice_class, r.einvoice_reason))),
                r.recipient or "(no address)",
                r.status,
                (r.error or "")[:160],
            )
            for r in rows
        ),
        align="r",
    )


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
        metadata["rejected_documents"] = MetadataValue.md(_rejected_table(rejected_rows))
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
    # scans are read by OCR here (CPU-bound Tesseract or Google Vision's quota): the `ocr` pool
    # limits how many such runs work at once across all organizations (deploy/dagster.yaml)
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
    database: Database,
    upload_store: UploadStore,
    ocr_engine: OcrEngine,
    document_parser: DocumentParser,
):
    engine = database.get_engine()
    org = _organization(engine, context.partition_key)
    retried = 0
    if config.retry_failed:
        who = who_asked(config.requested_by, context.run.tags)
        ids, not_retried = retry_documents(
            engine, org["id"], config.document_ids or None, requested_by=who
        )
        retried = len(ids)
        for doc_id, reason in not_retried.items():
            context.log.warning(f"document {doc_id} not retried: {reason}")
        if config.document_ids and not ids:
            raise refused("None of the given documents is FAILED, so none can be retried.")
    else:
        ids = config.document_ids or _waiting(engine, org["id"])
    summary = process_documents(
        engine,
        upload_store,
        org["id"],
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
    first, last = export_months()
    with tenant_transaction(engine, org["id"]) as conn:
        stats = organization_stats(conn, org["id"])
        failed = failed_documents(conn, org["id"], sorted(summary.failures))
        outside_count, outside = validated_outside_months(
            conn, first, last, organization_id=org["id"], limit=TABLE_ROWS
        )
        waiting, waiting_docs = documents_in_review(
            conn, organization_id=org["id"], limit=TABLE_ROWS
        )
        rejected = rejected_documents(conn, org["id"], limit=TABLE_ROWS)
    for doc in failed:
        why = ", ".join(doc["rules"]) or doc["message"]
        context.log.warning(f"document {doc['id']} ({doc['filename']}) FAILED: {why}")
    for doc in outside[:10]:
        context.log.warning(
            f"document {doc['id']} ({doc['filename']}) is VALIDATED but no export can book it, "
            f"it is dated {doc['month']}, {way_out(doc, first, last)}"
        )
    not_exportable = (outside_count, outside, not_exportable_table(outside, first, last))
    in_review = (sum(waiting.values()), waiting_docs)
    metadata = _metadata(summary, stats, failed, retried, not_exportable, in_review, rejected)
    metadata.update(_policy_metadata(context, org))
    if summary.registered:
        # the first-invoice policy registered suppliers: the register's asset shows them
        context.log_event(register_materialization(engine, org))
    yield MaterializeResult(metadata=metadata)
    yield no_failed_documents_result(summary.processed, failed)
    yield no_documents_waiting_for_review_result(*in_review)
    yield validated_invoices_exportable_result(outside_count, outside, first, last)


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


def intake_run_request(
    slug: str, document_ids: list[int], run_key: str, tags: dict[str, str] | None = None
) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        partition_key=slug,
        run_config=RunConfig(
            ops={"incoming_invoices": IncomingInvoicesConfig(document_ids=document_ids)}
        ),
        # upload_sensor asks only for known organizations; the intake lane leaves the queue first
        # and never waits behind the organization's bulk runs (tenants/run_coordinator.py)
        tags={**partition_run_tags(slug), **INTAKE_RUN_TAGS, **(tags or {})},
    )


@run_failure_sensor(
    name="intake_failure_sensor",
    monitored_jobs=[intake_job],
    request_job=intake_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="When an intake_job run fails, sends each of its documents still waiting again in "
    "a run of its own: one document that stops a run stops only itself. A document is taken up "
    "at most 3 times; then it is FAILED (IP-PROC-02) instead of dispatched again.",
)
def intake_failure_sensor(context: RunFailureSensorContext, database: Database):
    run = context.dagster_run
    slug = run.tags.get("dagster/partition")
    if not slug:
        return SkipReason(f"run {run.run_id} has no organization partition")
    config = ((run.run_config or {}).get("ops") or {}).get("incoming_invoices") or {}
    document_ids = (config.get("config") or {}).get("document_ids") or []
    if (config.get("config") or {}).get("retry_failed"):
        return SkipReason(f"run {run.run_id} was a retry of FAILED documents")
    again = redispatch_batches(
        database.get_engine(),
        slug,
        document_ids,
        failed_run_id=run.run_id,
        depth=run_depth(run.tags),
    )
    if not again:
        return SkipReason(f"run {run.run_id} failed; none of its documents is to be sent again")
    context.log.warning(
        f"intake run {run.run_id} failed; its {len(again)} waiting documents go again, one run each"
    )
    return [
        intake_run_request(
            item.organization_slug, [item.document_id], item.run_key, {DEPTH_TAG: str(item.depth)}
        )
        for item in again
    ]


# Dagster's sensor daemon looks at its sensors once per loop of at least 5 s
# (MIN_INTERVAL_LOOP_TIME) and skips a sensor whose last tick started less than its interval ago:
# at 5 the next loop often came a few milliseconds early and the tick waited a second loop (10 s,
# seen in `bench latency`), at 4 it ticks every loop. A tick lists each organization's drop zone
# once, and again those where it saw a new file (the second look).
UPLOAD_SENSOR_INTERVAL_SECONDS = 4
# a longer settle period waits for the next tick instead of holding the sensor's tick
SECOND_LOOK_MAX_SECONDS = 5.0


def _merged(first: ScanResult, second: ScanResult, relisted: set[str]) -> ScanResult:
    """One tick's result from its two looks (the second, over the first's state, listed the
    organizations `relisted` again)."""
    second.state.pending = {
        **{
            key: signature
            for key, signature in first.state.pending.items()
            if key.split("/", 1)[0] not in relisted
        },
        **second.state.pending,
    }
    by_organization = {slug: list(counts) for slug, counts in first.by_organization.items()}
    for slug, (registered, duplicates) in second.by_organization.items():
        counts = by_organization.setdefault(slug, [0, 0])
        counts[0] += registered
        counts[1] += duplicates
    return ScanResult(
        state=second.state,
        batches=first.batches + second.batches,
        registered=first.registered + second.registered,
        duplicates=first.duplicates + second.duplicates,
        waiting=first.waiting - second.registered - second.duplicates,
        errors=first.errors + second.errors,
        by_organization=by_organization,
        duplicate_uploads=_merged_duplicates(first, second),
    )


def _merged_duplicates(first: ScanResult, second: ScanResult) -> dict[str, list[dict]]:
    """The duplicate uploads of both looks of a tick, by organization."""
    merged = {slug: list(rows) for slug, rows in first.duplicate_uploads.items()}
    for slug, rows in second.duplicate_uploads.items():
        merged.setdefault(slug, []).extend(rows)
    return merged


def _duplicates_metadata(rows: list[dict]) -> dict:
    """The duplicate uploads of a tick, each with the invoice it duplicates (the observation's
    `duplicate_uploads` table; nothing when there were none)."""
    if not rows:
        return {}
    return {"duplicate_uploads": MetadataValue.md(duplicates_table(rows))}


# by name, not the job object: Definitions binds the shared resources to the job and rebuilds a
# sensor that holds it, and that rebuild passes `owners=[]`, a beta parameter (a BetaWarning
# in every process that loads the code, each run included)
@sensor(
    job_name="intake_job",
    # the daemon's loop floor (5 s): a dropped file is seen within 5 s and registered on the next
    # look, once it has not changed between the two (docs/intake.md)
    minimum_interval_seconds=UPLOAD_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers settled files in the upload store (an observation of `uploads` per "
    "organization) and launches intake_job runs in batches of document ids; documents still "
    "waiting after 15 minutes are dispatched again.",
)
def upload_sensor(context: SensorEvaluationContext, database: Database, upload_store: UploadStore):
    state = ScanState.from_json(json.loads(context.cursor) if context.cursor else None)
    # Only organizations that have their partition: a new one's files wait for
    # organizations_sensor's next tick (registering them now would move the dispatch mark past
    # documents no run could be launched for).
    known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    settle = float(positive_number("INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS", float))
    scan = partial(
        scan_uploads,
        database.get_engine(),
        upload_store,
        settle_seconds=settle,
        batch_size=int(positive_number("INVOICE_PIPELINES_INTAKE_BATCH_SIZE")),
    )
    result = scan(state, only_organizations=known)
    # A file seen for the first time gets its second look settle_seconds later in this tick, not
    # a tick later: the same size and mtime after that long is what "settled" means
    # (INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS); only its organizations' drop zones are listed again.
    fresh = {key.split("/", 1)[0] for key in set(result.state.pending) - set(state.pending)}
    if fresh and settle <= SECOND_LOOK_MAX_SECONDS:
        time.sleep(settle)
        relisted = fresh & known
        result = _merged(result, scan(result.state, only_organizations=relisted), relisted)
    for error in result.errors:
        context.log.error(f"upload not registered: {error}")
    for slug, rows in sorted(result.duplicate_uploads.items()):
        for row in rows[:20]:
            context.log.info(
                f"{slug}: {row['filename']!r} is a duplicate upload (upload {row['upload_id']}): "
                f"the same bytes as {invoice_named(row)}"
            )
    requests = [
        intake_run_request(batch.organization_slug, batch.document_ids, batch.run_key)
        for batch in result.batches
    ]
    observations = [
        AssetObservation(
            asset_key=uploads.key,
            partition=slug,
            metadata={
                "registered": MetadataValue.int(registered),
                "duplicates": MetadataValue.int(duplicates),
                **_duplicates_metadata(result.duplicate_uploads.get(slug, [])),
            },
        )
        for slug, (registered, duplicates) in sorted(result.by_organization.items())
        if registered or duplicates
    ]
    cursor = json.dumps(result.state.to_json(), sort_keys=True)
    if not requests and not observations:
        context.update_cursor(cursor)
        return SkipReason(
            f"registered {result.registered}, duplicates {result.duplicates}, waiting {result.waiting}"
        )
    return SensorResult(run_requests=requests, asset_events=observations, cursor=cursor)


incoming_invoices_checks_job, incoming_invoices_checks_schedule = scheduled_checks(
    "incoming_invoices_checks",
    [no_stuck_documents, discounts_not_expiring],
    cron="*/5 * * * *",
    job_description="Evaluates the scheduled checks of incoming_invoices, no_stuck_documents and "
    "discounts_not_expiring (all organizations); the intake run evaluates the others.",
    schedule_description="Every 5 minutes: warns when a document has waited in UPLOADED/CREATED "
    "for more than 5 minutes, and when an early-payment discount runs out within 3 days.",
)


class ReviewConfig(Config):
    organization: str = Field(description="Organization slug or id.")
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
def review_incoming_invoice(context: OpExecutionContext, config: ReviewConfig, database: Database):
    from invoice_pipelines.db.incoming_status import StaleDocument
    from invoice_pipelines.intake.review import ReviewError, review_document

    engine = database.get_engine()
    org = organization_or_refuse(engine, config.organization)
    try:
        result = review_document(
            engine,
            org["id"],
            config.document_id,
            reviewed_by=config.reviewed_by,
            corrections=config.corrections,
            confirm=config.confirm,
            reject=config.reject_reason or None,
            expected_version=config.expected_version,
            reopen=config.reopen,
            reason=config.reason or None,
        )
    except (ReviewError, StaleDocument) as exc:
        raise refused(str(exc)) from None
    context.log.info(
        f"incoming invoice {result.document_id}: {result.status}; corrected "
        f"{sorted(result.corrected) or 'nothing'}"
    )
    if config.confirm and result.problems:
        raise refused(
            f"incoming invoice {result.document_id} stays in review, nothing changed (the "
            "refusal is its finding IP-REV-13): " + "; ".join(result.problems)
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
    database: Database,
    mailer: SmtpMailer,
    peppol_access_point: PeppolAccessPoint,
):
    from invoice_pipelines.intake.notices import (
        organizations_with_pending_notices,
        send_supplier_notices,
    )
    from invoice_pipelines.intake.peppol_responses import (
        answer_rejections,
        organizations_awaiting_answers,
    )

    engine = database.get_engine()
    for organization_id in organizations_awaiting_answers(engine):
        answered = answer_rejections(engine, peppol_access_point, organization_id)
        context.log.info(
            f"organization {organization_id}: {len(answered.sent)} Invoice Response(s) sent over "
            f"Peppol, {len(answered.failed)} failed, {len(answered.unknown)} unknown, "
            f"{len(answered.by_notice)} answered by the notice"
        )
        for message_id, why in {**answered.failed, **answered.waiting}.items():
            context.log.warning(f"received Peppol message {message_id}: no answer yet: {why}")
    for organization_id in organizations_with_pending_notices(engine):
        summary = send_supplier_notices(engine, mailer, organization_id)
        context.log.info(
            f"organization {organization_id}: {len(summary.sent)} notice(s) sent, "
            f"{len(summary.failed)} failed, {len(summary.unknown)} unknown"
        )
        for notice_id, why in summary.failed.items():
            context.log.warning(f"supplier notice {notice_id} not sent: {why}")


@job(
    executor_def=in_process_executor,
    description="Sends the pending supplier notices of rejected documents (every organization).",
)
def supplier_notices_job():
    send_supplier_notices_op()


supplier_notices_schedule = ScheduleDefinition(
    name="supplier_notices_schedule",
    job=supplier_notices_job,
    cron_schedule="*/5 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 5 minutes: the notices of documents the intake rejected, each sent once.",
)


defs = Definitions(
    assets=[uploads, incoming_invoices, supplier_register],
    asset_checks=[no_stuck_documents, discounts_not_expiring],
    jobs=[
        intake_job,
        retry_failed_invoices_job,
        incoming_invoices_checks_job,
        review_incoming_invoice_job,
        supplier_notices_job,
        change_supplier_register_job,
    ],
    sensors=[upload_sensor, intake_failure_sensor],
    schedules=[incoming_invoices_checks_schedule, supplier_notices_schedule],
)
