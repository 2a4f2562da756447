"""The kinds of batch job the queue runs, registered by their areas: the queue never imports an
area. A kind says what starts it (its launchpad request and how that request is queued), what one
chunk of its items does, what its finish does, and how a run reports it; the queue's Dagster job,
its sensors and the shared commands (`queue/defs.py`, `queue/commands.py`) do the rest.

Adding a kind is one file in its area that builds a `JobKind`, and its registration: the area's
`defs.py` lists it in `QUEUE_KINDS` (which `definitions.py` hands to `queue.defs.build_defs`), and
the area's `cli.py` registers it for `batch-run` (`register`, one line).

Three ways a kind is run:

- `chunk`: items are sales invoices, and the work of a chunk runs outside the queue's
  transactions (`queue.items.run_item_job`: documents, communications). `prepared_by` names a kind
  whose chunk work runs first on the same invoices (communications: the documents are written
  before they are sent); an invoice it fails is not handed on.
- `run`: the kind runs its job itself with the queue's functions (credit notes through
  `queue.atomic`).
- `own_job`: a Dagster job of the area runs it (invoicing: the `sales_invoices` asset); the
  queue's `batch_jobs_sensor` launches that job per pending job.

A kind also says how a person reads its jobs: its items' word and what done means for them
(`unit`, `done`), the lines `batch-status` shows under the job (`summary`), what stays when the
stuck-job sweep stops it (`stuck_left`) and what a retry asks for (`retry_request`); what a new
request over invoices may ask for (`options`), the jobs queued with one of its jobs (`follow_ups`)
and whether its items become sales invoices (`creates_invoices`: batch-stats counts its orders). A
kind is known to the process once declared (building its `JobKind` declares it) or registered;
the queue looks it up by the job's `kind` (`described`) and never compares that with a name of
its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from invoice_pipelines.queue.items import DEFAULT_CHUNK_SIZE, SUCCEEDED, ItemOutcome, Work
from invoice_pipelines.queue.jobs import BatchJob
from invoice_pipelines.queue.registry import (  # noqa: F401 (the registration, for the areas)
    _DECLARED,
    _LOADERS,
    UnknownKind,
    described,
    known,
    register,
    registered,
)

# the resources a kind's work needs, by the names definitions.py gives them (`document_store`,
# `mailer`, ...): a run's `context.resources`, or the command line's (queue.commands.EnvResources)
Resources = Any
Progress = Callable[[BatchJob], None]
# the closing work of a job (queue.transitions.finish): audit rows (action, details) to record
Closing = Callable[[Connection, BatchJob, Mapping[str, Any]], list]
# summary(job, "created at ... by ...") -> the lines batch-status shows under the job's first line
Summary = Callable[[BatchJob, str], list[str]]
# retry_request(the failed items' rows, the job's request) -> the request of their retry job
RetryRequest = Callable[[Sequence[Any], Mapping[str, Any]], dict]
# follow_ups(the job's request, its id) -> the jobs queued with it, as (kind, request)
FollowUps = Callable[[Mapping[str, Any], int], list[tuple[str, dict]]]

# what stays of a stopped job when its kind says nothing of its own (`JobKind.stuck_left`)
GENERIC_STUCK_LEFT = "Items done stay; the items not reached were not processed"


@dataclass(frozen=True)
class RunSettings:
    """How one run takes a job: chunk size, who runs it, where progress goes."""

    chunk_size: int
    runner: str | None
    on_progress: Progress | None = None


@dataclass(frozen=True)
class OwnJob:
    """A kind that a Dagster job of its area runs: `run_request(job id, organization slug, run
    key)` launches that job for one queued job (the queue's `batch_jobs_sensor` calls it)."""

    job_name: str
    run_request: Callable[[int, str, str], Any]  # -> dagster.RunRequest


@dataclass(frozen=True)
class JobKind:
    name: str  # batch_jobs.kind
    # how a person names its items and what done means for them ("invoices", "written")
    unit: str = "items"
    done: str = "done"
    default_chunk_size: int = DEFAULT_CHUNK_SIZE
    # -- how it runs (one of chunk, run, own_job) --
    # chunk(engine, resources, run_id) -> the work of one chunk of sales invoices
    chunk: Callable[[Engine, Resources, str | None], Work] | None = None
    prepared_by: str | None = None
    # closing(resources) -> the job's closing work, done once by the runner that finishes it
    closing: Callable[[Resources], Closing] | None = None
    # run(engine, job id, resources, settings) -> the job's final state
    run: Callable[[Engine, int, Resources, RunSettings], BatchJob] | None = None
    own_job: OwnJob | None = None
    # -- what it needs and how it answers --
    resource_keys: frozenset[str] = frozenset()
    # exceptions that are the user's answer, not a crash: (type, the sentence for the exception)
    refusals: tuple[tuple[type[Exception], Callable[[Exception, BatchJob], str]], ...] = ()
    # -- Dagster: a new request in invoice_batch_job, and what a run records --
    # its Config class (with `kind: Literal[name]`), or a function that gives it: a kind whose
    # module a command loads (to queue or run a job) names a function, so that only the queue's
    # Dagster job imports Dagster's config classes (`request_class`)
    request: type | Callable[[], type] | None = None
    # enqueue(engine, organization, request, who, runner) -> the queued job's id
    enqueue: Callable[[Engine, str, Any, str, str], int] | None = None
    asset: Callable[[Engine, BatchJob], str] | None = None
    metadata: Callable[[Engine, BatchJob], dict] | None = None  # MetadataValues beside the job's
    # -- the command line: lines printed under the job when batch-run finishes it --
    report: Callable[[Engine, BatchJob], list[str]] | None = None
    # -- how a person reads its jobs (batch-status, the stuck-job sweep, batch-retry) --
    # None: the counts in `unit` and `done` and when it was created (`default_summary`)
    summary: Summary | None = None
    # what stays and what is left when the stuck-job sweep stops one of its jobs (a sentence
    # without its full stop; "(retry the failed items)." follows it)
    stuck_left: str = GENERIC_STUCK_LEFT
    # None: a `chunk` kind's retry asks for the same options over the failed invoices
    retry_request: RetryRequest | None = None
    # the options of its request a retry keeps besides what `retry_request` gives
    retry_keeps: tuple[str, ...] = ()
    # -- what a request asks for --
    # a `chunk` kind: options(**asked) -> the options of a new request over invoices
    # (`queue.items.enqueue_invoice_job`'s keywords), checked (BatchRequestError)
    options: Callable[..., dict] | None = None
    # the jobs queued with one of its jobs, in the same transaction (`queue.requests.insert_job`)
    follow_ups: FollowUps | None = None
    # its items become sales invoices: batch-stats counts its orders and invoices, a run records
    # its rate (`queue.stats`, `queue.dagster.job_metadata`)
    creates_invoices: bool = False

    def __post_init__(self) -> None:
        ways = [w for w in (self.chunk, self.run, self.own_job) if w is not None]
        if len(ways) != 1:
            raise ValueError(f"kind {self.name!r}: give exactly one of chunk, run or own_job")
        if self.chunk is None and self.retry_request is None:
            raise ValueError(
                f"kind {self.name!r}: a kind whose items are no invoices says how "
                "its failed items are retried (retry_request)"
            )
        _DECLARED[self.name] = self

    def request_class(self) -> type | None:
        """Its Config class for a new request in invoice_batch_job (None: it takes none)."""
        if self.request is None or isinstance(self.request, type):
            return self.request
        return self.request()

    @property
    def over_invoices(self) -> bool:
        """Its items are sales invoices (`batch_job_items.sales_invoice_id`): a `chunk` kind."""
        return self.chunk is not None

    def summarize(self, job: BatchJob, created: str) -> list[str]:
        return (self.summary or default_summary(self.unit, self.done))(job, created)


def counted(job: BatchJob) -> bool:
    """Whether the job's items are counted yet (a pending job over all reviewed orders is not)."""
    return job.status != "pending" or job.total_count > 0


def dated(job: BatchJob, given: str, not_given: str) -> str:
    """What a summary says of the job's date: `given` with the date in its `{}`, or `not_given`
    when the job was queued without one (the day it runs)."""
    return given.format(job.invoice_date) if job.invoice_date else not_given


def default_summary(unit: str, done: str) -> Summary:
    """A job's counts in its kind's words (`unit`, `done`), and when it was created."""

    def summary(job: BatchJob, created: str) -> list[str]:
        return [
            f"  {unit}: {job.total_count:,} requested, {job.processed_count:,} processed, "
            f"{job.successful_count:,} {done}, {job.failed_count:,} failed, "
            f"{job.skipped_count:,} skipped"
            if counted(job)
            else f"  {unit}: counted when the job starts",
            f"  {created}",
        ]

    return summary


def by_name(kinds: Mapping[str, JobKind], name: str) -> JobKind:
    try:
        return kinds[name]
    except KeyError:
        raise UnknownKind(f"no kind {name!r} is registered with the queue") from None


def resource_keys(kind: JobKind, kinds: Mapping[str, JobKind]) -> frozenset[str]:
    """The resources a kind's run needs, with those of the kind that prepares it."""
    keys = set(kind.resource_keys)
    if kind.prepared_by:
        keys |= by_name(kinds, kind.prepared_by).resource_keys
    return frozenset(keys)


def chunk_work(
    engine: Engine,
    kind: JobKind,
    kinds: Mapping[str, JobKind],
    resources: Resources,
    run_id: str | None,
) -> Work:
    """The work of one chunk of a `chunk` kind: the preparing kind's first, then the kind's own on
    the invoices the preparation did not fail."""
    own = kind.chunk(engine, resources, run_id)
    if not kind.prepared_by:
        return own
    first = by_name(kinds, kind.prepared_by).chunk(engine, resources, run_id)

    def work(job: BatchJob, request: Mapping[str, Any], invoice_ids: list[int]):
        outcomes: dict[int, ItemOutcome] = first(job, request, invoice_ids)
        ready = [i for i in invoice_ids if outcomes.get(i) is SUCCEEDED]
        if ready:
            outcomes.update(own(job, request, ready))
        return outcomes

    return work


def run_job(
    engine: Engine,
    job: BatchJob,
    kinds: Mapping[str, JobKind],
    resources: Resources,
    settings: RunSettings,
) -> BatchJob:
    """Run a queued job of a `chunk` or `run` kind to its end (or its cancel); its final state."""
    from invoice_pipelines.queue.items import run_item_job

    kind = by_name(kinds, job.kind)
    if kind.run is not None:
        return kind.run(engine, job.id, resources, settings)
    if kind.chunk is None:
        raise UnknownKind(f"batch job {job.id} is a {job.kind} job, which its own Dagster job runs")
    return run_item_job(
        engine,
        job.id,
        chunk_work(engine, kind, kinds, resources, settings.runner),
        kind=kind.name,
        closing=kind.closing(resources) if kind.closing else None,
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
