"""The tenants layer's sensors: `organizations_sensor` keeps the `organizations` dynamic partitions in
step with the organizations table; `period_runs_sensor` makes the sensor that requests a period's
runs over every organization a few a tick (the month-end's exports and the dunning)."""

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime

from dagster import (
    AssetMaterialization,
    DefaultSensorStatus,
    JobDefinition,
    ResourceParam,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import (
    active_organization_slugs,
    find_organizations,
    organizations_last_changed,
)
from invoice_pipelines.scheduled_checks import evaluation
from invoice_pipelines.tenants.asset_metadata import check_result
from invoice_pipelines.tenants.assets import ORGANIZATIONS_ASSET
from invoice_pipelines.tenants.domain.automation import automatic_organizations
from invoice_pipelines.tenants.domain.listing import (
    organization_facts,
    organization_findings,
    show_organization,
)
from invoice_pipelines.tenants.domain.periods import Cadence, Chunk, Progress, step
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    PERIOD_SENSOR_INTERVAL_SECONDS,
    RUNS_PER_TICK,
    organizations_partitions,
    organizations_per_run,
)

# new keys a tick writes at most, in one call: Dagster's storage builds one INSERT with a bind
# parameter per value (dagster-postgres: 10,000 keys took 1.57-3.5 s to build and send, most of
# it SQLAlchemy compiling 20,000 parameters), so 10,000 organizations written past `organizations
# add` (which writes its partitions itself) get theirs over five ticks of about 0.2-0.3 s
ADD_PER_TICK = 2000


# organizations a tick records on the `organizations` asset at most (a materialization and its
# checks' evaluations each: a few queries an organization)
RECORDED_PER_TICK = 100


def organization_events(engine: Engine, found: list[Organization]) -> list:
    """Each organization's partition of the `organizations` asset as it is, with its checks
    evaluated on it: what the sensor records for an organization never materialized (`found`:
    the organizations as the entry point looked them up, `find_organizations`)."""
    events: list = []
    for organization in found:
        slug = organization.slug
        shown = show_organization(engine, organization)
        events.append(
            AssetMaterialization(
                ORGANIZATIONS_ASSET,
                partition=slug,
                metadata={**organization_facts(shown), "recorded_by": "organizations_sensor"},
            )
        )
        events += [
            evaluation(check_result(finding), ORGANIZATIONS_ASSET, slug, check_name=name)
            for name, finding in organization_findings(shown).items()
        ]
    return events


def plan_partition_sync(wanted: list[str], existing: list[str]) -> tuple[list[str], list[str]]:
    """Keys to add and keys to remove so the partition set equals `wanted`."""
    wanted_set, existing_set = set(wanted), set(existing)
    return sorted(wanted_set - existing_set), sorted(existing_set - wanted_set)


def _fingerprint(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]


@sensor(
    name="organizations_sensor",
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Adds (in one call a tick, at most 2,000 keys) and removes `organizations` partitions to "
        "match the active organizations; a key added by hand that is no active organization is "
        "removed at the next tick. Records the `organizations` partition (and its checks) of each "
        f"organization it adds, {RECORDED_PER_TICK} a tick."
    ),
)
def organizations_sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
    engine = system_database  # every organization
    # cursor: how many organizations there are and when the last one changed, and which partition
    # keys there are; when all three are as last tick, nothing needs comparing. The keys are read
    # every tick (one query) because the UI's "Add a partition" writes them without touching the
    # organizations: a mistyped key must go, not stay until the next organization changes.
    count, changed = organizations_last_changed(engine)
    existing = context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    organizations_stamp = f"{count}:{changed.isoformat() if changed else '-'}"
    stamp = f"{organizations_stamp}:{_fingerprint(existing)}"
    if context.cursor == stamp:
        return SkipReason(
            "no organization changed and no partition key was added or removed since the last tick"
        )
    slugs = active_organization_slugs(engine)
    if not slugs and existing:
        # An empty result is far more often a wrong INVOICE_PIPELINES_DB_URL than a real wipe of
        # every tenant; removing all partitions would hide their history in the UI.
        return SkipReason(
            f"the database has no active organizations; refusing to remove all {len(existing)} "
            "partitions (check INVOICE_PIPELINES_DB_URL, or remove them by hand)"
        )
    to_add, to_remove = plan_partition_sync(slugs, existing)
    if not to_add and not to_remove:
        context.update_cursor(stamp)
        return SkipReason(f"{len(slugs)} organizations, partitions already in step")
    requests = []
    # the keys left for the next ticks (`ADD_PER_TICK`): the cursor stays, so the next tick
    # compares again and writes the next ones
    later = to_add[ADD_PER_TICK:]
    to_add = to_add[:ADD_PER_TICK]
    if to_add:
        # written here, in one call for every key: Dagster's daemon checks each key of an add
        # request apart (`has_dynamic_partition`, a query a key: 14.45 s for 10,000 new
        # organizations on dagster-postgres, issue 75), where this call takes one statement.
        # `organizations add` writes them itself; this covers organizations written otherwise.
        context.instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, to_add)
    if to_remove:
        # few at a time (an organization deactivated, a key added by hand): Dagster deletes one
        # key a call anyway
        requests.append(organizations_partitions.build_delete_request(to_remove))
    # the removed keys by name: a deactivated organization's slug, or a key someone added by hand
    context.log.info(
        f"organizations: +{len(to_add)} -{len(to_remove)}"
        + (f" (removed: {', '.join(to_remove[:10])})" if to_remove else "")
    )
    # the cursor names the keys as they will be once the daemon applied the requests (as it was,
    # while keys wait for the next ticks)
    cursor = context.cursor if later else f"{organizations_stamp}:{_fingerprint(slugs)}"
    # each organization added is recorded on the `organizations` asset with its checks: a fresh
    # demo showed its organizations "Missing" (issue 85); an onboarding of thousands shows the
    # first RECORDED_PER_TICK of a tick (Materialize, or a change, records the others)
    recorded, _gone = find_organizations(engine, to_add[:RECORDED_PER_TICK])
    events = organization_events(engine, recorded)
    if not requests:
        said = (
            f"added {len(to_add)} organizations' partitions in one call"
            + (f" ({', '.join(to_add[:10])}{' ...' if len(to_add) > 10 else ''})" if to_add else "")
            + (f"; {len(later)} more at the next ticks" if later else "")
        )
        return SensorResult(skip_reason=said, asset_events=events, cursor=cursor)
    return SensorResult(dynamic_partitions_requests=requests, asset_events=events, cursor=cursor)


