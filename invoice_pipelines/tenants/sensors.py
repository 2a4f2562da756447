"""The organizations' sensor: `organizations_sensor` keeps the `organizations` dynamic partitions in
step with the organizations table (the sensor that requests a period's runs over every
organization is everyone's kit: lib/sensors.py)."""

import hashlib

from dagster import (
    AssetMaterialization,
    DefaultSensorStatus,
    ResourceParam,
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
from invoice_pipelines.lib.asset_metadata import check_result
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)
from invoice_pipelines.scheduled_checks import evaluation
from invoice_pipelines.tenants.assets import ORGANIZATIONS_ASSET
from invoice_pipelines.tenants.domain.listing import (
    organization_facts,
    organization_findings,
    show_organization,
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
