"""QuickBooks Online area: the QBO entities as assets partitioned by organization, their jobs,
schedules in each organization's timezone, the push sensors, the launchpad's push of chosen
supplier invoices and the checks (tokens, bills waiting for a person, bills QBO has at another
amount).

    qbo_customers (both ways) ─┐
    qbo_items (both ways) ─────┼─> qbo_invoices (pushed) ─> qbo_payments (pulled onto sales_invoices)
    sales_invoices ────────────┘
    incoming_invoices ─> qbo_vendors (both ways) ─> qbo_bills (pushed) ─> qbo_bill_payments (pulled)

Materializing an organization's partition from the launchpad is the "sync now"; a run over a
range of partitions (the schedules' batches, backfills) syncs each organization of the range in
turn, and one organization's failure (a refused token, QBO unreachable) never stops the others:
the run fails at the end naming it (tenants/refusals.PartitionRefusals). Organizations without a
QuickBooks connection are skipped and counted.
"""

import warnings
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetMaterialization,
    AssetSelection,
    BackfillPolicy,
    BetaWarning,
    Config,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    asset,
    asset_check,
    define_asset_job,
    in_process_executor,
    job,
    op,
    schedule,
    sensor,
)
from pydantic import Field

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.qbo_entities import SYNCED, QboEntity
from invoice_pipelines.db.tenancy import (
    UnknownOrganization,
    resolve_organization,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.quickbooks.errors import NotConnected, QboError
from invoice_pipelines.quickbooks.resources import QuickBooks
from invoice_pipelines.quickbooks.sync.bills import describe_documents, letter_pdf, push_bills
from invoice_pipelines.quickbooks.sync.common import RealmBusy, SyncCounts, realm_lease
from invoice_pipelines.quickbooks.sync.customers import resolve_conflict
from invoice_pipelines.quickbooks.syncs import NEEDS_FILES, SYNCS
from invoice_pipelines.quickbooks.watch import (
    bill_amount_differences,
    bill_push_waiting,
    connected_organizations,
    push_waiting,
    requested_pulls,
    token_problems,
    waiting_bills,
)
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.letters import LetterWriter
from invoice_pipelines.resources.upload_stores import UploadStore
from invoice_pipelines.settings import ConfigError
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organization_tags,
    organizations_partitions,
    partition_range_tags,
    who_asked,
)
from invoice_pipelines.tenants.refusals import (
    PartitionRefusals,
    fail_keeping_the_done,
    organization_or_refuse,
    refused,
)
from invoice_pipelines.tenants.run_coordinator import BULK_RUN_TAGS
from invoice_pipelines.tenants.turns import organizations_with_a_run, take_turn

GROUP = "quickbooks"
# every run that talks to QBO is in one pool, so a deployment bounds how many run at once
# (deploy/dagster.yaml; docs/deployment.md: `dagster instance concurrency set quickbooks N`)
POOL = "quickbooks"
KINDS = {"python", "quickbooks"}
ORGANIZATIONS_PER_RUN = 10
TOKEN_CHECK = "tokens_not_expiring"
BILLS_WAITING_CHECK = "bills_waiting"
BILL_AMOUNTS_CHECK = "bill_amounts_agree"
# pushes that may take hours (100,000 invoices at QBO's 500 requests a minute): a run pushes a
# bounded chunk (the resource's push_per_run / push_minutes) and ends; the push sensor asks for
# the next, so a schedule's or a person's run of the same company goes in between (issue 56)
BOUNDED_PUSHES = frozenset({"invoices"})


class QboSyncConfig(Config):
    organizations: list[str] = Field(
        default_factory=list,
        description="Organization slugs of the run's partitions to sync; empty: every one (the "
        "schedules name the organizations due now within their batch's range).",
    )


