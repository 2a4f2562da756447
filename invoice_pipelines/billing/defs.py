"""Billing area: the batch invoicing job, the queue sensor, stuck-job cleanup, cancel/retry, stats."""

import json
from datetime import timedelta

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    Config,
    DagsterRunStatus,
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
    in_process_executor,
    job,
    op,
    sensor,
)
from pydantic import Field

from invoice_pipelines.billing.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    process_batch_job,
)
from invoice_pipelines.billing.queue import (
    DEFAULT_STUCK_AFTER,
    BatchJob,
    BatchRequestError,
    BatchStats,
    batch_stats,
    cancel_batch_job,
    enqueue_customer_lines,
    enqueue_sales_orders,
    fail_stuck_jobs,
    pending_jobs,
    processing_jobs,
    retry_failed,
)
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.partitions import organization_tags, organizations_partitions

STATS_KEY = AssetKey("batch_invoicing_stats")
BATCH_JOB_TAG = "invoice_pipelines/batch_job"
# a job inserted this long before the sensor's cursor moved past its id is still looked at
RECENT_WINDOW = timedelta(minutes=10)
# a failed run is resumed; a run someone cancelled in the UI is not (that was a decision to stop:
# the job then ends through the stuck-job cleanup, and `batch-retry` hands on what it did not reach)
DEAD_RUN_STATUSES = (DagsterRunStatus.FAILURE,)


class LineConfig(Config):
    item_id: int | None = Field(
        default=None, description="item id; price, text and VAT default from it"
    )
    quantity: str = Field(default="1", description="decimal, e.g. 2 or 1.5")
    unit_price: str | None = Field(default=None, description="decimal; default: the item's price")
    description: str | None = None
    vat_rate: str | None = Field(default=None, description="percent, e.g. 19.00")
    vat_category: str | None = Field(default=None, description="S, Z, E, AE, K, G, O")
    line_type: str | None = Field(default=None, description="item, charge or discount")


class CustomerInvoiceConfig(Config):
    customer_id: int
    lines: list[LineConfig]


class BatchInvoicingConfig(Config):
    """Either `batch_job_id` (a queued job: the sensor's runs, re-runs, resumes) or a new request."""

    batch_job_id: int = Field(
        default=0, description="process this queued job; 0 = enqueue a new one"
    )
    organization: str = Field(default="", description="new request: organization slug or id")
    order_ids: list[int] = Field(default_factory=list, description="new request: sales order ids")
    all_reviewed: bool = Field(default=False, description="new request: every reviewed order")
    up_to: str = Field(default="", description="with all_reviewed: orders dated up to YYYY-MM-DD")
    customers: list[CustomerInvoiceConfig] = Field(
        default_factory=list, description="new request: invoice customers with given lines"
    )
    invoice_date: str = Field(default="", description="YYYY-MM-DD; default today (organization)")
    due_days: int = Field(default=0, ge=0)
    created_by: str = Field(default="launchpad")
    chunk_size: int = Field(default=DEFAULT_CHUNK_SIZE, ge=1, description="orders per transaction")
    workers: int = Field(
        default=DEFAULT_WORKERS,
        ge=1,
        le=MAX_WORKERS,
        description="PostgreSQL: chunks in flight at once, one database connection each",
    )


def job_metadata(batch: BatchJob) -> dict:
    metadata = {
        "batch_job_id": MetadataValue.int(batch.id),
        "organization": MetadataValue.text(batch.organization_slug),
        "status": MetadataValue.text(batch.status),
        "total": MetadataValue.int(batch.total_count),
        "invoiced": MetadataValue.int(batch.successful_count),
        "failed": MetadataValue.int(batch.failed_count),
        "skipped": MetadataValue.int(batch.skipped_count),
    }
    if batch.duration_seconds is not None:
        metadata["duration_seconds"] = MetadataValue.float(batch.duration_seconds)
        if batch.duration_seconds > 0:
            metadata["orders_per_second"] = MetadataValue.float(
                round(batch.processed_count / batch.duration_seconds, 1)
            )
    if batch.errors:
        metadata["first_errors"] = MetadataValue.json(batch.errors[:20])
    if batch.failure_reason:
        metadata["failure_reason"] = MetadataValue.text(batch.failure_reason)
    return metadata


