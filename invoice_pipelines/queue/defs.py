"""Dagster side of the queue's jobs over sales invoices (kinds `documents`, `communications` and
`credit_notes`): `invoice_batch_jobs_sensor` launches one run per pending job once the invoicing
job it follows has finished (and resumes a job whose run failed); `invoice_batch_job` runs one job
with the work its kind registers: documents from `documents.batch.documents_work`, communications
from `delivery.batch.communications_work` over the job's channel, credit notes from
`billing.credit_note_jobs` (each issued exactly once). The invoicing kinds have their own job and
sensor in `billing/defs.py`.
"""

import json
from typing import Literal

from dagster import (
    AssetMaterialization,
    Config,
    DagsterRunStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    MetadataValue,
    OpExecutionContext,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)
from pydantic import Field

from invoice_pipelines.billing.credit_note_jobs import (
    enqueue_credit_notes,
    issued_credit_notes,
    run_credit_note_job,
)
from invoice_pipelines.billing.defs import CreditNoteItemConfig
from invoice_pipelines.core.channels import delivery_channel_enum
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.delivery.batch import communications_work
from invoice_pipelines.delivery.pipeline import (
    AlreadySending,
    EmailChannel,
    TextChannel,
    already_sending_message,
)
from invoice_pipelines.documents.batch import combined_pdf_of, documents_work, run_invoice_job
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG, job_metadata, sentence
from invoice_pipelines.queue.items import (
    DEFAULT_CHUNK_SIZE,
    enqueue_invoice_job,
    ready_invoice_jobs,
)
from invoice_pipelines.queue.jobs import BatchJob, UnknownBatchJob, get_batch_job, processing_jobs
from invoice_pipelines.queue.requests import (
    COMMUNICATIONS,
    CREDIT_NOTES,
    DOCUMENTS,
    INVOICE_BATCH_JOB_KINDS,
    BatchRequestError,
)
from invoice_pipelines.queue.transitions import job_request
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.file_stores import FileStore
from invoice_pipelines.resources.mail import SmtpMailer
from invoice_pipelines.resources.messaging import TextMessageProvider
from invoice_pipelines.resources.renderer import DocumentRenderer
from invoice_pipelines.tenants.partitions import REQUESTED_BY_HELP, organization_tags, who_asked
from invoice_pipelines.tenants.refusals import refused

# -- the op and its config --------------------------------

OP = "process_invoice_batch_job"


DeliveryChannel = delivery_channel_enum("DeliveryChannel")


class QueuedInvoiceJob(Config):
    kind: Literal["queued_job"] = "queued_job"
    batch_job_id: int = Field(
        description="A documents, communications or credit notes job of the queue to start or "
        "resume (what invoice_batch_jobs_sensor launches; a finished job is reported as it is)."
    )


class NewInvoiceJob(Config):
    invoice_ids: list[int] = Field(description="Sales invoice ids, in the order to process them.")
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )


class DocumentsJobRequest(NewInvoiceJob):
    kind: Literal["documents"] = "documents"
    combined_pdf: bool = Field(
        default=False,
        description="Also write one PDF of all the job's invoices in this order, for printing.",
    )


class CommunicationsJobRequest(NewInvoiceJob):
    kind: Literal["communications"] = "communications"
    channel: DeliveryChannel = Field(
        default=DeliveryChannel.email, description="email, sms or whatsapp."
    )
    resend: bool = Field(
        default=False,
        description="Send again invoices that were sent before over this channel (once).",
    )


class CreditNotesJobRequest(Config):
    kind: Literal["credit_notes"] = "credit_notes"
    items: list[CreditNoteItemConfig] = Field(
        description="The credit notes, in the order to issue them: invoice number, reason, and "
        "optionally lines or net amounts per VAT rate and a date. Each is issued once; a refused "
        "one is recorded with its reason and the others go on."
    )
    issue_date: str | None = Field(
        default=None,
        description="YYYY-MM-DD for the items that give no date. Empty: today in the "
        "organization's time zone.",
    )
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )


def _credit_items(request: CreditNotesJobRequest) -> list[dict]:
    """The launchpad's items as a queue request lists them (checked when it is queued)."""
    return [
        {key: value for key, value in item.model_dump().items() if value is not None}
        for item in request.items
    ]


