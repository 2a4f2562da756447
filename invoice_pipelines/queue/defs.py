"""Dagster side of the batch-job queue, built from the kinds the areas bring (`queue.known_kinds.Kinds`:
`definitions.py` hands the one value to `build_defs`, and binds it as the `batch_kinds` resource
the queue's other ops read): the queue imports no area.

- `invoice_batch_job` runs one job of a kind the queue runs itself (documents, credit notes): a
  queued one, or a new request checked and queued in the run (its launchpad config is the union of
  the kinds' requests); `invoice_batch_jobs_sensor` launches one run per pending job once the
  invoicing job it follows has finished, and resumes a job whose run failed. A kind whose work
  waits on an outside service's rate limit (`JobKind.waits_on`: communications, on the mail
  provider) has the same pair of its own, `<kind>_batch_job` and `<kind>_batch_jobs_sensor`,
  whose op is in that service's pool: its runs are in the service's lane
  (tenants/run_coordinator.py), so an hour of sending never holds the organization's documents.
- `batch_jobs_sensor` launches the job of a kind that has its own Dagster job (invoicing:
  `batch_invoicing_job`, which materializes billing's `sales_invoices`), one run per pending job,
  built from what the kind names (`OwnJob`: the job, the op and its config): the organization's
  partition, tagged with it and the batch job (and the bulk lane's tags for bulk work); it
  resumes a processing job whose run failed.
- `fail_stuck_batch_jobs_job` (every 10 minutes) and `batch_job_control_job` (cancel, retry the
  failed items) serve every kind.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Literal, Union

from dagster import (
    AssetMaterialization,
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    MetadataValue,
    OpExecutionContext,
    ResourceParam,
    RunConfig,
    RunRequest,
    ScheduleDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    in_process_executor,
    job,
    op,
    sensor,
)
from pydantic import Field

from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.batch_job import BatchJob
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG, job_metadata, sentence
from invoice_pipelines.queue.items import ready_invoice_jobs
from invoice_pipelines.queue.job_kind import (
    DEFAULT_CHUNK_SIZE,
    LOCAL_QUEUE_JOB,
    JobKind,
    RunSettings,
)
from invoice_pipelines.queue.jobs import (
    UnknownBatchJob,
    cancel_batch_job,
    get_batch_job,
    pending_jobs,
    processing_jobs,
    retry_failed,
)
from invoice_pipelines.queue.kinds import refusal, resource_keys, run_job
from invoice_pipelines.queue.known_kinds import KINDS_RESOURCE, Kinds
from invoice_pipelines.queue.requests import BatchRequestError
from invoice_pipelines.queue.stuck import DEFAULT_STUCK_AFTER, fail_stuck_jobs
from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    REQUESTED_BY_HELP,
    organization_tags,
    partition_run_tags,
    who_asked,
)
from invoice_pipelines.tenants.refusals import refused
from invoice_pipelines.tenants.run_coordinator import BULK_RUN_TAGS

OP = "process_invoice_batch_job"
JOB = LOCAL_QUEUE_JOB
# a job inserted this long before the sensor's cursor moved past its id is still looked at
RECENT_WINDOW = timedelta(minutes=10)
# a failed run is resumed; a run someone cancelled in the UI is not (that was a decision to stop:
# the job then ends through the stuck-job cleanup, and `batch-retry` hands on what it did not reach)
DEAD_RUN_STATUSES = (DagsterRunStatus.FAILURE,)


def build_defs(known: Kinds) -> Definitions:
    """The queue's jobs, sensors and schedule for the given kinds (every kind is loaded here). The
    queue's jobs close over them; its other ops (stuck jobs, cancel and retry) read the same value
    as the `batch_kinds` resource, bound here (definitions.py binds the same value for every run,
    billing's among them)."""
    kinds = [known[name] for name in known]
    run_here = [k for k in kinds if k.own_job is None]
    own = [k for k in kinds if k.own_job is not None]
    jobs, sensors = [fail_stuck_batch_jobs_job, batch_job_control_job], []
    for names, group in _by_service(run_here):
        jobs.append(_invoice_batch_job(known, group, names))
        sensors.append(_invoice_batch_jobs_sensor(group, names))
    if own:
        sensors.append(_batch_jobs_sensor(own))
    return Definitions(
        jobs=jobs,
        sensors=sensors,
        schedules=[fail_stuck_batch_jobs_schedule],
        resources={KINDS_RESOURCE: known},
    )


# -- invoice_batch_job: the kinds the queue runs itself ---------------------------------------


@dataclass(frozen=True)
class QueueJobNames:
    """The Dagster names of one of the queue's own jobs: the job, its op and its sensor, and the
    pool of the op (the outside service its kind waits on, or None)."""

    job: str
    op: str
    sensor: str
    pool: str | None = None


def _by_service(kinds: Sequence[JobKind]) -> list[tuple[QueueJobNames, list[JobKind]]]:
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
    """The queued job the config names, or the new request's job, queued in this run."""
    organization = (config.organization or "").strip()
    request = config.request
    try:
        if isinstance(request, QueuedInvoiceJob):
            batch = get_batch_job(engine, request.batch_job_id)
        else:
            if not organization:
                raise refused(f"A new {request.kind} request needs the organization.")
            who = who_asked(request.requested_by, context.run.tags)
            # taken by this run: the sensor leaves it alone
            job_id = known[request.kind].requests.enqueue(
                engine, organization, request, who, context.run.run_id
            )
            batch = get_batch_job(engine, job_id)
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


def _invoice_batch_job(known: Kinds, kinds: Sequence[JobKind], names: QueueJobNames):
    config_class = _config_class(kinds)
    here = {k.name: k for k in kinds}
    needed = {"database"}.union(*(resource_keys(k, known) for k in kinds))
    kind_names = _listed(list(here))

    @op(
        name=names.op,
        pool=names.pool,
        required_resource_keys=needed,
        description=f"Process one {kind_names} job of the batch jobs queue, chunk by chunk "
        "(cancel at the next chunk), and record it on the asset its kind names.",
    )
    def process_invoice_batch_job(context: OpExecutionContext, config: config_class) -> dict:
        engine = context.resources.database.get_engine()
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
            context.log_event(
                AssetMaterialization(
                    kind.reading.asset(engine, batch),
                    partition=batch.organization_slug,
                    metadata=metadata,
                )
            )
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


def _listed(names: list[str]) -> str:
    """["documents", "credit_notes"] -> "documents or credit notes"."""
    words = [n.replace("_", " ") for n in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _job_running(kind: JobKind | None) -> str:
    """The Dagster job that runs a kind's jobs, for a refusal."""
    if kind is None:
        return "no job here"
    return kind.own_job.job_name if kind.own_job else kind.queue_job


def _invoice_run_request(job_id: int, slug: str, run_key: str, op_name: str = OP) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(
            ops={op_name: {"config": {"request": {"queued_job": {"batch_job_id": job_id}}}}}
        ),
        tags={**organization_tags(slug), BATCH_JOB_TAG: str(job_id)},
    )


def _invoice_batch_jobs_sensor(kinds: Sequence[JobKind], job: QueueJobNames):
    names = [k.name for k in kinds]
    what = _listed(names)

    @sensor(
        name=job.sensor,
        job_name=job.job,
        minimum_interval_seconds=10,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Launches one run per pending {what} job (run key = job id) once the "
        "invoicing job it follows has finished; resumes a job whose run failed.",
    )
    def invoice_batch_jobs_sensor(context: SensorEvaluationContext, database: Database):
        engine = database.get_engine()
        state = json.loads(context.cursor) if context.cursor else {}
        launched = set(state.get("launched", []))
        ready = ready_invoice_jobs(engine, kinds=names)
        requests = [
            _invoice_run_request(q.id, q.organization_slug, f"batch-job-{q.id}", job.op)
            for q in ready
            if q.id not in launched
        ]
        for q in processing_jobs(engine, kinds=names):
            run = context.instance.get_run_by_id(q.runner) if q.runner else None
            if run is not None and run.status == DagsterRunStatus.FAILURE:
                requests.append(
                    _invoice_run_request(
                        q.id, q.organization_slug, f"batch-job-{q.id}-resume-{q.runner}", job.op
                    )
                )
        # every ready job is requested now or was before: kept while it is pending (not yet
        # started), so it is requested once; a job that started leaves the cursor
        cursor = json.dumps({"launched": sorted(q.id for q in ready)})
        if not requests:
            context.update_cursor(cursor)
            return SkipReason(f"no {what} jobs to start")
        return SensorResult(run_requests=requests, cursor=cursor)

    return invoice_batch_jobs_sensor


# -- batch_jobs_sensor: the kinds with a Dagster job of their own -------------------------------


def _next_cursor_id(last_id: int, requested: list[int], waiting: list[int]) -> int:
    """The cursor moves past what was requested, but never past a job that still waits."""
    after = max([last_id, *requested])
    return max(last_id, min(after, min(waiting) - 1)) if waiting else after


def _batch_jobs_sensor(kinds: Sequence[JobKind]):
    job_names = {k.own_job.job_name for k in kinds}
    if len(job_names) != 1:
        raise ValueError(f"batch_jobs_sensor launches one job; these kinds name {job_names}")
    by_kind = {k.name: k.own_job for k in kinds}
    names = list(by_kind)

    def run_request(q, run_key: str) -> RunRequest:
        own = by_kind[q.kind]
        return RunRequest(
            run_key=run_key,
            job_name=own.job_name,
            partition_key=q.organization_slug,
            run_config={"ops": {own.op: {"config": own.config(q.id)}}},
            tags={
                **partition_run_tags(q.organization_slug),
                **(BULK_RUN_TAGS if own.bulk else {}),
                BATCH_JOB_TAG: str(q.id),
            },
        )

    # by name, not the job object: Definitions binds the shared resources to the job and rebuilds
    # a sensor that holds it, and that rebuild passes `owners=[]`, a beta parameter (a BetaWarning
    # in every process that loads the code, each run included)
    @sensor(
        name="batch_jobs_sensor",
        job_name=job_names.pop(),
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
        # ids launched in the recent window: looked at again (see pending_jobs), requested once
        launched = {
            int(k): v
            for k, v in state.get("launched", {}).items()
            if v >= (now - RECENT_WINDOW).isoformat()
        }
        queued = pending_jobs(
            engine,
            after_id=last_id,
            recent_since=now - RECENT_WINDOW,
            exclude_ids=launched,
            kinds=names,  # the kinds the queue runs itself: invoice_batch_jobs_sensor
        )
        # A job of an organization whose partition organizations_sensor has not added yet waits
        # for a later tick (the cursor stays before it); a run for an unknown partition would fail.
        known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
        waiting = [q.id for q in queued if q.organization_slug not in known]
        queued = [q for q in queued if q.organization_slug in known]
        requests = [run_request(q, f"batch-job-{q.id}") for q in queued]
        for q in processing_jobs(engine, kinds=names):
            if not q.runner:
                continue
            run = context.instance.get_run_by_id(q.runner)
            # a run killed mid-job leaves its job in processing; a new run goes on where it stopped
            if run is not None and run.status in DEAD_RUN_STATUSES:
                context.log.info(
                    f"batch job {q.id}: run {q.runner} ended {run.status.value}; resuming"
                )
                requests.append(run_request(q, f"batch-job-{q.id}-resume-{q.runner}"))
        launched.update({q.id: now.isoformat() for q in queued})
        cursor = json.dumps(
            {
                "last_id": _next_cursor_id(last_id, [q.id for q in queued], waiting),
                "launched": launched,
            },
            sort_keys=True,
        )
        if not requests:
            context.update_cursor(cursor)
            return SkipReason("no pending batch jobs")
        return SensorResult(run_requests=requests, cursor=cursor)

    return batch_jobs_sensor


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
    database: Database,
    batch_kinds: ResourceParam[Kinds],
) -> list[int]:
    failed = fail_stuck_jobs(
        database.get_engine(),
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


fail_stuck_batch_jobs_schedule = ScheduleDefinition(
    name="fail_stuck_batch_jobs_schedule",
    job=fail_stuck_batch_jobs_job,
    cron_schedule="*/10 * * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every 10 minutes: fail batch jobs without progress for 30 minutes (configurable).",
)


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
    database: Database,
    batch_kinds: ResourceParam[Kinds],
) -> dict:
    engine = database.get_engine()
    who = who_asked(config.requested_by, context.run.tags)
    try:
        if config.action == ControlAction.cancel:
            batch = cancel_batch_job(engine, config.batch_job_id, cancelled_by=who)
            context.add_output_metadata(job_metadata(batch, batch_kinds))
            return {
                "batch_job_id": batch.id,
                "status": batch.status,
                "cancel_requested": batch.cancel_requested,
            }
        new_id = retry_failed(engine, config.batch_job_id, batch_kinds, created_by=who)
    except UnknownBatchJob:
        raise refused(f"There is no batch job {config.batch_job_id}.") from None
    except BatchRequestError as exc:
        raise refused(sentence(str(exc))) from None
    context.add_output_metadata({"retry_job_id": MetadataValue.int(new_id or 0)})
    return {"batch_job_id": config.batch_job_id, "retry_job_id": new_id}


@job(executor_def=in_process_executor, description="Cancel a batch job or retry its failed items.")
def batch_job_control_job():
    control_batch_job()
