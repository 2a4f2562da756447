"""The queue's sensors, built from the kinds the areas bring: one per job of the queue's own
(`invoice_batch_jobs_sensor`, `<kind>_batch_jobs_sensor`) launching a run per pending job, and
`batch_jobs_sensor` for the kinds with a Dagster job of their own (`OwnJob`), whose request it
builds from what the kind names."""

import json
from collections.abc import Sequence
from datetime import timedelta

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    ResourceParam,
    RunConfig,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import suspended_organizations
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.lib.automation import automatic_organizations
from invoice_pipelines.lib.partitions import organization_tags, partition_run_tags
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG
from invoice_pipelines.queue.dagster_jobs import OP, QueueJobNames, listed
from invoice_pipelines.queue.domain.items import ready_invoice_jobs
from invoice_pipelines.queue.domain.job_kind import JobKind
from invoice_pipelines.queue.domain.jobs import pending_jobs, processing_jobs

# a job inserted this long before the sensor's cursor moved past its id is still looked at
RECENT_WINDOW = timedelta(minutes=10)
# a failed run is resumed; a run someone cancelled in the UI is not (that was a decision to stop:
# the job then ends through the stuck-job cleanup, and `batch-retry` hands on what it did not reach)
DEAD_RUN_STATUSES = (DagsterRunStatus.FAILURE,)


def _invoice_run_request(job_id: int, slug: str, run_key: str, op_name: str = OP) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        run_config=RunConfig(
            ops={op_name: {"config": {"request": {"queued_job": {"batch_job_id": job_id}}}}}
        ),
        tags={**organization_tags(slug), BATCH_JOB_TAG: str(job_id)},
    )


def build_queue_sensor(kinds: Sequence[JobKind], job: QueueJobNames):
    names = [k.name for k in kinds]
    what = listed(names)

    @sensor(
        name=job.sensor,
        job_name=job.job,
        minimum_interval_seconds=10,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Launches one run per pending {what} job (run key = job id) once the "
        "invoicing job it follows has finished; resumes a job whose run failed.",
    )
    def invoice_batch_jobs_sensor(
        context: SensorEvaluationContext, system_database: ResourceParam[Engine]
    ):
        engine = system_database  # every organization's queue
        state = json.loads(context.cursor) if context.cursor else {}
        launched = set(state.get("launched", []))
        # a suspended organization's jobs wait, unrequested, until it is resumed
        suspended = suspended_organizations(engine)
        every = ready_invoice_jobs(engine, kinds=names)
        ready = [q for q in every if q.organization_slug not in suspended]
        requests = [
            _invoice_run_request(q.id, q.organization_slug, f"batch-job-{q.id}", job.op)
            for q in ready
            if q.id not in launched
        ]
        for q in processing_jobs(engine, kinds=names):
            if q.organization_slug in suspended:
                continue
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
            waits = sorted({q.organization_slug for q in every if q.organization_slug in suspended})
            note = "; suspended, nothing requested: " + ", ".join(
                f"{slug} ({suspended[slug]})" for slug in waits
            )
            return SkipReason(f"no {what} jobs to start" + (note if waits else ""))
        return SensorResult(run_requests=requests, cursor=cursor)

    return invoice_batch_jobs_sensor


# -- batch_jobs_sensor: the kinds with a Dagster job of their own -------------------------------


def _next_cursor_id(last_id: int, requested: list[int], waiting: list[int]) -> int:
    """The cursor moves past what was requested, but never past a job that still waits."""
    after = max([last_id, *requested])
    return max(last_id, min(after, min(waiting) - 1)) if waiting else after


def build_own_jobs_sensor(kinds: Sequence[JobKind]):
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
    def batch_jobs_sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
        engine = system_database  # every organization's queue
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
        # A suspended organization's jobs wait the same way, until it is resumed.
        automatic = automatic_organizations(context.instance, engine)
        known = automatic.known
        waiting = [q.id for q in queued if q.organization_slug not in known]
        queued_before, queued = queued, [q for q in queued if q.organization_slug in known]
        requests = [run_request(q, f"batch-job-{q.id}") for q in queued]
        for q in processing_jobs(engine, kinds=names):
            if not q.runner or q.organization_slug in automatic.suspended:
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
            return SkipReason(
                "no pending batch jobs" + automatic.note(q.organization_slug for q in queued_before)
            )
        return SensorResult(run_requests=requests, cursor=cursor)

    return batch_jobs_sensor
