"""What a kind of batch job is (`JobKind`), as its area builds it: the queue never imports an area.
A kind says how its jobs run, how a new request is made, how a person reads its jobs and how its
failed items are retried; the queue's Dagster job, its sensors and the shared commands
(`queue/defs.py`, `queue/commands/run.py`) do the rest. Light on purpose (no Dagster, no queue state):
the kinds' value (`queue/domain/known_kinds.py`) and the queue's state modules name the type.

Adding a kind is one file in its area that builds a `JobKind`, its name in
`core.batch_kinds.KindName`, and its line in its area's `area.py` (`QueueKind(name, loader)`):
`areas.kinds()` gathers every area's into one read-only value (`Kinds`), which the queue's Dagster
objects are built from (`queue.defs.build_defs`) and which every run and every command gets as
the `batch_kinds` resource. Nothing is registered: a function that needs a kind is handed it, or
the value.

How a kind runs (`runs`), exactly one of:

- `Chunks`: items are sales invoices, and the work of a chunk runs outside the queue's
  transactions (`queue.items.run_item_job`: documents, communications). `prepared_by` names a kind
  whose chunk work runs first on the same invoices (communications: the documents are written
  before they are sent); an invoice it fails is not handed on.
- `RunsItself`: the kind runs its job itself with the queue's functions (credit notes through
  `queue.atomic`).
- `OwnJob`: a Dagster job of the area runs it (invoicing: `batch_invoicing_job`, which
  materializes the `sales_invoices` asset). The kind names that job, the op whose config takes
  the queued job, and that config; the queue's `batch_jobs_sensor` builds the run request per
  pending job (partition and tags: the job's organization).

How a request is made (`requests`: its launchpad config, how it is queued, what a request over
invoices may ask for, the jobs queued with one of its jobs); how a person reads its jobs
(`reading`: its items' word and what done means for them, the lines `batch-status` shows, what
stays when the stuck-job sweep stops one, what batch-run prints and what a run records); how a
retry works (`retry`); what resources its work needs, which exceptions are the user's answer
(`refusals`) and whether its items become sales invoices (`creates_invoices`: batch-stats counts
its orders).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.queue.domain.batch_job import BatchJob

DEFAULT_CHUNK_SIZE = 200


class Resources(Protocol):
    """The resources a kind's work needs, as attributes named as definitions.py names them
    (`document_store`, `mailer`, ...): a run's `context.resources`, or the command line's
    (`resources.for_commands.EnvResources`)."""

    def __getattr__(self, name: str) -> Any: ...


@dataclass(frozen=True)
class ItemOutcome:
    status: str  # succeeded | failed | skipped
    code: str | None = None
    message: str | None = None
    # an audit log row (action, created_by, entity, details) written with the item's outcome
    audit: dict | None = None


SUCCEEDED = ItemOutcome("succeeded")
# the work of one chunk: (job, its organization, its request, the chunk's invoice ids) -> outcome
# per invoice id; the queue finds the organization once per job (`queue.items.run_item_job`)
Work = Callable[[BatchJob, Organization, Mapping[str, Any], list[int]], dict[int, ItemOutcome]]
# closing(conn, job, request): the job's closing work, done once under its lock by the runner that
# finishes it (`queue.transitions.finish`); audit rows to write with the end, as (action, details)
Closing = Callable[[Connection, BatchJob, Mapping[str, Any]], list[tuple[str, dict]]]
Progress = Callable[[BatchJob], None]
# summary(job, "created at ... by ...") -> the lines batch-status shows under the job's first line
Summary = Callable[[BatchJob, str], list[str]]
# retry request(the failed items' rows, the job's request) -> the request of their retry job
RetryRequest = Callable[[Sequence[Any], Mapping[str, Any]], dict]
# follow_ups(the job's request, its id) -> the jobs queued with it, as (kind, request)
FollowUps = Callable[[Mapping[str, Any], int], list[tuple[str, dict]]]
# an exception that is the user's answer, not a crash: (its type, the sentence for it)
Refusal = tuple[type[Exception], Callable[[Exception, BatchJob], str]]

# what stays of a stopped job when its kind says nothing of its own (`Reading.stuck_left`)
GENERIC_STUCK_LEFT = "Items done stay; the items not reached were not processed"


@dataclass(frozen=True)
class RunSettings:
    """How one run takes a job: chunk size, who runs it, where progress goes."""

    chunk_size: int
    runner: str | None
    on_progress: Progress | None = None


# -- how it runs: one of these ------------------------------------------------------------------


@dataclass(frozen=True)
class Chunks:
    """Its items are sales invoices; the queue runs them chunk by chunk."""

    # work(engine, resources, run id) -> the work of one chunk of sales invoices
    work: Callable[[Engine, Resources, str | None], Work]
    # the kind whose chunk work runs first on the same invoices
    prepared_by: str | None = None
    # closing(resources) -> the job's closing work
    closing: Callable[[Resources], Closing] | None = None
    # invoices per chunk when batch-run is not told (the launchpad's config has its own default)
    default_chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class RunsItself:
    """The kind runs its job itself with the queue's functions."""

    # run(engine, job id, resources, settings) -> the job's final state
    run: Callable[[Engine, int, Resources, RunSettings], BatchJob]
    # items per chunk when batch-run is not told (the launchpad's config has its own default)
    default_chunk_size: int = DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class OwnJob:
    """A Dagster job of its area runs it, partitioned by organization: the queue's
    `batch_jobs_sensor` launches `job_name` once per queued job, for the job's organization's
    partition, with `config(job id)` as the config of its op (or asset) `op`. Plain values: the
    kind is built without Dagster, and the sensor builds the run request."""

    job_name: str
    op: str
    # config(job id) -> the config of `op` that names the queued job
    config: Callable[[int], dict]
    # its runs are bulk work (the run coordinator's bulk lane, behind interactive runs)
    bulk: bool = False