def stats_metadata(stats: BatchStats) -> dict:
    metadata = {
        "day": MetadataValue.text(stats.day.isoformat()),
        "jobs_today": MetadataValue.int(stats.jobs),
        "orders_invoiced_today": MetadataValue.int(stats.invoices_created),
        "failed_items_today": MetadataValue.int(stats.failed_items),
        "skipped_items_today": MetadataValue.int(stats.skipped_items),
        "jobs_by_status": MetadataValue.json(stats.jobs_by_status),
    }
    if stats.average_duration_seconds is not None:
        metadata["average_duration_seconds"] = MetadataValue.float(stats.average_duration_seconds)
    if stats.orders_per_second is not None:
        metadata["orders_per_second"] = MetadataValue.float(stats.orders_per_second)
    return metadata


def _enqueue_from_config(database: Database, config: BatchInvoicingConfig, runner: str) -> int:
    engine = database.get_engine()
    if not config.organization:
        raise Failure(
            "give batch_job_id, or organization with order_ids / all_reviewed / customers"
        )
    common = {
        "invoice_date": config.invoice_date or None,
        "due_days": config.due_days,
        "created_by": config.created_by,
        # taken by this run: the sensor must not launch a second run for it
        "runner": runner,
    }
    try:
        if config.customers:
            return enqueue_customer_lines(
                engine,
                config.organization,
                [c.model_dump(exclude_none=True) for c in config.customers],
                **common,
            )
        if config.order_ids:
            return enqueue_sales_orders(
                engine, config.organization, order_ids=config.order_ids, **common
            )
        if config.all_reviewed:
            return enqueue_sales_orders(
                engine, config.organization, all_reviewed=True, up_to=config.up_to or None, **common
            )
    except BatchRequestError as exc:
        raise Failure(str(exc)) from exc
    raise Failure("nothing to invoice: give order_ids, all_reviewed: true or customers")


@op(
    description="Process one batch invoicing job (enqueue it first when the config is a new request)."
)
def process_batch_invoicing(
    context: OpExecutionContext, config: BatchInvoicingConfig, database: Database
) -> dict:
    engine = database.get_engine()
    job_id = config.batch_job_id or _enqueue_from_config(database, config, context.run_id)
    context.log.info(f"batch job {job_id}")

    def progress(batch: BatchJob) -> None:
        context.log.info(
            f"batch job {batch.id}: {batch.processed_count:,}/{batch.total_count:,} processed, "
            f"{batch.successful_count:,} invoiced, {batch.failed_count:,} failed, {batch.skipped_count:,} skipped"
        )

    batch = process_batch_job(
        engine,
        job_id,
        chunk_size=config.chunk_size,
        runner=context.run_id,
        on_progress=progress,
        workers=config.workers,
    )
    context.log_event(
        AssetMaterialization(
            asset_key=STATS_KEY,
            partition=batch.organization_slug,
            metadata=stats_metadata(batch_stats(engine, batch.organization_id)),
        )
    )
    if batch.status == "failed":
        raise Failure(
            f"batch job {batch.id} failed: {batch.failure_reason}", metadata=job_metadata(batch)
        )
    context.add_output_metadata(job_metadata(batch))
    return batch.to_json_dict()


@job(
    executor_def=in_process_executor,
    description="Batch invoicing: launched per queued job by batch_jobs_sensor, or from the "
    "launchpad with a new request (organization + order_ids / all_reviewed / customers).",
)
def batch_invoicing_job():
    process_batch_invoicing()


def _run_request(job_id: int, slug: str, run_key: str) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(
            ops={"process_batch_invoicing": BatchInvoicingConfig(batch_job_id=job_id)}
        ),
        tags={**organization_tags(slug), BATCH_JOB_TAG: str(job_id)},
    )


