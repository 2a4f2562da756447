"""The run coordinator that tags every organization-scoped run with its organization.

The per-organization limit in the instance yaml (`tag_concurrency_limits` on `invoice_pipelines/organization`,
`applyLimitPerUniqueValue`) only holds back runs that carry the tag. Sensors set it on their run
requests, but a run launched from the launchpad, with `dagster job launch` or as a re-execution
carries whatever tags the person gave it. Every one of those launches goes through
`DagsterInstance.submit_run`, so this subclass of Dagster's `QueuedRunCoordinator` derives the tag
there, from the run config, before the run is queued:

- a run works on one organization's data when it materializes one partition of an asset
  partitioned by organization (the `dagster/partition` tag is a key of the `organizations` dynamic
  partitions, or a multi-partition's `dagster/partition/organizations` tag names one), or when an
  op's config has an `organization` field (slug or id);
- the organization is looked up in the application database and the tag gets its slug, whatever
  tag value the launch gave (so `12` and `mueller-werkzeugbau` are one organization to the limit);
- a run whose config names an organization that does not exist is failed at once with one
  sentence, before it is queued; if the database cannot be reached, the run is queued with the
  name as given and its op refuses it at run time if it is wrong.
- a run of a backfill that is being cancelled (or is failing) is cancelled at once, before it
  is queued: Dagster's backfill daemon still creates the runs of an iteration under way after a
  cancel (`STOPPING_BACKFILL_STATUSES`);
- a run whose op config has a value the op would refuse anyway (`CONFIG_FIELD_CHECKS`: a
  dunning run's `as_of` that is no date) is failed the same way, before it is queued: the op's
  refusal would come with a stack trace and a second error for the checks of the asset that
  could not run.

Configured in dagster.yaml, the instance configuration (deploy/dagster.yaml: a deployment's copy):

    run_coordinator:
      module: invoice_pipelines.lib.run_coordinator
      class: OrganizationRunCoordinator

Limits stay in the `concurrency:` block; the queue settings of QueuedRunCoordinator still apply
(`dequeue_interval_seconds` under the coordinator's `config:`). What it takes of Dagster's internals
(the instance a coordinator belongs to, the pools Dagster records on a run) is behind the fence
(dagster_internals/, docs/dagster-upgrade.md); Dagster's run tags it reads and writes are written out
as strings, which test_dagster_upgrade.py holds to Dagster's own.

Lanes, so that a dropped invoice never waits behind bulk work (issue 47):

- an `intake_job` run (what upload_sensor launches for dropped files) is in the intake lane:
  `INTAKE_RUN_TAGS`, the highest `dagster/priority` (the queue starts it first), and its
  organization slot `<slug>/intake`. The limit on `invoice_pipelines/organization_slot` holds one
  run per slot, so an organization has one intake run at a time beside at most one other run of
  it, instead of waiting for its own batch, documents or QuickBooks run to end;
- a run whose ops wait on an outside service's rate limit (an op in one of `RATE_LIMITED_POOLS`:
  QuickBooks, whose limit is per company, one company per organization; the mail and text
  message providers, whose limits are per provider) is in that service's lane (issue 56): the
  lane `<service>`, the slot `<slug>/<service>` and `WAITS_ON_TAG`. One run per organization
  and service, since a
  second would only share the same limit; how many at once across organizations is the pool's
  limit, sized by the service's (`dagster instance concurrency set quickbooks N`); and the
  instance caps each service below the bulk share (`invoice_pipelines/waits_on`), so hours of a
  rate-limited QuickBooks push never hold the organization's documents, deliveries' rendering,
  exports or dunning, nor the bulk share's last slots. A long push ends after a bounded chunk and
  its sensor asks for the next (quickbooks/defs.py), so a person's run goes in between;
- every other organization run (local work) has the slot `<slug>`: one at a time per
  organization, as before;
- bulk runs (batch invoicing, documents, QuickBooks pushes and syncs) carry `BULK_RUN_TAGS`, set
  by their sensors and schedules: the lane `bulk` (a QuickBooks run's becomes `quickbooks` here)
  and the share `invoice_pipelines/share=bulk`, which the instance limits to fewer runs than
  `max_concurrent_runs`, so they never take the last slots;
- the runs of a backfill (Dagster's `dagster/backfill` tag) get `BACKFILL_RUN_TAGS` here: bulk
  work (the share `bulk`) in the lane `backfill`, with a cap of its own below the bulk share's
  (`invoice_pipelines/lane=backfill`) and the lowest priority, so a migration's history never takes the slots of today's work. A backfill run
  over one organization's range of months gets that organization's slot; a run over a range of
  several organizations gets the slot of that span (`<first>..<last>`), which holds the runs of
  the same span in other months one at a time (`organizations_slot_of_range`), and the export
  itself keeps one writer per organization (the export lock, waited for before its snapshot:
  exports/domain/pipeline.py).
"""

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from dagster import (
    DagsterRun,
    DagsterRunStatus,
    Field,
    QueuedRunCoordinator,
    StringSource,
    SubmitRunContext,
)