def period_runs_sensor(
    *,
    name: str,
    job: JobDefinition,
    cadence: Cadence,
    period: Callable[[datetime], str],
    run_request: Callable[[datetime, str, str, str], RunRequest],
    organizations_per_run_at_least: int,
    description: str,
    runs_per_tick: int = RUNS_PER_TICK,
    minimum_interval_seconds: int = PERIOD_SENSOR_INTERVAL_SECONDS,
    clock: Callable[[], datetime] | None = None,
) -> SensorDefinition:
    """A sensor that requests each due period's runs over every working organization, at most
    `runs_per_tick` a tick (tenants/domain/periods.py: the cursor and its rules).

    `cadence` says when a period is due, `period(tick)` names it ("2026-10"), and
    `run_request(tick, run_key, first, last)` is the run over the organizations `first` to `last`
    (partition keys, inclusive; the key is `<period>-batch-<n>`). A period is cut as the
    schedules cut it: ranges of consecutive partitions without a suspended organization
    (tenants/domain/automation.py), `organizations_per_run(...)` organizations each, so two such
    sensors' runs over an organization share its slot."""

    def describe(tick: datetime) -> str:
        return f"{period(tick)} (due {tick:%Y-%m-%d %H:%M %Z})"

    @sensor(
        name=name,
        job=job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
        now = clock() if clock is not None else datetime.now(UTC)
        try:
            progress = Progress.read(context.cursor, cadence)
        except ValueError as exc:  # a cursor a person typed wrong: kept, and what to write
            return SensorResult(skip_reason=str(exc), cursor=context.cursor)
        notes: list[str] = []

        def plan(tick: datetime) -> list[Chunk]:
            automatic = automatic_organizations(context.instance, system_database)
            if automatic.suspended:
                notes.append(automatic.note().removeprefix("; "))
            if not automatic.working:
                notes.append("no organizations yet")
            per_run = organizations_per_run(len(automatic.working), organizations_per_run_at_least)
            return [(batch[0], batch[-1]) for batch in automatic.ranges(per_run)]

        done = step(progress, cadence.due(now), plan, runs_per_tick)
        cursor, tick = done.progress, done.progress.tick
        later = f"next: {describe(cadence.after(cursor.latest))}" if cursor.latest else ""
        if done.fresh:
            message = (
                f"first tick: {describe(cursor.latest)} taken as done, as a new schedule skips "
                "the ticks before it; to request it, set this sensor's cursor to "
                f'{{"tick": "{cursor.latest:%Y-%m-%dT%H:%M}"}}; {later}'
            )
            return SensorResult(skip_reason=message, cursor=cursor.write())
        if tick is None:  # nothing requested since the first tick
            message = f"nothing due since this sensor's first tick; {later}"
            return SensorResult(skip_reason=message, cursor=cursor.write())
        message = f"{period(tick)}: {cursor.requested} of {cursor.runs} runs requested"
        message += "".join(f"; {note}" for note in notes)
        if not done.chunks:
            return SensorResult(skip_reason=f"{message}; {later}", cursor=cursor.write())
        context.log.info(message)
        label = period(tick)
        requests = [
            run_request(tick, f"{label}-batch-{number}", first, last)
            for number, first, last in done.chunks
        ]
        return SensorResult(run_requests=requests, cursor=cursor.write())

    return _sensor