@sensor(
    job=batch_invoicing_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches one run per pending batch job (run key = job id), tagged with its "
    "organization; resumes a processing job whose run failed.",
)
def batch_jobs_sensor(context: SensorEvaluationContext, database: Database):
    engine = database.get_engine()
    now = utcnow()
    state = json.loads(context.cursor) if context.cursor else {}
    last_id = int(state.get("last_id", 0))
    # ids launched in the recent window: looked at again (see pending_jobs), requested only once
    launched = {
        int(k): v
        for k, v in state.get("launched", {}).items()
        if v >= (now - RECENT_WINDOW).isoformat()
    }
    queued = pending_jobs(
        engine, after_id=last_id, recent_since=now - RECENT_WINDOW, exclude_ids=launched
    )
    requests = [_run_request(q.id, q.organization_slug, f"batch-job-{q.id}") for q in queued]
    for q in processing_jobs(engine):
        if not q.runner:
            continue
        run = context.instance.get_run_by_id(q.runner)
        # a run killed mid-job leaves its job in processing; a new run continues where it stopped
        if run is not None and run.status in DEAD_RUN_STATUSES:
            context.log.info(f"batch job {q.id}: run {q.runner} ended {run.status.value}; resuming")
            requests.append(
                _run_request(q.id, q.organization_slug, f"batch-job-{q.id}-resume-{q.runner}")
            )
    launched.update({q.id: now.isoformat() for q in queued})
    cursor = json.dumps(
        {"last_id": max([last_id, *(q.id for q in queued)]), "launched": launched}, sort_keys=True
    )
    if not requests:
        context.update_cursor(cursor)
        return SkipReason("no pending batch jobs")
    return SensorResult(run_requests=requests, cursor=cursor)


class StuckJobsConfig(Config):
    stuck_after_minutes: int = Field(
        default=int(DEFAULT_STUCK_AFTER.total_seconds() // 60),
        ge=1,
        description="a processing job without progress for this long is failed",
    )


@op(description="Fail batch jobs stuck in processing; their unfinished orders stay eligible.")
def fail_stuck_batch_jobs(
    context: OpExecutionContext, config: StuckJobsConfig, database: Database
) -> list[int]:
    failed = fail_stuck_jobs(
        database.get_engine(), stuck_after=timedelta(minutes=config.stuck_after_minutes)
    )
    for stuck in failed:
        context.log.warning(
            f"batch job {stuck.id} ({stuck.organization_slug}) failed: {stuck.failure_reason}"
        )
    context.add_output_metadata({"failed_jobs": MetadataValue.json([j.id for j in failed])})
    return [j.id for j in failed]


@job(executor_def=in_process_executor, description="Fail batch jobs stuck in processing.")
def fail_stuck_batch_jobs_job():
    fail_stuck_batch_jobs()


fail_stuck_batch_jobs_schedule = ScheduleDefinition(
    name="fail_stuck_batch_jobs_schedule",
    job=fail_stuck_batch_jobs_job,
    cron_schedule="*/10 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 10 minutes: fail batch jobs without progress for 30 minutes (configurable).",
)


class BatchJobControlConfig(Config):
    batch_job_id: int
    action: str = Field(description="cancel | retry_failed")
    requested_by: str = Field(default="launchpad")


@op(description="Cancel a batch job, or queue a new job over the failed items of a finished one.")
def control_batch_job(
    context: OpExecutionContext, config: BatchJobControlConfig, database: Database
) -> dict:
    engine = database.get_engine()
    try:
        if config.action == "cancel":
            batch = cancel_batch_job(engine, config.batch_job_id, cancelled_by=config.requested_by)
            context.add_output_metadata(job_metadata(batch))
            return {
                "batch_job_id": batch.id,
                "status": batch.status,
                "cancel_requested": batch.cancel_requested,
            }
        if config.action == "retry_failed":
            new_id = retry_failed(engine, config.batch_job_id, created_by=config.requested_by)
            context.add_output_metadata({"retry_job_id": MetadataValue.int(new_id or 0)})
            return {"batch_job_id": config.batch_job_id, "retry_job_id": new_id}
    except (BatchRequestError, LookupError) as exc:
        raise Failure(str(exc)) from exc
    raise Failure(f"unknown action {config.action!r}: use cancel or retry_failed")


@job(executor_def=in_process_executor, description="Cancel a batch job or retry its failed items.")
def batch_job_control_job():
    control_batch_job()


@asset(
    key=STATS_KEY,
    partitions_def=organizations_partitions,
    group_name="billing",
    description="Batch invoicing per organization today: jobs, orders invoiced, failures, average "
    "duration. Every batch run records it when its job ends, so the UI plots it over time.",
)
def batch_invoicing_stats(context: AssetExecutionContext, database: Database) -> MaterializeResult:
    return MaterializeResult(
        metadata=stats_metadata(batch_stats(database.get_engine(), context.partition_key))
    )


defs = Definitions(
    assets=[batch_invoicing_stats],
    jobs=[batch_invoicing_job, fail_stuck_batch_jobs_job, batch_job_control_job],
    sensors=[batch_jobs_sensor],
    schedules=[fail_stuck_batch_jobs_schedule],
)