from invoice_pipelines.core.dates import parse_as_of
from invoice_pipelines.dagster_internals.instance import instance_of
from invoice_pipelines.dagster_internals.runs import run_pools
from invoice_pipelines.lib.partitions import (
    ORGANIZATION_TAG,
    ORGANIZATIONS_PARTITIONS_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
    PARTITION_TAG,
)

if TYPE_CHECKING:
    # the type of from_config_value's argument
    from invoice_pipelines.dagster_internals.instance import ConfigurableClassData

ORGANIZATION_FIELD = "organization"

# the tag the per-organization limit keys on: the organization's slug, `<slug>/intake` for intake,
# `<slug>/<service>` for work that waits on an outside service
SLOT_TAG = "invoice_pipelines/organization_slot"
# The lane a run is in, one short value per kind of run, what the Runs page shows a person
# (issue 73: a QuickBooks push and a documents run both showed `lane: bulk`, and the tag that
# told them apart was cut off): `intake`, `bulk` (local bulk work: batch invoicing, documents,
# exports, dunning), `backfill`, or the outside service a run waits on (`quickbooks`, `mail`,
# `text_messages`: RATE_LIMITED_POOLS). The instance caps `backfill` (dagster.yaml).
LANE_TAG = "invoice_pipelines/lane"
INTAKE_LANE, BULK_LANE, BACKFILL_LANE = "intake", "bulk", "backfill"
# The share of the run slots a run counts against: `bulk` for every bulk run, whatever its lane
# (local bulk work, a backfill, a QuickBooks push or sync a sensor launched); the instance caps
# it below max_concurrent_runs, so bulk work never takes the last slots.
SHARE_TAG = "invoice_pipelines/share"
PRIORITY_TAG = "dagster/priority"  # Dagster's: higher values leave the queue first
INTAKE_JOBS = frozenset({"intake_job"})
INTAKE_RUN_TAGS = {LANE_TAG: INTAKE_LANE, PRIORITY_TAG: "10"}
BULK_RUN_TAGS = {LANE_TAG: BULK_LANE, SHARE_TAG: "bulk", PRIORITY_TAG: "-10"}
# Dagster's tags on the runs of a backfill, and on a run over a range of partitions
BACKFILL_TAG = "dagster/backfill"
RANGE_START_TAG = PARTITION_RANGE_START_TAG
RANGE_END_TAG = PARTITION_RANGE_END_TAG
# backfill runs are bulk work (counted in the bulk share's cap) in a lane with a cap of its own
# below it, and leave the queue after every other run: a migration's history never holds
# today's work
BACKFILL_RUN_TAGS = {LANE_TAG: BACKFILL_LANE, SHARE_TAG: "bulk", PRIORITY_TAG: "-20"}
# The states of a backfill (Dagster's `BulkActionStatus`, by value) whose runs Dagster's backfill
# daemon cancels: a person cancelled it, or it is failing. The daemon looks at a cancel only every
# 25 runs it submits (DAGSTER_ASSET_BACKFILL_RUN_CHUNK_SIZE), so runs of an iteration under way are
# still created after the cancel (issue 73: three, up to 1.9 s after it, then started 14-20 s
# later); such a run is cancelled here instead of queued.
STOPPING_BACKFILL_STATUSES = frozenset({"CANCELING", "CANCELED", "FAILING"})
# the pools (Dagster's, set on the ops) whose work waits on an outside service's rate limit: a
# run with an op in one of them is in that service's lane, named by the pool
RATE_LIMITED_POOLS = frozenset({"quickbooks", "mail", "text_messages"})
# the outside service a run waits on, also for a backfill's run (whose lane is `backfill`); the
# instance caps each one's runs below the bulk share
WAITS_ON_TAG = "invoice_pipelines/waits_on"


