"""The queue's Dagster jobs, with their ops and configs, built from the kinds the areas bring:
`invoice_batch_job` (and a `<kind>_batch_job` for each kind that waits on an outside service) runs
one job of a kind the queue runs itself; `fail_stuck_batch_jobs_job` and `batch_job_control_job`
serve every kind. (`queue/domain/jobs.py` is the queue's reading, cancelling and retrying of batch jobs,
not Dagster's jobs.)"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Literal, Union

from dagster import (
    AssetMaterialization,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ResourceParam,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP, who_asked
from invoice_pipelines.lib.refusals import organization_or_refuse, refused
from invoice_pipelines.queue.dagster import job_metadata, sentence
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.job_kind import (
    DEFAULT_CHUNK_SIZE,
    LOCAL_QUEUE_JOB,
    JobKind,
    RunSettings,
)
from invoice_pipelines.queue.domain.jobs import (
    UnknownBatchJob,
    batch_job_of,
    cancel_batch_job,
    get_batch_job,
    retry_failed,
)
from invoice_pipelines.queue.domain.kinds import refusal, resource_keys, run_job
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.queue.domain.stuck import DEFAULT_STUCK_AFTER, fail_stuck_jobs
from invoice_pipelines.scheduled_checks import evaluation

OP = "process_invoice_batch_job"
JOB = LOCAL_QUEUE_JOB


# -- invoice_batch_job: the kinds the queue runs itself ---------------------------------------


@dataclass(frozen=True)
class QueueJobNames:
    """The Dagster names of one of the queue's own jobs: the job, its op and its sensor, and the
    pool of the op (the outside service its kind waits on, or None)."""

    job: str
    op: str
    sensor: str
    pool: str | None = None


def by_service(kinds: Sequence[JobKind]) -> list[tuple[QueueJobNames, list[JobKind]]]:
    """The kinds the queue runs itself: one job for the local ones (`invoice_batch_job`) and one
    for each kind that waits on an outside service (`communications_batch_job`), by
    `JobKind.queue_job`."""
    jobs: dict[str, list[JobKind]] = {}
    for kind in kinds:
        jobs.setdefault(kind.queue_job, []).append(kind)
    groups = []
    for name, group in jobs.items():
        op_name = OP if name == JOB else f"process_{name}"
        pools = {k.waits_on for k in group}
        groups.append((QueueJobNames(name, op_name, group[0].queue_sensor, pools.pop()), group))
    return groups


class QueuedInvoiceJob(Config):
    """a job of the queue"""

    kind: Literal["queued_job"] = "queued_job"
    batch_job_id: int = Field(
        description="A documents, communications or credit notes job of the queue to start or "
        "resume (what the job's sensor launches; a finished job is reported as it is)."
    )


def _config_class(kinds: Sequence[JobKind]) -> type[Config]:
    requests = [r for r in (k.request_class() for k in kinds) if r is not None]
    request_type = Union[(QueuedInvoiceJob, *requests)]  # noqa: UP007 - built from a tuple
    choices = ", ".join(
        f"{r.model_fields['kind'].default} ({(r.__doc__ or '').strip()})"
        for r in (QueuedInvoiceJob, *requests)
    )

    class InvoiceBatchConfig(Config):
        # at the top of the op's config, where the run coordinator finds it: a launchpad run then
        # carries the organization tag and waits for the organization's other runs like the rest
        organization: str | None = Field(
            default=None,
            description="Organization slug or id: the invoices' organization for a new "
            "documents or communications request (required there); with queued_job, the "
            "job's (checked if given).",
        )
        request: request_type = Field(
            discriminator="kind", description=f"Exactly one of: {choices}."
        )
        chunk_size: int = Field(
            default=DEFAULT_CHUNK_SIZE,
            ge=1,
            le=5000,
            description="Invoices (or credit notes) per chunk; a cancel takes effect at the next "
            "chunk.",
        )

    return InvoiceBatchConfig


def _job_of_request(context: OpExecutionContext, engine, config, known: Kinds) -> BatchJob:
    """The queued job the config names, or the new request's job, queued in this run (found on
    the run's system engine)."""
    system = context.resources.system_database
    organization = (config.organization or "").strip()
    request = config.request
    try:
        if isinstance(request, QueuedInvoiceJob):
            batch = get_batch_job(system, request.batch_job_id)
        else:
            if not organization:
                raise refused(f"A new {request.kind} request needs the organization.")
            who = who_asked(request.requested_by, context.run.tags)
            org = organization_or_refuse(system, organization)  # the run's, found once
            # taken by this run: the sensor leaves it alone
            job_id = known[request.kind].requests.enqueue(
                engine, org, request, who, context.run.run_id
            )
            batch = batch_job_of(engine, org.id, job_id)
    except UnknownBatchJob:
        raise refused(f"There is no batch job {request.batch_job_id}.") from None
    except BatchRequestError as exc:
        raise refused(sentence(str(exc))) from None
    if organization and organization not in (batch.organization_slug, str(batch.organization_id)):
        raise refused(
            f"Batch job {batch.id} belongs to organization {batch.organization_slug!r}, "
            f"not {organization!r}."
        )
    return batch


def _progress(context: OpExecutionContext):
    def progress(b: BatchJob) -> None:
        context.log.info(
            f"batch job {b.id} ({b.kind}): {b.processed_count:,}/{b.total_count:,} processed, "
            f"{b.successful_count:,} done, {b.failed_count:,} failed, {b.skipped_count:,} skipped"
        )

    return progress