class InvoiceBatchConfig(Config):
    # at the top of the op's config, where the run coordinator finds it: a launchpad run then
    # carries the organization tag and waits for the organization's other runs like the rest
    organization: str | None = Field(
        default=None,
        description="Organization slug or id: the invoices' organization for a new documents or "
        "communications request (required there); with queued_job, the job's (checked if given).",
    )
    request: (
        QueuedInvoiceJob | DocumentsJobRequest | CommunicationsJobRequest | CreditNotesJobRequest
    ) = Field(
        discriminator="kind",
        description="Exactly one of: queued_job (a job of the queue), documents (write the "
        "invoices' documents, optionally one combined PDF), communications (write what is "
        "missing, then send each invoice once over a channel), credit_notes (issue credit notes "
        "for sales invoices, each once).",
    )
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE,
        ge=1,
        le=5000,
        description="Invoices (or credit notes) per chunk; a cancel takes effect at the next "
        "chunk.",
    )


def _new_job(context: OpExecutionContext, engine, organization: str | None, request) -> int:
    if not (organization or "").strip():
        raise refused(f"A new {request.kind} request needs the organization.")
    who = who_asked(request.requested_by, context.run.tags)
    if isinstance(request, CreditNotesJobRequest):
        return enqueue_credit_notes(
            engine,
            organization.strip(),
            _credit_items(request),
            issue_date=request.issue_date,
            created_by=who,
            runner=context.run.run_id,  # taken by this run: the sensor leaves it alone
        )
    options = (
        {"combined_pdf": request.combined_pdf}
        if isinstance(request, DocumentsJobRequest)
        else {"channel": request.channel.value, "resend": request.resend}
    )
    return enqueue_invoice_job(
        engine,
        organization.strip(),
        request.kind,
        request.invoice_ids,
        created_by=who,
        runner=context.run.run_id,  # taken by this run: the sensor leaves it alone
        **options,
    )


@op(
    description="Process one documents, communications or credit notes job of the batch jobs "
    "queue, chunk by chunk (cancel at the next chunk), and record it on the documents, delivery "
    "or sales invoices asset."
)
def process_invoice_batch_job(
    context: OpExecutionContext,
    config: InvoiceBatchConfig,
    database: Database,
    document_store: FileStore,
    document_renderer: DocumentRenderer,
    mailer: SmtpMailer,
    text_messages: TextMessageProvider,
) -> dict:
    engine = database.get_engine()
    try:
        if isinstance(config.request, QueuedInvoiceJob):
            job_id = get_batch_job(engine, config.request.batch_job_id).id
        else:
            job_id = _new_job(context, engine, config.organization, config.request)
        batch = get_batch_job(engine, job_id)
        if (config.organization or "").strip() and config.organization.strip() not in (
            batch.organization_slug,
            str(batch.organization_id),
        ):
            raise refused(
                f"Batch job {batch.id} belongs to organization {batch.organization_slug!r}, "
                f"not {config.organization.strip()!r}."
            )
    except UnknownBatchJob:
        raise refused(f"There is no batch job {config.request.batch_job_id}.") from None
    except BatchRequestError as exc:
        raise refused(sentence(str(exc))) from None
    if batch.kind not in INVOICE_BATCH_JOB_KINDS:
        raise refused(f"Batch job {batch.id} is a {batch.kind} job; batch_invoicing_job runs it.")
    run_id = context.run.run_id
    if batch.kind == CREDIT_NOTES:
        return _credit_notes_run(context, engine, batch, config.chunk_size)
    if batch.kind == DOCUMENTS:
        work = documents_work(engine, document_store, builder=document_renderer, run_id=run_id)
    else:

        def channel_for(name: str):
            if name == "email":
                return EmailChannel(mailer)
            return TextChannel(text_messages, whatsapp=name == "whatsapp")

        work = communications_work(
            engine, document_store, channel_for, builder=document_renderer, run_id=run_id
        )

    try:
        batch = run_invoice_job(
            engine,
            job_id,
            work,
            store=document_store,
            chunk_size=config.chunk_size,
            runner=run_id,
            on_progress=_progress(context),
        )
    except AlreadySending:
        raise refused(already_sending_message(batch.organization_slug)) from None
    metadata = job_metadata(batch)
    combined = combined_pdf_of(engine, batch) if batch.kind == DOCUMENTS else None
    if combined:
        metadata.update(
            combined_pdf=MetadataValue.path(combined["path"]),
            combined_pdf_bytes=MetadataValue.int(combined["size_bytes"]),
            combined_pdf_pages=MetadataValue.int(combined["pages"]),
            combined_pdf_missing=MetadataValue.json(combined["missing"]),
        )
    if batch.status == "failed":
        raise Failure(f"batch job {batch.id} failed: {batch.failure_reason}", metadata=metadata)
    if batch.status == "pending":
        context.log.info(f"batch job {batch.id} waits for the invoicing job it follows")
    else:
        asset = "sales_invoice_documents"
        if batch.kind == COMMUNICATIONS:
            channel = _request_of(engine, batch).get("channel") or "email"
            asset = "invoice_emails" if channel == "email" else "invoice_text_messages"
        context.log_event(
            AssetMaterialization(asset, partition=batch.organization_slug, metadata=metadata)
        )
    context.add_output_metadata(metadata)
    return {"batch_job_id": batch.id, "status": batch.status}