HowItRuns = Chunks | RunsItself | OwnJob


# -- how a request is made, read and retried ----------------------------------------------------


@dataclass(frozen=True)
class Requests:
    """How a new request of the kind is made."""

    # its Config class (with `kind: Literal[name]`) for invoice_batch_job's launchpad, or a
    # function that gives it: a kind whose module a command loads (to queue or run a job) names a
    # function, so that only the queue's Dagster job imports Dagster's config classes
    config: type | Callable[[], type] | None = None
    # enqueue(engine, organization, config, who, runner) -> the queued job's id
    enqueue: Callable[[Engine, Organization, Any, str, str], int] | None = None
    # a `Chunks` kind: options(**asked) -> the options of a new request over invoices
    # (`queue.items.enqueue_invoice_job`'s keywords), checked (BatchRequestError)
    options: Callable[..., dict] | None = None
    # the jobs queued with one of its jobs, in the same transaction (`queue.requests.insert_job`)
    follow_ups: FollowUps | None = None


@dataclass(frozen=True)
class Reading:
    """How a person reads its jobs: batch-status, the stuck-job sweep, batch-run, a run's record."""

    # how a person names its items and what done means for them ("invoices", "written")
    unit: str = "items"
    done: str = "done"
    # None: the counts in `unit` and `done` and when it was created (`default_summary`)
    summary: Summary | None = None
    # what stays and what is left when the stuck-job sweep stops one of its jobs (a sentence
    # without its full stop; "(retry the failed items)." follows it)
    stuck_left: str = GENERIC_STUCK_LEFT
    # report(engine, job) -> lines batch-run prints under the job when it finishes it
    report: Callable[[Engine, BatchJob], list[str]] | None = None
    # asset(engine, job) -> the asset a run of invoice_batch_job records the job on
    asset: Callable[[Engine, BatchJob], str] | None = None
    # metadata(engine, job) -> MetadataValues beside the job's counts on that record
    metadata: Callable[[Engine, BatchJob], dict] | None = None
    # checks(engine, job) -> the results (AssetCheckResults, each named) of that asset's checks
    # that judge what the job wrote: logged on that record, so the UI does not show them "Not
    # evaluated" on it (issue 73)
    checks: Callable[[Engine, BatchJob], list] | None = None

    def summarize(self, job: BatchJob, created: str) -> list[str]:
        return (self.summary or default_summary(self.unit, self.done))(job, created)


@dataclass(frozen=True)
class Retry:
    """How a retry of its failed items is asked for (`queue.jobs.retry_failed`)."""

    # None: a `Chunks` kind's retry asks for the same options over the failed invoices
    request: RetryRequest | None = None
    # the options of its request a retry keeps besides what `request` gives
    keeps: tuple[str, ...] = ()


# the queue's Dagster job for the kinds it runs itself that do local work
LOCAL_QUEUE_JOB = "invoice_batch_job"


@dataclass(frozen=True)
class JobKind:
    name: str  # batch_jobs.kind
    runs: HowItRuns
    requests: Requests = field(default_factory=Requests)
    reading: Reading = field(default_factory=Reading)
    retry: Retry = field(default_factory=Retry)
    # the resources its work needs, by the names definitions.py gives them
    resource_keys: frozenset[str] = frozenset()
    refusals: tuple[Refusal, ...] = ()
    # its items become sales invoices: batch-stats counts its orders and invoices, a run records
    # its rate (`queue.stats`, `queue.dagster.job_metadata`)
    creates_invoices: bool = False
    # the outside service whose rate limit its work waits on (a pool the run coordinator knows:
    # `lib.run_coordinator.RATE_LIMITED_POOLS`), or None for local work. A kind the queue
    # runs itself with one gets a Dagster job of its own whose op is in that pool, so its runs
    # are in the service's lane and never hold the organization's local work (issue 56).
    waits_on: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.runs, Chunks | RunsItself | OwnJob):
            raise ValueError(
                f"kind {self.name!r}: runs is exactly one of Chunks, RunsItself or OwnJob"
            )
        if not self.over_invoices and self.retry.request is None:
            raise ValueError(
                f"kind {self.name!r}: a kind whose items are no invoices says how "
                "its failed items are retried (Retry.request)"
            )

    def request_class(self) -> type | None:
        """Its Config class for a new request in invoice_batch_job (None: it takes none)."""
        config = self.requests.config
        if config is None or isinstance(config, type):
            return config
        return config()

    @property
    def over_invoices(self) -> bool:
        """Its items are sales invoices (`batch_job_items.sales_invoice_id`): a `Chunks` kind."""
        return isinstance(self.runs, Chunks)

    @property
    def queue_job(self) -> str | None:
        """The queue's Dagster job that runs its jobs: `invoice_batch_job` for local work, `<name>_batch_job` for a kind that waits on an
        outside service; None for a kind with a job of its own (`own_job`)."""
        if self.own_job is not None:
            return None
        return LOCAL_QUEUE_JOB if self.waits_on is None else f"{self.name}_batch_job"

    @property
    def queue_sensor(self) -> str | None:
        """The sensor that launches `queue_job` for its pending jobs."""
        return f"{self.queue_job}s_sensor" if self.queue_job else None

    @property
    def own_job(self) -> OwnJob | None:
        """The Dagster job of its area that runs it; None for a kind the queue's job runs."""
        return self.runs if isinstance(self.runs, OwnJob) else None


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