def waits_on(run: DagsterRun) -> str | None:
    """The outside service whose rate limit a run's ops wait on (`RATE_LIMITED_POOLS`), or None
    for local work. Dagster records a run's pools from its execution plan when it creates the run,
    however it was launched."""
    return service_of(run_pools(run))


def service_of(pools: Iterable[str]) -> str | None:
    """The outside service of a run whose ops are in `pools`, or None for local work."""
    found = sorted(pool for pool in pools if pool in RATE_LIMITED_POOLS)
    return found[0] if found else None


def lane_of(job_name: str, pools: Iterable[str], tags: Mapping[str, str]) -> str | None:
    """The lane of a run of `job_name` whose ops are in `pools`, launched with `tags`: intake for
    intake_job, backfill for a backfill's run, the service a run waits on, else the lane its
    launch gave (`bulk` from the sensors and schedules of bulk work), or None."""
    if job_name in INTAKE_JOBS:
        return INTAKE_LANE
    if tags.get(BACKFILL_TAG):
        return BACKFILL_LANE
    return service_of(pools) or tags.get(LANE_TAG)


def lane_tags(run: DagsterRun, slug: str | None, span: str | None = None) -> dict[str, str]:
    """The tags a run gets before it is queued: its lane's (`lane_of`: intake runs, backfill runs,
    runs that wait on an outside service) and its slot: the organization's (`slug`), else the
    span's of a range over several organizations (`span`).

    A run over a span of several organizations is bulk work whoever launched it: it gets the
    bulk share, lane and priority (`BULK_RUN_TAGS`) where its launch gave none. The month-end's
    schedules (exports, dunning) launch such runs without them: at 200 organizations their 22
    runs held all 8 run slots at once and the intake's runs queued behind them (issue 76); a
    re-execution of one of them from the UI is the same work."""
    intake = run.job_name in INTAKE_JOBS
    tags = dict(INTAKE_RUN_TAGS) if intake else {}
    if not intake and run.tags.get(BACKFILL_TAG):
        tags.update(BACKFILL_RUN_TAGS)
    elif not intake and span and not slug and SHARE_TAG not in run.tags:
        tags.update({key: value for key, value in BULK_RUN_TAGS.items() if key not in run.tags})
    service = None if intake else waits_on(run)
    if service:
        tags[WAITS_ON_TAG] = service
    lane = lane_of(run.job_name, run_pools(run), {**run.tags, **tags})
    if lane:
        tags[LANE_TAG] = lane
    slot = slug or span
    if slot:
        apart = INTAKE_LANE if intake else service
        tags[SLOT_TAG] = f"{slot}/{apart}" if apart else slot
    return {key: value for key, value in tags.items() if run.tags.get(key) != value}


def _as_of(value: Any) -> None:
    parse_as_of(str(value))


# op config fields checked before a run is queued: field name -> a function that raises
# ValueError with the sentence that refuses the value
CONFIG_FIELD_CHECKS = {"as_of": _as_of}


def config_refusal(run_config: Mapping[str, Any] | None) -> str | None:
    """The sentence that refuses a value of an op's config (`CONFIG_FIELD_CHECKS`), or None."""
    for config in _op_configs(run_config):
        for name, check in CONFIG_FIELD_CHECKS.items():
            if config.get(name) not in (None, ""):
                try:
                    check(config[name])
                except ValueError as exc:
                    return str(exc)
    return None


