"""The documents area's sensor: `documents_sensor` launches `documents_job` for every
organization with invoices waiting for documents, a few organizations a tick; the invoices of a
batch whose own documents or communications job is queued are left to that job
(`queue.items.followed_invoicing_jobs`)."""

from dagster import (
    DefaultSensorStatus,
    ResourceParam,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.documents.domain.pipeline import organizations_waiting_for_documents
from invoice_pipelines.documents.jobs import documents_job
from invoice_pipelines.lib.automation import automatic_organizations
from invoice_pipelines.lib.partitions import partition_run_tags
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.lib.turns import organizations_with_a_run, take_turn
from invoice_pipelines.queue.domain.items import Followed


@sensor(
    job=documents_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches documents_job for every organization with sales invoices that have no "
    "generated document yet, history left out, and the invoices of a batch whose own documents "
    "job is queued left to it (run key: the organization and its newest such invoice).",
)
def documents_sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
    automatic = automatic_organizations(context.instance, system_database)
    known = automatic.known
    busy = organizations_with_a_run(context.instance, documents_job.name)
    waiting, followed = organizations_waiting_for_documents(system_database)
    requests = [
        (
            slug,
            RunRequest(
                run_key=f"documents-{slug}-{newest}",
                partition_key=slug,
                tags={**partition_run_tags(slug), **BULK_RUN_TAGS},
            ),
        )
        for slug, newest, _ in waiting
        # an organization whose documents run waits or works is served by that run
        if slug in known and slug not in busy
    ]
    left = _left_to_batches(followed)
    if left:
        context.log.info(left)
    suspended = automatic.note(slug for slug, _, _ in waiting)
    if suspended:
        context.log.info(suspended.removeprefix("; "))
    if not requests:
        said = "No sales invoices wait for documents" + (f"; {left}" if left else "") + suspended
        return SkipReason(said if said.endswith(".") else f"{said}.")
    # a few organizations a tick, the next ones the tick after: a stop of the sensor stops its
    # requests within one tick (lib/turns.py)
    turn = take_turn(context.cursor, requests)
    context.log.info(turn.summary(len(requests)))
    return SensorResult(run_requests=turn.requests, cursor=turn.cursor)


def _left_to_batches(followed: list[Followed]) -> str:
    """What the sensor left to the batches' own jobs, in one sentence ('' for nothing)."""
    if not followed:
        return ""
    pairs = ", ".join(
        f"batch job {f.invoicing_job_id}'s to batch job {f.follow_up_id}" for f in followed[:10]
    )
    more = f" and {len(followed) - 10} more" if len(followed) > 10 else ""
    return f"invoices left to the job queued with their batch: {pairs}{more}."
