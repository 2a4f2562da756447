"""Intake area: upload sensor, intake and retry jobs, per-organization stats, the stuck-document check."""

import json
from datetime import timedelta
from typing import Literal

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunConfig,
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
    sensor,
)
from pydantic import Field

from invoice_pipelines.db.tenancy import (
    resolve_organization,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.intake.documents import organization_stats, stuck_documents
from invoice_pipelines.intake.pipeline import (
    IntakeSummary,
    process_documents,
    retry_documents,
    shared_parser,
)
from invoice_pipelines.intake.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.ocr import OcrEngine
from invoice_pipelines.resources.storage import UploadStore
from invoice_pipelines.settings import max_upload_bytes, positive_number
from invoice_pipelines.tenants.partitions import organization_tags, organizations_partitions
from invoice_pipelines.tenants.refusals import organization_or_refuse, refused

STATS_KEY = AssetKey("incoming_invoice_stats")
STUCK_AFTER = timedelta(minutes=5)


class IntakeConfig(Config):
    organization: str = Field(
        description="Organization slug or id. The run is tagged with it, so it waits while "
        "another run of the same organization works."
    )
    document_ids: list[int] = Field(
        description="Incoming invoice ids of this organization, UPLOADED or CREATED; others are "
        "skipped with the reason."
    )


class ChosenDocuments(Config):
    kind: Literal["document_ids"] = "document_ids"
    ids: list[int] = Field(description="FAILED incoming invoices of this organization to retry.")


class AllFailedDocuments(Config):
    kind: Literal["all_failed"] = "all_failed"


class RetryConfig(Config):
    organization: str = Field(
        description="Organization slug or id. The run is tagged with it, so it waits while "
        "another run of the same organization works."
    )
    documents: ChosenDocuments | AllFailedDocuments = Field(
        discriminator="kind",
        description="Exactly one of: document_ids (ids: the FAILED documents to retry) or "
        "all_failed ({}: every FAILED document of the organization).",
    )
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. Empty: the user who launched the run "
        "(dagster/user tag), else launchpad.",
    )


def _stats_event(engine, org: dict) -> AssetMaterialization:  # noqa: ANN001
    with tenant_transaction(engine, org["id"]) as conn:
        stats = organization_stats(conn, org["id"])
    return AssetMaterialization(
        asset_key=STATS_KEY, partition=org["slug"], metadata=_stats_metadata(stats)
    )


def _stats_metadata(stats: dict) -> dict:
    metadata = {
        "total": MetadataValue.int(stats["total"]),
        "success_rate_pct": MetadataValue.float(stats["success_rate"]),
        "validated_rate_pct": MetadataValue.float(stats["validated_rate"]),
        "failure_rate_pct": MetadataValue.float(stats["failure_rate"]),
        "by_status": MetadataValue.json(stats["by_status"]),
    }
    for status, count in stats["by_status"].items():
        metadata[f"count_{status.lower()}"] = MetadataValue.int(count)
    if stats["avg_processing_seconds"] is not None:
        metadata["avg_processing_seconds"] = MetadataValue.float(stats["avg_processing_seconds"])
    return metadata


def _process(
    context: OpExecutionContext,
    database: Database,
    upload_store: UploadStore,
    ocr_engine: OcrEngine,
    org: dict,
    ids: list[int],
) -> IntakeSummary:
    engine = database.get_engine()
    timeout = float(positive_number("INVOICE_PIPELINES_PARSE_TIMEOUT_SECONDS", float))
    parser = shared_parser(timeout_s=timeout, max_bytes=max_upload_bytes())
    summary = process_documents(
        engine,
        upload_store,
        org["id"],
        ids,
        parser=parser,
        ocr=ocr_engine,
        max_bytes=max_upload_bytes(),
    )
    for doc_id, reason in summary.skipped.items():
        context.log.warning(f"document {doc_id} skipped: {reason}")
    for doc_id, reason in summary.failures.items():
        context.log.info(f"document {doc_id} FAILED: {reason}")
    context.log_event(_stats_event(engine, org))
    return summary


@op(description="Parse and validate the given incoming invoices of one organization.")
def process_incoming_invoices(
    context: OpExecutionContext,
    config: IntakeConfig,
    database: Database,
    upload_store: UploadStore,
    ocr_engine: OcrEngine,
) -> dict:
    org = organization_or_refuse(database.get_engine(), config.organization)
    if not config.document_ids:
        raise refused("document_ids is empty: give the ids of the documents to process.")
    summary = _process(context, database, upload_store, ocr_engine, org, config.document_ids)
    if summary.requested and summary.skipped and len(summary.skipped) == summary.requested:
        raise Failure(
            "none of the requested documents can be processed",
            metadata={
                "skipped": MetadataValue.json({str(k): v for k, v in summary.skipped.items()})
            },
        )
    context.add_output_metadata(summary.as_metadata())
    return summary.as_metadata()


