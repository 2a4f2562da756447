"""QuickBooks Online's entities as assets partitioned by organization (core/qbo_entities.py):
one asset a synced entity, and the sync every one of them runs.

    qbo_customers (both ways) ─┐
    qbo_items (both ways) ─────┼─> qbo_invoices (pushed) ─> qbo_payments (pulled onto sales_invoices)
    sales_invoices ────────────┘
    incoming_invoices ─> qbo_vendors (both ways) ─> qbo_bills (pushed) ─> qbo_bill_payments (pulled)

Materializing an organization's partition from the launchpad is the "sync now"; a run over a
range of partitions (the schedules' batches, backfills) syncs each organization of the range in
turn, and one organization's failure (a refused token, QBO unreachable) never stops the others:
the run fails at the end naming it (lib/refusals.PartitionRefusals). Organizations without a
QuickBooks connection are skipped and counted.
"""

import warnings
from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    BetaWarning,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.qbo_entities import PUSHED, SYNCED, QboEntity
from invoice_pipelines.db.tenancy import (
    UnknownOrganization,
    find_organization,
)
from invoice_pipelines.lib.asset_metadata import as_metadata
from invoice_pipelines.lib.partitions import organizations_partitions
from invoice_pipelines.lib.refusals import (
    CONFIRM_HELP,
    PartitionRefusals,
    confirmed_or_refuse,
    fail_keeping_the_done,
    materialize_the_done,
)
from invoice_pipelines.quickbooks.domain.errors import NotConnected, QboError
from invoice_pipelines.quickbooks.domain.figures import (
    COUNTED,
    paid_cells,
    paid_figures,
    row_of,
    sync_figures,
)
from invoice_pipelines.quickbooks.domain.sync.bills import letter_pdf
from invoice_pipelines.quickbooks.domain.sync.common import (
    QboSettings,
    RealmBusy,
    SyncCounts,
    realm_lease,
)
from invoice_pipelines.quickbooks.domain.syncs import EXTRA_COUNTS, NEEDS_FILES, SYNCS
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.resources.messaging.letter_types import Letters
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.settings import ConfigError

GROUP = "quickbooks"
# every run that talks to QBO is in one pool, so a deployment bounds how many run at once
# (deploy/dagster.yaml; docs/deployment.md: `dagster instance concurrency set quickbooks N`)
POOL = "quickbooks"
KINDS = {"python", "quickbooks"}
ORGANIZATIONS_PER_RUN = 10
# pushes that may take hours (100,000 invoices at QBO's 500 requests a minute): a run pushes a
# bounded chunk (the resource's push_per_run / push_minutes) and ends; the push sensor asks for
# the next, so a schedule's or a person's run of the same company goes in between (issue 56)
BOUNDED_PUSHES = frozenset({"invoices"})


# what a plain Materialize of a push to QuickBooks says (lib/refusals.py)
PUSH = "push to quickbooks"


class QboSyncConfig(Config):
    organizations: list[str] = Field(
        default_factory=list,
        description="Organization slugs of the run's partitions to sync; empty: every one (the "
        "schedules name the organizations due now within their batch's range).",
    )
    confirm: str = Field(
        default="", description=f'The pushes (qbo_invoices, qbo_bills): "{PUSH}". {CONFIRM_HELP}'
    )


def _described(entity: QboEntity) -> str:
    """The asset's description; a push's says what a plain Materialize needs."""
    if entity.direction != PUSHED:
        return entity.description
    return (
        f"{entity.description} What is pushed cannot be taken back: a plain Materialize runs "
        f'only with the config confirm: "{PUSH}".'
    )