def _op_configs(run_config: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    """The config of every op a run config configures, also of the ops inside graphs."""
    pending = [(run_config or {}).get("ops")]
    while pending:
        ops = pending.pop()
        if not isinstance(ops, Mapping):
            continue
        for entry in ops.values():
            if not isinstance(entry, Mapping):
                continue
            config = entry.get("config")
            if isinstance(config, Mapping):
                yield config
            pending.append(entry.get("ops"))


class ConflictingOrganizations(ValueError):
    """A run config that names more than one organization."""


def organization_in_run_config(run_config: Mapping[str, Any] | None) -> str | None:
    """The organization (slug or id, as written) that a run's op config names, or None.

    Looks at the `organization` field of every op's config, also inside graphs; a run config that
    names two different organizations raises ConflictingOrganizations.
    """
    found = {
        str(config[ORGANIZATION_FIELD]).strip()
        for config in _op_configs(run_config)
        if config.get(ORGANIZATION_FIELD) not in (None, "")
    }
    if len(found) > 1:
        raise ConflictingOrganizations(
            f"the run config names more than one organization ({', '.join(sorted(found))}); "
            "a run works on one organization"
        )
    return next(iter(found), None)


def organization_in_partition(run: DagsterRun, is_organization) -> str | None:
    """The organization whose partitions a run materializes, or None (no partition, or a range
    over several organizations).

    `is_organization(key)` says whether a partition key (or one dimension's part of a multi-
    partition key, `2026-03|acme`) is an organization's. A range of a multi-partition is the
    rectangle between its two ends, dimension by dimension (Dagster's
    `MultiPartitionsDefinition.get_partition_keys_in_range`), so a range whose two ends name one
    organization is that organization's months alone: a backfill chunk or a launch over a range
    is limited per organization like a run of one partition.
    """
    tags = run.tags
    by_dimension = tags.get(f"{PARTITION_TAG}/{ORGANIZATIONS_PARTITIONS_NAME}")
    if by_dimension:
        return by_dimension
    key = tags.get(PARTITION_TAG)
    if key and is_organization(key):
        return key
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        ends = {
            _organization_of_key(start, is_organization),
            _organization_of_key(end, is_organization),
        }
        if len(ends) == 1 and None not in ends:
            return ends.pop()
    return None


def organizations_slot_of_range(run: DagsterRun, is_organization) -> str | None:
    """The slot of a run over a range of partitions that spans several organizations
    (`<first>..<last>`, the organizations at the range's two ends), or None.

    Dagster's backfill of a multi-partition cuts its keys into ranges along the dimension with
    fewer keys (`DefaultPartitionsSubset.get_partition_key_ranges`): with more organizations than
    months, each run covers a span of organizations in one month. The same organizations in
    another month are the same span, so the slot holds the runs of one span one at a time: no two
    runs of a backfill export one organization at once, while other spans proceed. A span that
    overlaps another without being the same (a selection that differs from month to month) is
    not held by it; there the export lock keeps one writer per organization
    (exports/domain/pipeline.py)."""
    start, end = run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)
    if not (start and end):
        return None
    first = _organization_of_key(start, is_organization)
    last = _organization_of_key(end, is_organization)
    if first is None or last is None or first == last:
        return None
    return f"{first}..{last}"


def _organization_of_key(key: str, is_organization) -> str | None:
    """The organization a partition key names, in a single dimension or as one part of a
    multi-partition key; None when no part (or more than one) is an organization."""
    found = [part for part in key.split("|") if is_organization(part)]
    return found[0] if len(found) == 1 else None


