"""The exports' assets: incoming_invoice_exports and sales_invoice_exports, per organization and
month (partitions.py), each downstream of the organization's incoming_invoices / sales_invoices.

Materializing a partition exports that month: a DATEV Buchungsstapel, a DATEV
Debitoren/Kreditoren file, an invoices CSV and a lines CSV in the export store, an `exports` row and
one `export_items` row per invoice; booked incoming invoices move VALIDATED -> EXPORTED.
Materializing it again writes a new version only when something changed. Backfills (history
migrations) run up to 40 partitions per run, each materialized when its export is done. Each
asset's check, `every_invoice_booked`, is evaluated by the asset's run itself.
"""

import warnings

from dagster import (
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    BackfillPolicy,
    BetaWarning,
    Config,
    MaterializeResult,
    MultiPartitionKey,
    MultiToSingleDimensionPartitionMapping,
    PreviewWarning,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.export_months import month_state
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.readiness import missing_text
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.exports.domain.export_settings import (
    DatevNumbersMissing,
    ExportSettingsError,
)
from invoice_pipelines.exports.domain.figures import booked_finding, export_figures, skipped_line
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.exports.domain.result import ExportResult
from invoice_pipelines.exports.partitions import MONTH_DIMENSION, export_partitions
from invoice_pipelines.lib.asset_metadata import as_metadata, check_result
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME, who_asked
from invoice_pipelines.lib.refusals import PartitionRefusals, fail_keeping_the_done
from invoice_pipelines.metadata import CheckFinding
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads
from invoice_pipelines.scheduled_checks import evaluation

# A backfill's chunk (Dagster cuts the keys along the dimension with fewer of them): with no more
# organizations than months, one organization's months, up to 40 a run; with more organizations
# than months, up to 40 organizations of one month a run. The runs of one span of organizations
# wait for each other (the coordinator's slot), so the spans are what runs side by side: at 120 a
# run, a backfill of 100 organizations was one span and ran one run at a time (issue 55, `bench
# backfill`); at 40 it is three, the backfill lane's cap.
MAX_PARTITIONS_PER_RUN = 40


class ExportConfig(Config):
    close_month: bool | None = Field(
        default=None,
        description="Festschreibung: write the month as closed (locked in DATEV). Empty: the "
        "organization's setting exports.close_months.",
    )
    requested_by: str = Field(default="", description="Who asked for it (audit log).")


def _slug(key: str) -> str:
    return _partition(key)[0]


def _partition(key: str) -> tuple[str, str]:
    """(organization slug, YYYY-MM) of a partition key such as "2026-11|acme"."""
    if not isinstance(key, MultiPartitionKey):
        key = export_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims[ORGANIZATIONS_PARTITIONS_NAME], dims[MONTH_DIMENSION]


def _export(
    context: AssetExecutionContext,
    config: ExportConfig,
    databases: tuple[Engine, Engine],
    export_store: ResourceParam[Files],
    direction: str,
    check_name: str,
    documents: DocumentStores | None = None,
):
    engine, system = databases
    who = who_asked(config.requested_by, context.run.tags)
    refusals = PartitionRefusals(context.partition_keys, context.log.error)
    results: dict[str, ExportResult] = {}
    shown: dict[str, dict] = {}  # each partition's metadata, as its materialization shows it
    held: dict[str, CheckFinding] = {}  # the months held for a setting left out, and why
    # a run over several partitions (a backfill's chunk, the monthly schedule's batch) materializes
    # each one as it is done (the asset's output is not required); a run of one, at its end
    live = len(refusals.keys) > 1
    # each partition's organization, found once (the export and the review count use it); a run
    # over several organizations (a backfill's chunk, the monthly schedule's batch) leaves a
    # suspended one's month as it is, as its sensors and schedules do
    for key, org in refusals.organizations(system, context.log.warning, _slug):
        slug, period = org.slug, _partition(key)[1]
        try:
            result = run_export(
                engine,
                export_store,
                org,
                period,
                direction,
                close_month=config.close_month,
                run_id=context.run.run_id,
                requested_by=who,
                # only the running month's partition (provisional mode) is not over yet
                provisional=month_state(period) != "over",
                documents=documents,
            )
        except DatevNumbersMissing as exc:
            # a setting the organization was allowed to leave out: the month is held, not failed
            held[key] = _hold(context, refusals, key, org, str(exc))
            continue
        except ExportSettingsError as exc:
            refusals.refuse(key, str(exc))
            continue
        except Exception as exc:  # one partition's failure is that partition's alone
            # (issue 55: a UniqueViolation in one month ended a backfill run's whole chunk); the
            # traceback goes to the run's log, the partition is failed with the error's first line
            context.log.exception(f"{slug} {period}: the export failed")
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            refusals.refuse(key, f"the export failed ({type(exc).__name__}: {first})")
            continue
        if result.skipped:
            context.log.warning(skipped_line(slug, period, result))
        results[key] = result
        figures = export_figures([result])
        shown[key] = as_metadata(figures)
        if result.in_review:
            context.log.info(
                f"{slug} {period}: {result.in_review} supplier invoice(s) wait for review "
                "(NEEDS_REVIEW); booked once a person confirms them"
            )
        if live:
            # the partition is materialized when its export is done, not when the run ends: the
            # backfill page and the partitions' status follow the exports as they are written
            context.log_event(
                AssetMaterialization(
                    context.asset_key,
                    partition=key,
                    metadata=shown[key],
                )
            )
            # and its check, for its own partition (partitioned like the asset, issue 85)
            finding = check_result(booked_finding([result]), check_name=check_name)
            context.log_event(evaluation(finding, context.asset_key, key))
    if refusals:
        fail_keeping_the_done(
            context,
            refusals,
            metadata=shown,
            # each done partition's check: logged with it already in a run of several
            checks={}
            if live
            else {
                key: [check_result(booked_finding([r]), check_name=check_name)]
                for key, r in results.items()
            },
            materialized=live,
        )
    if live:
        # each partition was materialized and checked as it was done; the check's output (Dagster
        # requires it) is the run's whole finding
        yield check_result(booked_finding(list(results.values())), check_name=check_name)
        return
    if held:
        # its one partition held: not materialized, its observation and its check say why
        [finding] = held.values()
        yield check_result(finding, check_name=check_name)
        return
    # a run of one partition, done: the figures its loop built
    [metadata] = shown.values()
    check = check_result(booked_finding(list(results.values())), check_name=check_name)
    yield MaterializeResult(metadata=metadata, check_results=[check])


def _hold(
    context: AssetExecutionContext,
    refusals: PartitionRefusals,
    key: str,
    org: Organization,
    sentence: str,
) -> CheckFinding:
    """A month of an organization without its DATEV numbers: left unexported and unmaterialized
    (its invoices wait), a warning in the run's log and an observation on the partition that
    names what to set; the run does not fail for a setting a person was allowed to leave out."""
    context.log.warning(f"{key}: held, {sentence}")
    refusals.left.append(key)
    context.log_event(
        AssetObservation(
            context.asset_key,
            partition=key,
            metadata={"held": sentence, "missing": missing_text(org)},
        )
    )
    return CheckFinding(passed=False, description=f"Held: {sentence}.", metadata={"held": sentence})


SKIPPED_CHECK = "every_invoice_booked"


def _export_asset(
    direction: str, name: str, upstream: str, *, check_description: str, description: str
):
    """The export asset of `direction` ("incoming", "sales"): one organization and month a
    partition (EXPORT_ASSET), downstream of `upstream`, with its every_invoice_booked check."""

    @asset(
        name=name,
        deps=[AssetDep(upstream, partition_mapping=UPSTREAM_ORGANIZATION)],
        **EXPORT_ASSET,
        check_specs=[
            AssetCheckSpec(
                SKIPPED_CHECK,
                asset=name,
                description=check_description,
                # each organization and month keeps its own result (issue 85)
                partitions_def=export_partitions,
            )
        ],
        description=description,
    )
    def export(
        context: AssetExecutionContext,
        config: ExportConfig,
        database: ResourceParam[Engine],
        system_database: ResourceParam[Engine],
        export_store: ResourceParam[Files],
        upload_store: ResourceParam[Uploads],
        document_store: ResourceParam[Files],
    ):
        documents = DocumentStores(upload_store, document_store)
        databases = (database, system_database)
        yield from _export(
            context, config, databases, export_store, direction, SKIPPED_CHECK, documents
        )

    return export


# The partition mapping and backfill_policy are beta in Dagster 1.13: without this, their warning is
# printed into every process that loads the code, each run included.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", BetaWarning)
    warnings.simplefilter("ignore", PreviewWarning)  # a check's partitions_def

    UPSTREAM_ORGANIZATION = MultiToSingleDimensionPartitionMapping(
        partition_dimension_name=ORGANIZATIONS_PARTITIONS_NAME
    )
    # what the two export assets share: one organization and month a partition
    EXPORT_ASSET = dict(
        partitions_def=export_partitions,
        output_required=False,
        backfill_policy=BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN),
        group_name="exports",
        kinds={"python", "sql", "csv"},
        owners=OWNERS,
    )

    incoming_invoice_exports = _export_asset(
        "incoming",
        "incoming_invoice_exports",
        "incoming_invoices",
        check_description="Fails with the count when validated supplier invoices of the month "
        "could not be booked (no account mapping, unknown VAT rate, foreign currency without "
        "a rate, no date); they stay VALIDATED and the export lists why.",
        description="Validated supplier invoices of one organization and month as a DATEV "
        "Buchungsstapel (EXTF 700, category 21, format 13) whose bookings link their documents "
        "(Beleglink), the DATEV document package (ZIP with document.xml: the suppliers' "
        "originals), a DATEV Debitoren/Kreditoren file and CSV files (invoices, lines) in the "
        "export store; booked invoices become EXPORTED. A month "
        "materialized again writes a new version only if something changed.",
    )
    sales_invoice_exports = _export_asset(
        "sales",
        "sales_invoice_exports",
        "sales_invoices",
        check_description="Fails with the count when sales invoices of the month could not be "
        "booked (no revenue account for a VAT rate, foreign currency without a rate).",
        description="Sales invoices of one organization and month (by issue date, cancelled ones "
        "left out) as a DATEV Buchungsstapel with the customers' debtor accounts, a DATEV "
        "Debitoren/Kreditoren file, the DATEV document package (ZIP with document.xml: the "
        "invoices' PDFs, linked from each booking) and CSV files (invoices, lines) in the export "
        "store.",
    )
