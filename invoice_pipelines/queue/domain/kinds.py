"""Running a job of a known kind (`queue/domain/job_kind.py` says what a kind is, `queue/domain/known_kinds.py`
the value of the kinds a process was handed): the resources a kind's run needs, a `Chunks` kind's chunk work
with the kind that prepares it, a job run to its end, and an exception read as the user's answer.
The queue's Dagster job and `batch-run` (`queue/defs.py`, `queue/commands/run.py`) call these; the
queue never imports an area."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.items import run_item_job
from invoice_pipelines.queue.domain.job_kind import (
    SUCCEEDED,
    Chunks,
    ItemOutcome,
    JobKind,
    Resources,
    RunSettings,
    RunsItself,
    Work,
)
from invoice_pipelines.queue.domain.known_kinds import UnknownKind


def by_name(kinds: Mapping[str, JobKind], name: str) -> JobKind:
    try:
        return kinds[name]
    except KeyError:
        raise UnknownKind(f"no kind {name!r} is known to the queue here") from None


def resource_keys(kind: JobKind, kinds: Mapping[str, JobKind]) -> frozenset[str]:
    """The resources a kind's run needs, with those of the kind that prepares it."""
    keys = set(kind.resource_keys)
    if isinstance(kind.runs, Chunks) and kind.runs.prepared_by:
        keys |= by_name(kinds, kind.runs.prepared_by).resource_keys
    return frozenset(keys)


def _chunks(kind: JobKind) -> Chunks:
    if not isinstance(kind.runs, Chunks):
        raise UnknownKind(f"kind {kind.name!r} is not run chunk by chunk over invoices")
    return kind.runs


def chunk_work(
    engine: Engine,
    kind: JobKind,
    kinds: Mapping[str, JobKind],
    resources: Resources,
    run_id: str | None,
) -> Work:
    """The work of one chunk of a `Chunks` kind: the preparing kind's first, then the kind's own on
    the invoices the preparation did not fail."""
    runs = _chunks(kind)
    own = runs.work(engine, resources, run_id)
    if not runs.prepared_by:
        return own
    first = _chunks(by_name(kinds, runs.prepared_by)).work(engine, resources, run_id)

    def work(job: BatchJob, org: Organization, request: Mapping[str, Any], invoice_ids: list[int]):
        outcomes: dict[int, ItemOutcome] = first(job, org, request, invoice_ids)
        ready = [i for i in invoice_ids if outcomes.get(i) is SUCCEEDED]
        if ready:
            outcomes.update(own(job, org, request, ready))
        return outcomes

    return work


def run_job(
    engine: Engine,
    job: BatchJob,
    kinds: Mapping[str, JobKind],
    resources: Resources,
    settings: RunSettings,
) -> BatchJob:
    """Run a queued job of a `Chunks` or `RunsItself` kind to its end (or its cancel); its final
    state. The work over every organization (the job by id) runs on `resources.system_database`."""
    kind = by_name(kinds, job.kind)
    runs = kind.runs
    if isinstance(runs, RunsItself):
        return runs.run(engine, job.id, resources, settings)
    if not isinstance(runs, Chunks):
        raise UnknownKind(f"batch job {job.id} is a {job.kind} job, which its own Dagster job runs")
    return run_item_job(
        engine,
        job.id,
        chunk_work(engine, kind, kinds, resources, settings.runner),
        system=resources.system_database,
        kind=kind.name,
        closing=runs.closing(resources) if runs.closing else None,
        chunk_size=settings.chunk_size,
        runner=settings.runner,
        on_progress=settings.on_progress,
    )


def refusal(kind: JobKind, exc: Exception, job: BatchJob) -> str | None:
    """The user's sentence for an exception the kind counts as a refusal; None for a crash."""
    for exc_type, sentence in kind.refusals:
        if isinstance(exc, exc_type):
            return sentence(exc, job)
    return None