def build_queue_job(known: Kinds, kinds: Sequence[JobKind], names: QueueJobNames):
    config_class = _config_class(kinds)
    here = {k.name: k for k in kinds}
    needed = {"database", "system_database"}.union(*(resource_keys(k, known) for k in kinds))
    kind_names = listed(list(here))

    @op(
        name=names.op,
        pool=names.pool,
        required_resource_keys=needed,
        description=f"Process one {kind_names} job of the batch jobs queue, chunk by chunk "
        "(cancel at the next chunk), and record it on the asset its kind names.",
    )
    def process_invoice_batch_job(context: OpExecutionContext, config: config_class) -> dict:
        engine = context.resources.database
        batch = _job_of_request(context, engine, config, known)
        kind = here.get(batch.kind)
        if kind is None:
            other = known.described(batch.kind)
            runs_it = _job_running(other)
            raise refused(f"Batch job {batch.id} is a {batch.kind} job; {runs_it} runs it.")
        settings = RunSettings(config.chunk_size, context.run.run_id, _progress(context))
        try:
            batch = run_job(engine, batch, known, context.resources, settings)
        except Exception as exc:
            answer = refusal(kind, exc, batch)
            if answer is None:
                raise
            raise refused(answer) from None
        metadata = job_metadata(batch, known)
        if kind.reading.metadata is not None:
            metadata.update(kind.reading.metadata(engine, batch))
        if batch.status == "failed":
            raise Failure(f"batch job {batch.id} failed: {batch.failure_reason}", metadata=metadata)
        if batch.status == "pending":
            context.log.info(f"batch job {batch.id} waits for the invoicing job it follows")
        elif kind.reading.asset is not None:
            asset = kind.reading.asset(engine, batch)
            context.log_event(
                AssetMaterialization(asset, partition=batch.organization_slug, metadata=metadata)
            )
            for result in kind.reading.checks(engine, batch) if kind.reading.checks else ():
                context.log_event(evaluation(result, asset, batch.organization_slug))
        context.add_output_metadata(metadata)
        return {"batch_job_id": batch.id, "status": batch.status}

    @job(
        name=names.job,
        executor_def=in_process_executor,
        description=f"{kind_names.capitalize()} jobs through the batch jobs queue: launched per "
        f"queued job by {names.sensor}, or by hand with a new request"
        + (f"; its runs wait on {names.pool} and run in its lane." if names.pool else "."),
    )
    def invoice_batch_job():
        process_invoice_batch_job()

    return invoice_batch_job


def listed(names: list[str]) -> str:
    """["documents", "credit_notes"] -> "documents or credit notes"."""
    words = [n.replace("_", " ") for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _job_running(kind: JobKind | None) -> str:
    """The Dagster job that runs a kind's jobs, for a refusal."""
    if kind is None:
        return "no job here"
    return kind.own_job.job_name if kind.own_job else kind.queue_job


# -- every kind: stuck jobs, cancel and retry -------------------------------------------------


class StuckJobsConfig(Config):
    stuck_after_minutes: int = Field(
        default=int(DEFAULT_STUCK_AFTER.total_seconds() // 60),
        ge=1,
        description="a processing job without progress for this long is failed",
    )


@op(description="Fail batch jobs stuck in processing; their unfinished orders stay eligible.")
def fail_stuck_batch_jobs(
    context: OpExecutionContext,
    config: StuckJobsConfig,
    system_database: ResourceParam[Engine],
    batch_kinds: ResourceParam[Kinds],
) -> list[int]:
    failed = fail_stuck_jobs(
        system_database,
        batch_kinds,
        stuck_after=timedelta(minutes=config.stuck_after_minutes),
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


class ControlAction(Enum):
    cancel = "cancel"
    retry_failed = "retry_failed"


class BatchJobControlConfig(Config):
    batch_job_id: int = Field(description="The batch job to act on.")
    action: ControlAction = Field(
        description="cancel: a pending job is cancelled at once, a processing job stops at its "
        "next chunk boundary (committed invoices stay). retry_failed: a new pending job over "
        "exactly the failed orders of a finished job."
    )
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )


# No `organization` field on purpose: a control run is not held back by the per-organization limit,
# so a cancel reaches the job while that organization's batch run is still working.
@op(description="Cancel a batch job, or queue a new job over the failed items of a finished one.")
def control_batch_job(
    context: OpExecutionContext,
    config: BatchJobControlConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    batch_kinds: ResourceParam[Kinds],
) -> dict:
    engine, system = database, system_database
    who = who_asked(config.requested_by, context.run.tags)
    try:
        if config.action == ControlAction.cancel:
            batch = cancel_batch_job(engine, config.batch_job_id, system=system, cancelled_by=who)
            context.add_output_metadata(job_metadata(batch, batch_kinds))
            return {
                "batch_job_id": batch.id,
                "status": batch.status,
                "cancel_requested": batch.cancel_requested,
            }
        new_id = retry_failed(
            engine, config.batch_job_id, batch_kinds, system=system, created_by=who
        )
    except UnknownBatchJob:
        raise refused(f"There is no batch job {config.batch_job_id}.") from None
    except BatchRequestError as exc:
        raise refused(sentence(str(exc))) from None
    context.add_output_metadata({"retry_job_id": MetadataValue.int(new_id or 0)})
    return {"batch_job_id": config.batch_job_id, "retry_job_id": new_id}


@job(executor_def=in_process_executor, description="Cancel a batch job or retry its failed items.")
def batch_job_control_job():
    control_batch_job()
