"""The intake's sensors: `upload_sensor` registers settled uploads and launches `intake_job` in
batches of document ids, `intake_failure_sensor` sends the documents of a failed run again, one
run each, and `mailbox_sensor` makes the invoice attachments of the organizations' mailboxes
uploads (intake/domain/mailbox.py)."""

import json
import time
from functools import partial

from dagster import (
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    ResourceParam,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    run_failure_sensor,
    sensor,
)
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import (
    UnknownOrganization,
    find_organization,
    suspended_organizations,
)
from invoice_pipelines.intake.assets import IncomingInvoicesConfig, mailbox_messages, uploads
from invoice_pipelines.intake.domain.duplicate_uploads import duplicates_table, invoice_named
from invoice_pipelines.intake.domain.mailbox import read_mailboxes
from invoice_pipelines.intake.domain.redispatch import DEPTH_TAG, redispatch_batches, run_depth
from invoice_pipelines.intake.domain.uploads import ScanResult, ScanState, scan_uploads
from invoice_pipelines.intake.jobs import intake_job
from invoice_pipelines.lib.automation import automatic_organizations
from invoice_pipelines.lib.partitions import partition_run_tags
from invoice_pipelines.lib.run_coordinator import INTAKE_RUN_TAGS
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.settings import positive_number


def intake_run_request(
    slug: str, document_ids: list[int], run_key: str, tags: dict[str, str] | None = None
) -> RunRequest:
    return RunRequest(
        run_key=run_key,
        partition_key=slug,
        run_config=RunConfig(
            ops={"incoming_invoices": IncomingInvoicesConfig(document_ids=document_ids)}
        ),
        # upload_sensor asks only for known organizations; the intake lane leaves the queue first
        # and never waits behind the organization's bulk runs (lib/run_coordinator.py)
        tags={**partition_run_tags(slug), **INTAKE_RUN_TAGS, **(tags or {})},
    )