def _sync(
    context: AssetExecutionContext,
    config: QboSyncConfig,
    database: Database,
    quickbooks: QuickBooks,
    entity: QboEntity,
    options: dict | None = None,
) -> MaterializeResult:
    engine = database.get_engine()
    work = SYNCS[entity.sync]
    wanted = set(config.organizations)
    totals = SyncCounts()
    rows: list[tuple] = []
    paid: list[tuple] = []
    skipped = []
    refusals = PartitionRefusals(context.partition_keys, context.log.error)
    for slug in context.partition_keys:
        if wanted and slug not in wanted:
            continue
        try:
            org = resolve_organization(engine, slug)
            client = quickbooks.client(engine, org["id"])
        except (UnknownOrganization, NotConnected):
            skipped.append(slug)
            continue
        except ConfigError as exc:
            raise Failure(str(exc), allow_retries=False) from exc
        try:
            with realm_lease(engine, org["id"], context.run.run_id):
                if entity.initial_import:
                    # the first sync of an organization is its initial import: say how far it is

                    def progress(done: int, slug: str = slug) -> None:
                        context.log.info(f"{slug}: initial import, {done} records read")

                    counts = work(engine, org["id"], client, progress=progress)
                else:
                    counts = work(engine, org["id"], client, **(options or {}))
        except (QboError, RealmBusy) as exc:
            # one organization's refused token or QBO outage never stops the others of the run
            refusals.refuse(slug, str(exc))
            continue
        finally:
            client.close()
        for message in counts.errors[:50]:
            context.log.warning(f"{slug}: {message}")
        paid.extend((slug, *paid_cells(row)) for row in counts.paid)
        _report_beside(context, slug, counts)
        for name in ("pushed", "pulled", "linked", "conflicts", "held", "failed", "unchanged"):
            setattr(totals, name, getattr(totals, name) + getattr(counts, name))
        rows.append(
            (
                slug,
                counts.pushed,
                counts.pulled,
                counts.linked,
                counts.conflicts,
                counts.held,
                counts.failed,
            )
        )
    metadata = {name: MetadataValue.int(value) for name, value in totals.as_dict().items()}
    metadata["organizations"] = MetadataValue.int(len(rows))
    metadata["not_connected"] = MetadataValue.int(len(skipped))
    metadata["refused"] = MetadataValue.int(len(refusals.refusals))
    metadata["by_organization"] = MetadataValue.md(
        markdown_table(
            ("organization", "pushed", "pulled", "linked", "conflicts", "held", "failed"),
            rows,
            align="lrrrrrr",
        )
    )
    if entity.sync == "bill_payments":
        metadata.update(paid_metadata(paid))
    if refusals:
        # every partition done (synced, not connected, not due) has the run's figures, as ever
        fail_keeping_the_done(context, refusals, {key: metadata for key in refusals.done})
    return MaterializeResult(metadata=metadata)


# the invoices whose payments changed that one materialization's metadata lists; the count says
# how many there were, `incoming list` shows each
PAID_ROWS_SHOWN = 50


def paid_cells(row: dict) -> tuple:
    """invoice, supplier, status, paid, day, Skonto, open (amounts with the currency)."""

    def money(value) -> str:
        return f"{value} {row['currency']}".strip() if value is not None else ""

    return (
        row["invoice"],
        row["supplier"],
        {"partially_paid": "partly paid"}.get(row["status"], row["status"]),
        money(row["paid"]),
        row["paid_on"].isoformat() if row["paid_on"] else "",
        money(row["skonto"]),
        money(row["open"]),
    )


def paid_metadata(paid: list[tuple]) -> dict:
    """What a bill payment pull found paid: a count and a table of at most PAID_ROWS_SHOWN."""
    return {
        "invoices_paid_changed": MetadataValue.int(len(paid)),
        "paid": MetadataValue.md(
            markdown_table(
                ("organization", "invoice", "supplier", "status", "paid", "day", "Skonto", "open"),
                paid,
                align="llllrlrr",
                limit=PAID_ROWS_SHOWN,
            )
            if paid
            else "No payment changed since the last pull."
        ),
    }