class OrganizationRunCoordinator(QueuedRunCoordinator):
    """QueuedRunCoordinator that sets the organization tag from the run config (see module doc)."""

    def __init__(self, database_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._database_url = database_url or None

    @classmethod
    def config_type(cls) -> dict:
        return {
            **super().config_type(),
            "database_url": Field(
                StringSource,
                is_required=False,
                description="Application database to look organizations up in; default "
                "INVOICE_PIPELINES_DB_URL.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: "ConfigurableClassData", config_value: Mapping[str, Any]
    ) -> "OrganizationRunCoordinator":
        config = dict(config_value)
        database_url = config.pop("database_url", None)
        coordinator = super().from_config_value(inst_data, config)
        coordinator._database_url = database_url or None
        return coordinator

    def _slug(self, organization: str) -> str:
        # imported here: the instance loads this module in the webserver and the daemon, which
        # need the database only when a run names an organization
        from invoice_pipelines.db.engine import shared_engine
        from invoice_pipelines.db.tenancy import find_organization

        return find_organization(shared_engine(self._database_url, system=True), organization).slug

    def _refuse(self, run: DagsterRun, message: str) -> DagsterRun:
        # one plain sentence, no stack trace: the launchpad opens the run and shows it
        instance_of(self).report_run_failed(run, message=message)
        return instance_of(self).get_run_by_id(run.run_id) or run

    def _stopping_backfill(self, run: DagsterRun) -> str | None:
        """The status of the run's backfill when Dagster cancels that backfill's runs
        (`STOPPING_BACKFILL_STATUSES`), else None (no backfill, or one that goes on)."""
        backfill_id = run.tags.get(BACKFILL_TAG)
        if not backfill_id:
            return None
        backfill = instance_of(self).get_backfill(backfill_id)
        status = getattr(getattr(backfill, "status", None), "value", None)
        return status if status in STOPPING_BACKFILL_STATUSES else None

    def _cancel_for_backfill(self, run: DagsterRun, status: str) -> DagsterRun:
        backfill_id = run.tags[BACKFILL_TAG]
        return self._cancel(
            run,
            f"its backfill {backfill_id} is {status.lower()} (Dagster's backfill daemon created "
            "it after the cancel, as it looks at a cancel only every 25 runs it submits).",
        )

    def _suspended(self, run: DagsterRun, slug: str) -> str | None:
        """Why a backfill's run of a suspended organization is not queued (its suspension's
        reason), else None: a backfill is automatic work, like a sensor's or a schedule's, and
        requests nothing for it until it is resumed (tenants/domain/lifecycle.py)."""
        if not run.tags.get(BACKFILL_TAG):
            return None
        from invoice_pipelines.db.engine import shared_engine
        from invoice_pipelines.db.tenancy import suspended_organizations

        try:
            return suspended_organizations(shared_engine(self._database_url, system=True)).get(slug)
        except Exception:  # the database is down: the run's op checks what it needs
            return None

    def _cancel_for_suspension(self, run: DagsterRun, slug: str, reason: str) -> DagsterRun:
        return self._cancel(
            run,
            f"{slug} is suspended ({reason}); resume it (invoice-pipelines organizations resume "
            f"{slug}) and retry the backfill's cancelled partitions.",
        )

    def _cancel(self, run: DagsterRun, why: str) -> DagsterRun:
        """`run` cancelled before it is queued, its message saying `why`; the run as it is now."""
        instance_of(self).report_run_canceled(
            run, message=f"Run cancelled before it was queued: {why}"
        )
        return instance_of(self).get_run_by_id(run.run_id) or run

    def submit_run(self, context: SubmitRunContext) -> DagsterRun:
        from invoice_pipelines.db.tenancy import UnknownOrganization

        run = context.dagster_run
        if run.status != DagsterRunStatus.NOT_STARTED:
            return super().submit_run(context)
        stopping = self._stopping_backfill(run)
        if stopping:
            return self._cancel_for_backfill(run, stopping)
        refusal = config_refusal(run.run_config)
        if refusal:
            return self._refuse(run, f"Run refused: {refusal}")
        try:
            organization = organization_in_run_config(run.run_config)
        except ConflictingOrganizations as exc:
            return self._refuse(run, f"Run refused: {exc}.")

        def is_organization(key: str) -> bool:
            return instance_of(self).has_dynamic_partition(ORGANIZATIONS_PARTITIONS_NAME, key)

        if organization is None:
            organization = organization_in_partition(run, is_organization)
        if organization is None:
            return self._queue(
                run,
                context,
                run.tags.get(ORGANIZATION_TAG),
                span=organizations_slot_of_range(run, is_organization),
            )
        try:
            slug = self._slug(organization)
        except UnknownOrganization:
            return self._refuse(
                run, f"Run refused: there is no organization {organization!r} (use its slug or id)."
            )
        except Exception as exc:  # the database is down or misconfigured
            # queue it under the name as given; the op checks the organization when it starts
            slug = organization
            instance_of(self).report_engine_event(
                f"could not look organization {organization!r} up ({type(exc).__name__}: {exc}); "
                "tagged with the name as given",
                run,
            )
        reason = self._suspended(run, slug)
        if reason is not None:
            return self._cancel_for_suspension(run, slug, reason)
        return self._queue(run, context, slug)

    def _queue(
        self,
        run: DagsterRun,
        context: SubmitRunContext,
        slug: str | None,
        span: str | None = None,
    ) -> DagsterRun:
        tags = lane_tags(run, slug, span)
        if slug and run.tags.get(ORGANIZATION_TAG) != slug:
            tags[ORGANIZATION_TAG] = slug
        if tags:
            instance_of(self).add_run_tags(run.run_id, tags)
            run = instance_of(self).get_run_by_id(run.run_id) or run
        return super().submit_run(SubmitRunContext(run, workspace=context.workspace))