@op(description="Move FAILED incoming invoices back to CREATED and process them again.")
def retry_failed_incoming_invoices(
    context: OpExecutionContext,
    config: RetryConfig,
    database: Database,
    upload_store: UploadStore,
    ocr_engine: OcrEngine,
) -> dict:
    engine = database.get_engine()
    org = organization_or_refuse(engine, config.organization)
    chosen = config.documents.ids if isinstance(config.documents, ChosenDocuments) else None
    if chosen is not None and not chosen:
        raise refused(
            "documents.document_ids.ids is empty: give the ids of the documents to retry."
        )
    retried, not_retried = retry_documents(
        engine,
        org["id"],
        chosen,
        requested_by=config.requested_by or context.run.tags.get("dagster/user") or "launchpad",
    )
    for doc_id, reason in not_retried.items():
        context.log.warning(f"document {doc_id} not retried: {reason}")
    summary = _process(context, database, upload_store, ocr_engine, org, retried)
    metadata = {**summary.as_metadata(), "retried": len(retried), "refused": len(not_retried)}
    context.add_output_metadata(metadata)
    return metadata


@job(
    executor_def=in_process_executor,
    description="Parse and validate incoming invoices of one organization: launched by "
    "upload_sensor or by hand with ids. Tagged with its organization at launch.",
)
def intake_job():
    process_incoming_invoices()


@job(
    executor_def=in_process_executor,
    description="Retry FAILED incoming invoices of one organization (chosen ids or all). Tagged "
    "with its organization at launch.",
)
def retry_failed_invoices_job():
    retry_failed_incoming_invoices()


# by name, not the job object: Definitions binds the shared resources to the job and rebuilds a
# sensor that holds it, and that rebuild passes `owners=[]`, a beta parameter (a BetaWarning
# in every process that loads the code, each run included)
@sensor(
    job_name="intake_job",
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers settled files in the upload store and launches intake runs in batches.",
)
def upload_sensor(context: SensorEvaluationContext, database: Database, upload_store: UploadStore):
    state = ScanState.from_json(json.loads(context.cursor) if context.cursor else None)
    result = scan_uploads(
        database.get_engine(),
        upload_store,
        state,
        settle_seconds=float(positive_number("INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS", float)),
        batch_size=int(positive_number("INVOICE_PIPELINES_INTAKE_BATCH_SIZE")),
    )
    for error in result.errors:
        context.log.error(f"upload not registered (will retry): {error}")
    requests = [
        RunRequest(
            run_key=batch.run_key,
            run_config=RunConfig(
                ops={
                    "process_incoming_invoices": IntakeConfig(
                        organization=batch.organization_slug, document_ids=batch.document_ids
                    )
                }
            ),
            tags=organization_tags(batch.organization_slug),
        )
        for batch in result.batches
    ]
    cursor = json.dumps(result.state.to_json(), sort_keys=True)
    if not requests:
        context.update_cursor(cursor)
        return SkipReason(
            f"registered {result.registered}, duplicates {result.duplicates}, waiting {result.waiting}"
        )
    return SensorResult(run_requests=requests, cursor=cursor)


@asset(
    key=STATS_KEY,
    partitions_def=organizations_partitions,
    group_name="intake",
    description="Incoming invoices per organization: counts by status, success and failure rate, "
    "average processing time. Intake runs record it after every batch, so the UI plots it over time.",
)
def incoming_invoice_stats(context: AssetExecutionContext, database: Database) -> MaterializeResult:
    engine = database.get_engine()
    org = resolve_organization(engine, context.partition_key)
    with tenant_transaction(engine, org["id"]) as conn:
        stats = organization_stats(conn, org["id"])
    return MaterializeResult(metadata=_stats_metadata(stats))


@asset(
    group_name="intake",
    check_specs=[AssetCheckSpec("no_stuck_documents", asset="intake_health")],
    description="Documents waiting in UPLOADED/CREATED, across organizations; the check fails "
    "when any has waited more than 5 minutes.",
)
def intake_health(context: AssetExecutionContext, database: Database):
    with system_transaction(database.get_engine()) as conn:
        stuck = stuck_documents(conn, older_than=STUCK_AFTER)
    by_org: dict[str, int] = {}
    for doc in stuck:
        by_org[doc["slug"]] = by_org.get(doc["slug"], 0) + 1
    yield MaterializeResult(metadata={"stuck_documents": MetadataValue.int(len(stuck))})
    yield AssetCheckResult(
        check_name="no_stuck_documents",
        passed=not stuck,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "stuck_documents": MetadataValue.int(len(stuck)),
            "by_organization": MetadataValue.json(by_org),
            "oldest": MetadataValue.json(
                [
                    {"id": d["id"], "organization": d["slug"], "status": d["status"]}
                    for d in stuck[:20]
                ]
            ),
        },
        description=f"{len(stuck)} documents waiting more than {int(STUCK_AFTER.total_seconds() // 60)} minutes",
    )


intake_health_job = define_asset_job("intake_health_job", selection=["intake_health"])

intake_health_schedule = ScheduleDefinition(
    name="intake_health_schedule",
    job=intake_health_job,
    cron_schedule="*/5 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Checks every 5 minutes that no document is stuck in UPLOADED/CREATED.",
)

defs = Definitions(
    assets=[incoming_invoice_stats, intake_health],
    jobs=[intake_job, retry_failed_invoices_job, intake_health_job],
    sensors=[upload_sensor],
    schedules=[intake_health_schedule],
)