def _report_beside(context: AssetExecutionContext, slug: str, counts: SyncCounts) -> None:
    """What a sync changed of another entity on its way (the vendors the bill push creates or
    links) materializes that entity's asset too, for the organization's partition, with its own
    counts: the UI shows qbo_vendors as the push left it, not "never materialized"."""
    assets = {entity.sync: entity.asset for entity in SYNCED}
    for sync, other in counts.beside.items():
        if not (other.pushed or other.pulled or other.linked):
            continue
        metadata = {name: MetadataValue.int(value) for name, value in other.as_dict().items()}
        metadata["recorded_by"] = MetadataValue.text(f"the {context.asset_key.path[-1]} run")
        context.log_event(
            AssetMaterialization(asset_key=assets[sync], partition=slug, metadata=metadata)
        )


# what the sync assets share: one organization a partition, a range of them a run
SYNC_ASSET = dict(
    partitions_def=organizations_partitions,
    backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=ORGANIZATIONS_PER_RUN),
    group_name=GROUP,
    kinds=KINDS,
    owners=OWNERS,
    pool=POOL,
)


def _sync_asset(entity: QboEntity):
    """One synced entity's asset (core/qbo_entities.py): its key qbo_<sync>, its description."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        if entity.sync in NEEDS_FILES:
            return _sync_asset_with_files(entity)

        @asset(name=entity.asset, deps=entity.deps, description=entity.description, **SYNC_ASSET)
        def _synced(
            context: AssetExecutionContext,
            config: QboSyncConfig,
            database: Database,
            quickbooks: QuickBooks,
        ):
            bounds = quickbooks.push_bounds() if entity.sync in BOUNDED_PUSHES else None
            return _sync(context, config, database, quickbooks, entity, bounds)

    return _synced


def _sync_asset_with_files(entity: QboEntity):
    """The asset of a sync that attaches documents (the bills): the upload store's originals and
    the letter writer's readable PDFs besides."""

    @asset(name=entity.asset, deps=entity.deps, description=entity.description, **SYNC_ASSET)
    def _synced(
        context: AssetExecutionContext,
        config: QboSyncConfig,
        database: Database,
        quickbooks: QuickBooks,
        upload_store: UploadStore,
        letter_writer: LetterWriter,
    ):
        options = {"read_upload": upload_store.read, "write_letter": letter_pdf(letter_writer)}
        return _sync(context, config, database, quickbooks, entity, options)

    return _synced


# the sync assets by their entity's sync name: customers, items, invoices, payments
SYNC_ASSETS = {entity.sync: _sync_asset(entity) for entity in SYNCED}


@asset_check(
    asset=SYNC_ASSETS["customers"],
    name=TOKEN_CHECK,
    description="Warns weeks ahead when an organization's QuickBooks refresh token nears its "
    "100-day idle expiry (30 days ahead) or Intuit's hard maximum (60 days ahead), or a refresh "
    "was refused: a person must reconnect the company before syncing stops.",
)
def qbo_tokens_check(context: AssetCheckExecutionContext, database: Database):
    connections, problems = token_problems(database.get_engine(), datetime.now(UTC))
    return AssetCheckResult(
        passed=not problems,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"All {connections} QuickBooks connection(s) have tokens for weeks to come."
            if not problems
            else f"{len(problems)} connection(s) need a person to reconnect QuickBooks soon."
        ),
        metadata={
            "connections": connections,
            "problems": len(problems),
            **(
                {"reconnect": MetadataValue.md(markdown_table(("organization", "why"), problems))}
                if problems
                else {}
            ),
        },
    )