def _sync(
    context: AssetExecutionContext,
    config: QboSyncConfig,
    databases: tuple[Engine, Engine],
    quickbooks: ResourceParam[QboSettings],
    entity: QboEntity,
    options: dict | None = None,
) -> Iterator[MaterializeResult]:
    # a run's SIGTERM that Dagster's handler loses still stops the pushes at their next batch or
    # bill (stop_signal.py), in a run that started elsewhere than the code server's start_run too
    stop_signal.remember()
    if entity.direction == PUSHED:
        confirmed_or_refuse(
            context, config.confirm, PUSH, what="pushes records to QuickBooks", job=entity.job
        )
    engine, system = databases
    work = SYNCS[entity.sync]
    wanted = set(config.organizations)
    # the sync's own further figures (the invoice push's voided, credit memos and discounts
    # pushed): in the totals and the table, zero or not
    extra = EXTRA_COUNTS.get(entity.sync, ())
    totals = SyncCounts(extra=dict.fromkeys(extra, 0))
    rows: list[tuple] = []
    paid: list[tuple] = []
    skipped = []
    refusals = PartitionRefusals(context.partition_keys, context.log.error)
    for slug in refusals.keys:
        if wanted and slug not in wanted:
            continue
        try:
            org = find_organization(system, slug)
            if refusals.leave_inactive(slug, org, context.log.warning):
                continue
            client = quickbooks.client(engine, org.id)
        except (UnknownOrganization, NotConnected):
            skipped.append(slug)
            continue
        except ConfigError as exc:
            raise Failure(str(exc), allow_retries=False) from exc
        try:
            with realm_lease(engine, org.id, context.run.run_id):
                if entity.initial_import:
                    # the first sync of an organization is its initial import: say how far it is

                    def progress(done: int, slug: str = slug) -> None:
                        context.log.info(f"{slug}: initial import, {done} records read")

                    counts = work(engine, org, client, progress=progress)
                else:
                    counts = work(engine, org, client, **(options or {}))
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
        for name in COUNTED:
            setattr(totals, name, getattr(totals, name) + getattr(counts, name))
        for name in extra:
            totals.extra[name] += counts.extra.get(name, 0)
        rows.append(row_of(slug, counts, extra))
    metadata = as_metadata(
        sync_figures(
            entity.sync,
            totals,
            rows,
            extra=extra,
            not_connected=len(skipped),
            refused=len(refusals.refusals),
            paid=paid,
        )
    )
    if refusals:
        # every partition done (synced, not connected, not due) has the run's figures, as ever
        fail_keeping_the_done(context, refusals, {key: metadata for key in refusals.done})
    if refusals.left:
        # a result would materialize the range, the suspended organizations' partitions too
        materialize_the_done(context, refusals, {key: metadata for key in refusals.done})
        return
    yield MaterializeResult(metadata=metadata)


def paid_metadata(paid: list[tuple]) -> dict:
    """What a bill payment pull found paid, as its run records it (quickbooks/domain/figures.py)."""
    return as_metadata(paid_figures(paid))


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
    # a run over several organizations leaves a suspended one's partition unmaterialized
    output_required=False,
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

        @asset(name=entity.asset, deps=entity.deps, description=_described(entity), **SYNC_ASSET)
        def _synced(
            context: AssetExecutionContext,
            config: QboSyncConfig,
            database: ResourceParam[Engine],
            system_database: ResourceParam[Engine],
            quickbooks: ResourceParam[QboSettings],
        ):
            bounds = quickbooks.push_bounds() if entity.sync in BOUNDED_PUSHES else None
            databases = (database, system_database)
            yield from _sync(context, config, databases, quickbooks, entity, bounds)

    return _synced


def _sync_asset_with_files(entity: QboEntity):
    """The asset of a sync that attaches documents (the bills): the upload store's originals and
    the letter writer's readable PDFs besides."""

    @asset(name=entity.asset, deps=entity.deps, description=_described(entity), **SYNC_ASSET)
    def _synced(
        context: AssetExecutionContext,
        config: QboSyncConfig,
        database: ResourceParam[Engine],
        system_database: ResourceParam[Engine],
        quickbooks: ResourceParam[QboSettings],
        upload_store: ResourceParam[Uploads],
        letter_writer: ResourceParam[Letters],
    ):
        options = {"read_upload": upload_store.read, "write_letter": letter_pdf(letter_writer)}
        databases = (database, system_database)
        yield from _sync(context, config, databases, quickbooks, entity, options)

    return _synced


# the sync assets by their entity's sync name: customers, items, invoices, payments
SYNC_ASSETS = {entity.sync: _sync_asset(entity) for entity in SYNCED}