@run_failure_sensor(
    name="intake_failure_sensor",
    monitored_jobs=[intake_job],
    request_job=intake_job,
    minimum_interval_seconds=10,
    default_status=DefaultSensorStatus.RUNNING,
    description="When an intake_job run fails, sends each of its documents still waiting again in "
    "a run of its own: one document that stops a run stops only itself. A document is taken up "
    "at most 3 times; then it is FAILED (IP-PROC-02) instead of dispatched again.",
)
def intake_failure_sensor(
    context: RunFailureSensorContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    run = context.dagster_run
    slug = run.tags.get("dagster/partition")
    if not slug:
        return SkipReason(f"run {run.run_id} has no organization partition")
    suspended = suspended_organizations(system_database)
    if slug in suspended:
        return SkipReason(f"{slug} is suspended ({suspended[slug]}); its documents wait")
    config = ((run.run_config or {}).get("ops") or {}).get("incoming_invoices") or {}
    document_ids = (config.get("config") or {}).get("document_ids") or []
    if (config.get("config") or {}).get("retry_failed"):
        return SkipReason(f"run {run.run_id} was a retry of FAILED documents")
    try:
        org = find_organization(system_database, slug)  # the failed run's, found once
    except UnknownOrganization:
        return SkipReason(f"run {run.run_id} failed; its organization {slug!r} is gone")
    again = redispatch_batches(
        database,
        org,
        document_ids,
        failed_run_id=run.run_id,
        depth=run_depth(run.tags),
    )
    if not again:
        return SkipReason(f"run {run.run_id} failed; none of its documents is to be sent again")
    context.log.warning(
        f"intake run {run.run_id} failed; its {len(again)} waiting documents go again, one run each"
    )
    return [
        intake_run_request(
            item.organization_slug, [item.document_id], item.run_key, {DEPTH_TAG: str(item.depth)}
        )
        for item in again
    ]


# Dagster's sensor daemon looks at its sensors once per loop of at least 5 s
# (MIN_INTERVAL_LOOP_TIME) and skips a sensor whose last tick started less than its interval ago:
# at 5 the next loop often came a few milliseconds early and the tick waited a second loop (10 s,
# seen in `bench latency`), at 4 it ticks every loop. A tick lists each organization's drop zone
# once, and again those where it saw a new file (the second look).
UPLOAD_SENSOR_INTERVAL_SECONDS = 4
# a longer settle period waits for the next tick instead of holding the sensor's tick
SECOND_LOOK_MAX_SECONDS = 5.0


def _merged(first: ScanResult, second: ScanResult, relisted: set[str]) -> ScanResult:
    """One tick's result from its two looks (the second, over the first's state, listed the
    organizations `relisted` again)."""
    second.state.pending = {
        **{
            key: signature
            for key, signature in first.state.pending.items()
            if key.split("/", 1)[0] not in relisted
        },
        **second.state.pending,
    }
    by_organization = {slug: list(counts) for slug, counts in first.by_organization.items()}
    for slug, (registered, duplicates) in second.by_organization.items():
        counts = by_organization.setdefault(slug, [0, 0])
        counts[0] += registered
        counts[1] += duplicates
    return ScanResult(
        state=second.state,
        batches=first.batches + second.batches,
        registered=first.registered + second.registered,
        duplicates=first.duplicates + second.duplicates,
        waiting=first.waiting - second.registered - second.duplicates,
        errors=first.errors + second.errors,
        by_organization=by_organization,
        duplicate_uploads=_merged_duplicates(first, second),
    )


def _merged_duplicates(first: ScanResult, second: ScanResult) -> dict[str, list[dict]]:
    """The duplicate uploads of both looks of a tick, by organization."""
    merged = {slug: list(rows) for slug, rows in first.duplicate_uploads.items()}
    for slug, rows in second.duplicate_uploads.items():
        merged.setdefault(slug, []).extend(rows)
    return merged


def _duplicates_metadata(rows: list[dict]) -> dict:
    """The duplicate uploads of a tick, each with the invoice it duplicates (the observation's
    `duplicate_uploads` table; nothing when there were none)."""
    if not rows:
        return {}
    return {"duplicate_uploads": MetadataValue.md(duplicates_table(rows))}


# by name, not the job object: Definitions binds the shared resources to the job and rebuilds a
# sensor that holds it, and that rebuild passes `owners=[]`, a beta parameter (a BetaWarning
# in every process that loads the code, each run included)
@sensor(
    job_name="intake_job",
    # the daemon's loop floor (5 s): a dropped file is seen within 5 s and registered on the next
    # look, once it has not changed between the two (docs/intake.md)
    minimum_interval_seconds=UPLOAD_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Registers settled files in the upload store (an observation of `uploads` per "
    "organization) and launches intake_job runs in batches of document ids; documents still "
    "waiting after 15 minutes are dispatched again.",
)
def upload_sensor(
    context: SensorEvaluationContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
):
    state = ScanState.from_json(json.loads(context.cursor) if context.cursor else None)
    # Only organizations that have their partition: a new one's files wait for
    # organizations_sensor's next tick (registering them now would move the dispatch mark past
    # documents no run could be launched for).
    # A suspended organization's files stay in its drop zone, unread, until it is resumed.
    automatic = automatic_organizations(context.instance, system_database)
    known = automatic.known
    settle = float(positive_number("INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS", float))
    scan = partial(
        scan_uploads,
        database,
        upload_store,
        system=system_database,
        settle_seconds=settle,
        batch_size=int(positive_number("INVOICE_PIPELINES_INTAKE_BATCH_SIZE")),
    )
    result = scan(state, only_organizations=known)
    # A file seen for the first time gets its second look settle_seconds later in this tick, not
    # a tick later: the same size and mtime after that long is what "settled" means
    # (INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS); only its organizations' drop zones are listed again.
    fresh = {key.split("/", 1)[0] for key in set(result.state.pending) - set(state.pending)}
    if fresh and settle <= SECOND_LOOK_MAX_SECONDS:
        time.sleep(settle)
        relisted = fresh & known
        result = _merged(result, scan(result.state, only_organizations=relisted), relisted)
    for error in result.errors:
        context.log.error(f"upload not registered: {error}")
    for slug, rows in sorted(result.duplicate_uploads.items()):
        for row in rows[:20]:
            context.log.info(
                f"{slug}: {row['filename']!r} is a duplicate upload (upload {row['upload_id']}): "
                f"the same bytes as {invoice_named(row)}"
            )
    if automatic.suspended:
        context.log.info(automatic.note().removeprefix("; "))
    requests = [
        intake_run_request(batch.organization_slug, batch.document_ids, batch.run_key)
        for batch in result.batches
    ]
    observations = [
        AssetObservation(
            asset_key=uploads.key,
            partition=slug,
            metadata={
                "registered": MetadataValue.int(registered),
                "duplicates": MetadataValue.int(duplicates),
                **_duplicates_metadata(result.duplicate_uploads.get(slug, [])),
            },
        )
        for slug, (registered, duplicates) in sorted(result.by_organization.items())
        if registered or duplicates
    ]
    cursor = json.dumps(result.state.to_json(), sort_keys=True)
    if not requests and not observations:
        context.update_cursor(cursor)
        return SkipReason(
            f"registered {result.registered}, duplicates {result.duplicates}, waiting "
            f"{result.waiting}{automatic.note()}"
        )
    return SensorResult(run_requests=requests, asset_events=observations, cursor=cursor)


# the mailboxes are read every loop of the daemon, as the drop zone is
MAILBOX_SENSOR_INTERVAL_SECONDS = 5


@sensor(
    minimum_interval_seconds=MAILBOX_SENSOR_INTERVAL_SECONDS,
    default_status=DefaultSensorStatus.RUNNING,
    description="Reads each organization's invoice mailbox (IMAP, `invoice-pipelines mailbox "
    "set`): every new message's invoice attachments become uploads once (the upload sensor sends "
    "them to the intake), the message is moved or flagged after that commit; the cursor keeps "
    "UIDVALIDITY/UID per mailbox. An observation of `mailbox_messages` per organization.",
)
def mailbox_sensor(
    context: SensorEvaluationContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    upload_store: ResourceParam[Uploads],
):
    cursor = json.loads(context.cursor) if context.cursor else {}
    # as the drop zone: only organizations with their partition, none suspended
    automatic = automatic_organizations(context.instance, system_database)
    tick = read_mailboxes(
        database, system_database, upload_store, cursor, only_organizations=automatic.known
    )
    for error in tick.errors:
        context.log.error(f"mailbox not read: {error}")
    for line in tick.unrouted[:20]:
        context.log.warning(f"message for no organization: {line}")
    observations = [
        AssetObservation(
            asset_key=mailbox_messages.key,
            partition=slug,
            metadata={
                "read": MetadataValue.int(counts.read),
                "refused": MetadataValue.int(counts.refused),
                "duplicates": MetadataValue.int(counts.duplicates),
                "uploads": MetadataValue.int(counts.uploads),
            },
        )
        for slug, counts in sorted(tick.by_organization.items())
    ]
    summary = (
        f"{tick.mailboxes} mailbox(es): read {sum(c.read for c in tick.by_organization.values())}, "
        f"refused {sum(c.refused for c in tick.by_organization.values())}, uploads "
        f"{sum(c.uploads for c in tick.by_organization.values())}, errors {len(tick.errors)}, "
        f"slowest {tick.slowest_s:.2f} s"
    )
    cursor_text = json.dumps(tick.cursor, sort_keys=True)
    if not observations:
        context.update_cursor(cursor_text)
        return SkipReason(summary + automatic.note())
    context.log.info(summary)
    return SensorResult(asset_events=observations, cursor=cursor_text)
