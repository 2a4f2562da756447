"""QuickBooks' sensors: the two push sensors (sales invoices as invoices, supplier invoices as
bills), one factory's, and the sensor that launches the pulls QuickBooks' webhooks ask for."""

from collections.abc import Callable

from dagster import (
    DefaultSensorStatus,
    ResourceParam,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.core.qbo_entities import SYNCED
from invoice_pipelines.lib.automation import Automatic, automatic_organizations
from invoice_pipelines.lib.partitions import organization_tags
from invoice_pipelines.lib.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.lib.turns import organizations_with_a_run, take_turn
from invoice_pipelines.quickbooks.domain.watch import (
    bill_push_waiting,
    push_waiting,
    requested_pulls,
)
from invoice_pipelines.quickbooks.jobs import SYNC_JOBS


def _push_requests(
    context: SensorEvaluationContext,
    job_name: str,
    prefix: str,
    waiting: tuple[dict[str, int], ...],
    automatic: Automatic,
) -> list[RunRequest]:
    """One bulk run per known organization with documents new or pending in its push queue;
    `waiting`: (new, pending, ...) by slug: the newest ids, and what else makes the run key (how
    many wait, so that each chunk of a bounded push gets its run; the newest change). A few
    organizations a tick, the next ones the tick after (the cursor): a stop of the sensor stops
    its requests within one tick (lib/turns.py). `automatic`: the organizations with a
    partition and the suspended ones, left out."""
    known = automatic.known
    # an organization whose push run waits or works is served by that run (no pile of runs)
    busy = organizations_with_a_run(context.instance, job_name)
    new, pending = waiting[0], waiting[1]
    requests = [
        (
            slug,
            RunRequest(
                run_key="-".join([prefix, slug, *(str(part.get(slug, 0)) for part in waiting)]),
                partition_key=slug,
                tags={**organization_tags(slug), **BULK_RUN_TAGS},
            ),
        )
        for slug in sorted(set(new) | set(pending))
        if slug in known and slug not in busy
    ]
    if not requests:
        return []
    turn = take_turn(context.cursor, requests)
    context.log.info(turn.summary(len(requests)))
    context.update_cursor(turn.cursor)
    return turn.requests


def push_sensor(
    *,
    sync: str,
    name: str,
    prefix: str,
    waiting: Callable[[Engine], tuple[dict[str, int], ...]],  # of the system engine
    nothing: str,
    description: str,
):
    """The sensor of one push (`sync`: its entity, core/qbo_entities.py): every minute, a run of
    the entity's job for each organization `waiting` names (`_push_requests`); run keys start
    with `prefix`, `nothing` is the skip's reason."""
    pushing = SYNC_JOBS[sync]

    @sensor(
        name=name,
        job=pushing,
        minimum_interval_seconds=60,
        default_status=DefaultSensorStatus.RUNNING,
        description=description,
    )
    def _push(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
        automatic = automatic_organizations(context.instance, system_database)
        waits = waiting(system_database)
        requests = _push_requests(context, pushing.name, prefix, waits, automatic)
        if not requests:
            return SkipReason(nothing + automatic.note({*waits[0], *waits[1]}))
        return requests

    return _push


qbo_push_sensor = push_sensor(
    sync="invoices",
    name="qbo_push_sensor",
    prefix="qbo-push",
    waiting=push_waiting,
    nothing="No sales invoices wait to be pushed to QuickBooks.",
    description="Every minute: launches qbo_invoices_job for each connected organization with "
    "sales invoices not yet pushed or voided, or refused only because their customer or item "
    "was not synced yet (run key: the organization, its newest such invoice and queue state, "
    "how many wait, and its newest customer/item mapping). A run pushes a bounded chunk, so a "
    "long push is a run after run, each started by this sensor.",
)
qbo_bill_push_sensor = push_sensor(
    sync="bills",
    name="qbo_bill_push_sensor",
    prefix="qbo-bills",
    waiting=bill_push_waiting,
    nothing="No supplier invoices wait to be pushed to QuickBooks as bills.",
    description="Every minute: launches qbo_bills_job for each connected organization with "
    "supplier invoices to push as bills (or bills to delete), and again for those waiting for a "
    "vendor or an expense account once a vendor or account setting changed (run key: the "
    "organization, its newest such document and queue row, and that change). An organization "
    "that has set no expense account at all starts no run: the check bills_waiting names it.",
)


# the entity a webhook asks to pull -> the job that pulls it
PULL_JOBS = {entity.mapping: entity.job for entity in SYNCED if entity.webhook}


@sensor(
    jobs=[SYNC_JOBS[entity.sync] for entity in SYNCED if entity.webhook],
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every 30 s: launches the pull a QuickBooks webhook asked for (customers, items "
    "or payments of one organization; run key: the organization, the pull and the request's "
    "time). The receiver is `invoice-pipelines qbo-webhooks`.",
)
def qbo_webhook_sensor(context: SensorEvaluationContext, system_database: ResourceParam[Engine]):
    automatic = automatic_organizations(context.instance, system_database)
    known = automatic.known
    wanted = requested_pulls(system_database)
    requests = [
        RunRequest(
            run_key=f"qbo-webhook-{slug}-{entity}-{requested.isoformat()}",
            job_name=PULL_JOBS[entity],
            partition_key=slug,
            tags=organization_tags(slug),
        )
        for slug, entity, requested in wanted
        if slug in known and entity in PULL_JOBS
    ]
    if not requests:
        return SkipReason(
            "No webhook asked for a QuickBooks pull."
            + automatic.note(slug for slug, _, _ in wanted)
        )
    return requests