def _listing(
    count: int,
    rows: list[tuple],
    *,
    fine: str,
    found: str,
    key: str,
    table: str,
    columns: tuple[str, ...],
    warn: bool = False,
) -> AssetCheckResult:
    """A check that lists what it found: passed when nothing, else the rows as a table."""
    metadata: dict = {key: count}
    if rows:
        metadata[table] = MetadataValue.md(markdown_table(columns, rows))
    return AssetCheckResult(
        passed=count == 0,
        severity=AssetCheckSeverity.WARN if warn else AssetCheckSeverity.ERROR,
        description=fine if not count else found.format(count=count),
        metadata=metadata,
    )


@asset_check(
    asset=SYNC_ASSETS["bills"],
    name=BILLS_WAITING_CHECK,
    description="Warns when supplier invoices wait to become QuickBooks bills for something a "
    "person sets up: a vendor to create (or the organization's permission to create vendors), "
    "an expense account, a tax code or an exchange rate; or for a person's decision: an invoice "
    "with more lines than a bill takes, a paid bill whose document is back in review or failed "
    "(not deleted); lists each with its finding.",
)
def qbo_bills_waiting_check(context: AssetCheckExecutionContext, database: Database):
    count, waiting = waiting_bills(database.get_engine())  # the query `qbo-payables` lists
    return _listing(
        count,
        [row.cells() for row in waiting],
        fine="No supplier invoice waits to become a QuickBooks bill.",
        found="{count} supplier invoice(s) wait for a vendor, an account, a setting or a "
        "person's decision.",
        key="waiting",
        table="documents",
        columns=("organization", "document", "number", "supplier", "waits for", "why"),
        warn=True,
    )


@asset_check(
    asset=SYNC_ASSETS["bills"],
    name=BILL_AMOUNTS_CHECK,
    description="Fails when a bill's total in QuickBooks (as the last push or bill-payment pull "
    "read it) is not its supplier invoice's gross total: someone changed the bill in QuickBooks.",
)
def qbo_bill_amounts_check(context: AssetCheckExecutionContext, database: Database):
    count, rows = bill_amount_differences(database.get_engine())
    return _listing(
        count,
        rows,
        fine="Every bill in QuickBooks has its supplier invoice's total.",
        found="{count} bill(s) in QuickBooks differ from their supplier invoice's total.",
        key="differing",
        table="bills",
        columns=("organization", "document", "number", "our total", "QBO's total"),
    )


def _job(name: str, target, description: str):
    return define_asset_job(name, selection=AssetSelection.assets(target), description=description)


SYNC_JOBS = {
    entity.sync: _job(entity.job, SYNC_ASSETS[entity.sync], entity.job_description)
    for entity in SYNCED
}
qbo_checks_job = define_asset_job(
    "qbo_checks_job",
    selection=AssetSelection.checks(
        qbo_tokens_check, qbo_bills_waiting_check, qbo_bill_amounts_check
    ),
    executor_def=in_process_executor,
    description="Checks every organization's QuickBooks tokens for coming expiry, the supplier "
    "invoices waiting to become bills and the bills QuickBooks has at another amount.",
)


def due_batches(
    slugs_in_order: list[str], due: set[str], per_run: int = ORGANIZATIONS_PER_RUN
) -> list[list[str]]:
    """The due organizations in partition order, `per_run` to a batch (a range per run)."""
    ordered = [s for s in slugs_in_order if s in due]
    return [ordered[i : i + per_run] for i in range(0, len(ordered), per_run)]


def _local_hour(moment: datetime, timezone: str) -> int:
    try:
        return moment.astimezone(ZoneInfo(timezone)).hour
    except (KeyError, ValueError):
        return moment.astimezone(UTC).hour