def _progress(context: OpExecutionContext):
    def progress(b: BatchJob) -> None:
        context.log.info(
            f"batch job {b.id} ({b.kind}): {b.processed_count:,}/{b.total_count:,} processed, "
            f"{b.successful_count:,} done, {b.failed_count:,} failed, {b.skipped_count:,} skipped"
        )

    return progress


def _credit_notes_run(
    context: OpExecutionContext, engine, batch: BatchJob, chunk_size: int
) -> dict:
    """A credit notes job: each credit note issued once, refusals recorded per item."""
    batch = run_credit_note_job(
        engine,
        batch.id,
        chunk_size=chunk_size,
        runner=context.run.run_id,
        on_progress=_progress(context),
    )
    metadata = job_metadata(batch)
    issued = issued_credit_notes(engine, batch)
    if issued:
        metadata["credit_notes"] = MetadataValue.json(issued)
    if batch.status == "failed":
        raise Failure(f"batch job {batch.id} failed: {batch.failure_reason}", metadata=metadata)
    context.log_event(
        AssetMaterialization("sales_invoices", partition=batch.organization_slug, metadata=metadata)
    )
    context.add_output_metadata(metadata)
    return {"batch_job_id": batch.id, "status": batch.status}


def _request_of(engine, batch: BatchJob) -> dict:
    with tenant_transaction(engine, batch.organization_id) as conn:
        return job_request(conn, batch.id)


@job(
    executor_def=in_process_executor,
    description="Documents or communications for a list of invoices, or credit notes, through "
    "the batch jobs queue: launched per queued job by invoice_batch_jobs_sensor, or by hand with "
    "a new request.",
)
def invoice_batch_job():
    process_invoice_batch_job()


def _invoice_run_request(job_id: int, slug: str, run_key: str) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(
            ops={OP: InvoiceBatchConfig(request=QueuedInvoiceJob(batch_job_id=job_id))}
        ),
        tags={**organization_tags(slug), BATCH_JOB_TAG: str(job_id)},
    )


@sensor(
    job_name="invoice_batch_job",
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches one run per pending documents, communications or credit notes job "
    "(run key = job id) once the invoicing job it follows has finished; resumes a job whose run "
    "failed.",
)
def invoice_batch_jobs_sensor(context: SensorEvaluationContext, database: Database):
    engine = database.get_engine()
    state = json.loads(context.cursor) if context.cursor else {}
    launched = set(state.get("launched", []))
    ready = ready_invoice_jobs(engine)
    requests = [
        _invoice_run_request(q.id, q.organization_slug, f"batch-job-{q.id}")
        for q in ready
        if q.id not in launched
    ]
    for q in processing_jobs(engine, kinds=INVOICE_BATCH_JOB_KINDS):
        run = context.instance.get_run_by_id(q.runner) if q.runner else None
        if run is not None and run.status == DagsterRunStatus.FAILURE:
            requests.append(
                _invoice_run_request(
                    q.id, q.organization_slug, f"batch-job-{q.id}-resume-{q.runner}"
                )
            )
    # every ready job is requested now or was before: kept while it is pending (not yet
    # started), so it is requested once; a job that started leaves the cursor
    cursor = json.dumps({"launched": sorted(q.id for q in ready)})
    if not requests:
        context.update_cursor(cursor)
        return SkipReason("no documents, communications or credit notes jobs to start")
    return SensorResult(run_requests=requests, cursor=cursor)


defs = Definitions(jobs=[invoice_batch_job], sensors=[invoice_batch_jobs_sensor])