def _daily_schedule(entity: QboEntity):
    asset_name, hour, job = entity.asset, entity.daily_hour, SYNC_JOBS[entity.sync]

    @schedule(
        name=f"{asset_name}_schedule",
        cron_schedule="0 * * * *",
        job=job,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"Hourly: runs {asset_name} for the organizations whose local time is "
        f"{hour:02d}:00 (their timezone), {ORGANIZATIONS_PER_RUN} organizations per run.",
    )
    def _daily(context: ScheduleEvaluationContext, database: Database):
        moment = context.scheduled_execution_time or datetime.now(UTC)
        due = {
            slug
            for slug, tz in connected_organizations(database.get_engine())
            if _local_hour(moment, tz) == hour
        }
        known = list(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
        batches = due_batches(known, due)
        if not batches:
            return SkipReason(f"No connected organization has {hour:02d}:00 now.")
        stamp = moment.astimezone(UTC).strftime("%Y-%m-%dT%H")
        return [
            RunRequest(
                run_key=f"{asset_name}-{stamp}-batch-{number}",
                run_config={"ops": {asset_name: {"config": {"organizations": batch}}}},
                tags={**partition_range_tags(batch[0], batch[-1]), **BULK_RUN_TAGS},
            )
            for number, batch in enumerate(batches)
        ]

    return _daily


# the daily syncs (issue 13), each at its local hour: payments 02:00, customers 03:00, items 04:00
DAILY_SCHEDULES = {
    entity.sync: _daily_schedule(entity) for entity in SYNCED if entity.daily_hour is not None
}

qbo_checks_schedule = ScheduleDefinition(
    name="qbo_checks_schedule",
    job=qbo_checks_job,
    cron_schedule="15 6 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily at 06:15 UTC: QuickBooks tokens that expire soon, supplier invoices that "
    "wait to become bills, bills whose amount differs from QuickBooks'.",
)


def _push_requests(
    context: SensorEvaluationContext,
    job_name: str,
    prefix: str,
    waiting: tuple[dict[str, int], ...],
) -> list[RunRequest]:
    """One bulk run per known organization with documents new or pending in its push queue;
    `waiting`: (new, pending, ...) by slug: the newest ids, and what else makes the run key (how
    many wait, so that each chunk of a bounded push gets its run; the newest change). A few
    organizations a tick, the next ones the tick after (the cursor): a stop of the sensor stops
    its requests within one tick (tenants/turns.py)."""
    known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
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


@sensor(
    job=SYNC_JOBS["invoices"],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every minute: launches qbo_invoices_job for each connected organization with "
    "sales invoices not yet pushed or voided, or refused only because their customer or item "
    "was not synced yet (run key: the organization, its newest such invoice and queue state, "
    "how many wait, and its newest customer/item mapping). A run pushes a bounded chunk, so a "
    "long push is a run after run, each started by this sensor.",
)
def qbo_push_sensor(context: SensorEvaluationContext, database: Database):
    requests = _push_requests(
        context, SYNC_JOBS["invoices"].name, "qbo-push", push_waiting(database.get_engine())
    )
    if not requests:
        return SkipReason("No sales invoices wait to be pushed to QuickBooks.")
    return requests


@sensor(
    job=SYNC_JOBS["bills"],
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Every minute: launches qbo_bills_job for each connected organization with "
    "supplier invoices to push as bills (or bills to delete), and again for those waiting for a "
    "vendor or an expense account once a vendor or account setting changed (run key: the "
    "organization, its newest such document and queue row, and that change). An organization "
    "that has set no expense account at all starts no run: the check bills_waiting names it.",
)
def qbo_bill_push_sensor(context: SensorEvaluationContext, database: Database):
    requests = _push_requests(
        context, SYNC_JOBS["bills"].name, "qbo-bills", bill_push_waiting(database.get_engine())
    )
    if not requests:
        return SkipReason("No supplier invoices wait to be pushed to QuickBooks as bills.")
    return requests


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
def qbo_webhook_sensor(context: SensorEvaluationContext, database: Database):
    known = set(context.instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    wanted = requested_pulls(database.get_engine())
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
        return SkipReason("No webhook asked for a QuickBooks pull.")
    return requests


class ResolveConflictConfig(Config):
    organization: str = Field(description="Organization slug or id.")
    conflict_id: int = Field(description="The open sync_conflicts row (qbo-conflicts lists them).")
    keep: str = Field(
        description="local: our version goes to QuickBooks; qbo: QuickBooks' version is taken."
    )
    resolved_by: str = Field(default="", description="Who decided (default: the launching user).")


@op(description="Resolves one conflict held for manual review and releases the record.")
def resolve_qbo_conflict(
    context: OpExecutionContext,
    config: ResolveConflictConfig,
    database: Database,
    quickbooks: QuickBooks,
):
    if config.keep not in ("local", "qbo"):
        raise refused(f"keep must be 'local' or 'qbo', not {config.keep!r}.")
    engine = database.get_engine()
    org = organization_or_refuse(engine, config.organization)
    who = who_asked(config.resolved_by, context.run.tags)
    try:
        with quickbooks.client(engine, org["id"]) as client:
            result = resolve_conflict(
                engine,
                org["id"],
                config.conflict_id,
                keep=config.keep,
                resolved_by=who,
                client=client,
            )
    except (LookupError, ValueError, NotConnected) as exc:
        raise refused(str(exc)) from None
    context.log.info(f"conflict {config.conflict_id} resolved by {who}: kept {config.keep}")
    return result


@job(
    description="Resolves a QuickBooks sync conflict held for manual review (launchpad: "
    "organization, conflict id, keep local or qbo); the record syncs again afterwards."
)
def qbo_resolve_conflict_job():
    resolve_qbo_conflict()


class PushBillsConfig(Config):
    organization: str = Field(description="Organization slug or id.")
    document_ids: list[int] = Field(
        description="Ids of incoming invoices to push to QuickBooks as bills now (VALIDATED "
        "ones, or FAILED ones whose bill is to be deleted)."
    )
    retry_failed: bool = Field(
        default=True,
        description="Also send those whose last push failed (QuickBooks refused it, or it was a "
        "conflict someone has resolved in QuickBooks).",
    )


@op(
    description="Pushes the chosen supplier invoices of one organization to QuickBooks as bills "
    "(or deletes their bills), with the same exactly-once machinery as qbo_bills_job, and says "
    "for each document where it stands.",
    pool=POOL,
)
def push_chosen_bills(
    context: OpExecutionContext,
    config: PushBillsConfig,
    database: Database,
    quickbooks: QuickBooks,
    upload_store: UploadStore,
    letter_writer: LetterWriter,
):
    if not config.document_ids:
        raise refused("Name at least one incoming invoice id (document_ids).")
    engine = database.get_engine()
    org = organization_or_refuse(engine, config.organization)
    try:
        with (
            realm_lease(engine, org["id"], context.run.run_id),
            quickbooks.client(engine, org["id"]) as client,
        ):
            counts = push_bills(
                engine,
                org["id"],
                client,
                documents=list(config.document_ids),
                retry_failed=config.retry_failed,
                read_upload=upload_store.read,
                write_letter=letter_pdf(letter_writer),
            )
    except (NotConnected, RealmBusy) as exc:
        raise refused(str(exc)) from None
    where = describe_documents(engine, org["id"], config.document_ids)
    for document_id, text in where.items():
        context.log.info(f"incoming invoice {document_id}: {text}")
    return {**counts.as_dict(), "documents": {str(k): v for k, v in where.items()}}


@job(
    description="Push chosen supplier invoices to QuickBooks as bills now (launchpad: the "
    "organization and the incoming invoice ids); each document's outcome is in the run's log."
)
def qbo_push_bills_job():
    push_chosen_bills()


defs = Definitions(
    assets=list(SYNC_ASSETS.values()),
    asset_checks=[qbo_tokens_check, qbo_bills_waiting_check, qbo_bill_amounts_check],
    jobs=[*SYNC_JOBS.values(), qbo_checks_job, qbo_resolve_conflict_job, qbo_push_bills_job],
    schedules=[*DAILY_SCHEDULES.values(), qbo_checks_schedule],
    sensors=[qbo_push_sensor, qbo_bill_push_sensor, qbo_webhook_sensor],
)
