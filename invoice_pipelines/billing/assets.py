"""Billing's assets: sales_orders -> sales_invoices, and the launchpad's config of a batch
invoicing run.

`sales_orders` is an external asset: the ERP or app writes orders; every batch invoicing run
records an observation of them (orders by status, customers, items). `sales_invoices` is one
organization's invoices (a partition); `batch_invoicing_job` (jobs.py) materializes it by
processing one batch job (a queued one, or a new request checked and queued in the run).
Materializing a partition by hand with no config invoices every reviewed order of that
organization.
"""

from enum import Enum
from typing import Literal

from dagster import (
    AssetExecutionContext,
    AssetObservation,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Engine

from invoice_pipelines.billing.checks import (
    AUDIT_CHECKS,
    SALES_INVOICES,
    audit_results,
    gapless_numbers_result,
    gapless_numbers_spec,
    totals_result,
    totals_spec,
)
from invoice_pipelines.billing.domain.check_queries import invoice_findings
from invoice_pipelines.billing.domain.counts import invoiced_amounts, order_counts
from invoice_pipelines.billing.domain.invoicing import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_WORKERS,
    MAX_WORKERS,
    process_batch_job,
)
from invoice_pipelines.billing.domain.invoicing_kinds import (
    INVOICING_KINDS,
    enqueue_customer_lines,
    enqueue_sales_orders,
    follow_up_options,
)
from invoice_pipelines.catalog import OWNERS, defined_here
from invoice_pipelines.core.batch_requests import normalize_customer_lines
from invoice_pipelines.core.channels import delivery_channel_enum
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import customers, items
from invoice_pipelines.db.tables import sales_orders as sales_orders_table
from invoice_pipelines.lib.partitions import (
    REQUESTED_BY_HELP,
    organizations_partitions,
    who_asked,
)
from invoice_pipelines.lib.refusals import (
    CONFIRM_HELP,
    confirmed_or_refuse,
    partition_organization,
    refused,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.queue.dagster import job_metadata, sentence
from invoice_pipelines.queue.domain.jobs import (
    BatchJob,
    UnknownBatchJob,
    get_batch_job,
)
from invoice_pipelines.queue.domain.known_kinds import Kinds
from invoice_pipelines.queue.domain.requests import (
    DEFAULT_DUE_DAYS,
    BatchRequestError,
    check_due_days,
    missing_ids,
    parse_day,
    validate_order_ids,
)
from invoice_pipelines.queue.domain.stats import BatchStats, batch_stats
from invoice_pipelines.resources.workers import stop_signal
from invoice_pipelines.scheduled_checks import latest_or_now


class LineType(Enum):
    item = "item"
    charge = "charge"
    discount = "discount"


class VatCategory(Enum):
    """EN 16931 VAT category codes (UNTDID 5305) that invoicing knows."""

    S = "S"
    Z = "Z"
    E = "E"
    AE = "AE"
    K = "K"
    G = "G"
    O = "O"  # noqa: E741 - the official code


SendChannel = delivery_channel_enum("SendChannel")


class LineConfig(Config):
    item_id: int | None = Field(
        default=None,
        description="Item id; price, text and VAT default from it. Empty: a free line, which "
        "then needs description, unit_price, vat_rate and vat_category.",
    )
    quantity: str = Field(default="1", description="Decimal quantity, e.g. 2 or 1.5.")
    unit_price: str | None = Field(
        default=None, description="Decimal net price per unit, e.g. 19.90; empty: the item's price."
    )
    description: str | None = Field(default=None, description="Line text; empty: the item's name.")
    vat_rate: str | None = Field(
        default=None, description="VAT percent, e.g. 19.00; empty: the item's rate."
    )
    vat_category: VatCategory | None = Field(
        default=None, description="VAT category code; empty: the item's category."
    )
    line_type: LineType | None = Field(
        default=None,
        description="item, charge or discount; empty: item with an item_id, else charge.",
    )


class CustomerInvoiceConfig(Config):
    customer_id: int = Field(description="Customer id in this organization: one invoice each.")
    lines: list[LineConfig] = Field(description="The invoice lines, at least one.")


class NewRequestConfig(Config):
    invoice_date: str | None = Field(
        default=None,
        description="Invoice date, YYYY-MM-DD. Empty: today where the organization is.",
    )
    due_days: int | None = Field(
        default=None,
        description="Days from the invoice date until payment is due. Empty: the organization's "
        f"payment terms (settings.payment_terms_days; {DEFAULT_DUE_DAYS} when not set).",
    )
    created_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )
    generate_pdf: bool = Field(
        default=False,
        description="After the invoices are committed, write their documents (Factur-X PDF, "
        "XRechnung) in a documents job queued with this one.",
    )
    send_immediately: bool = Field(
        default=False,
        description="After the invoices are committed, send them over `channel` in a "
        "communications job queued with this one (writes the documents first; at most once).",
    )
    channel: SendChannel = Field(
        default=SendChannel.email,
        description="email, sms or whatsapp: how send_immediately sends.",
    )


class QueuedJobRequest(Config):
    kind: Literal["queued_job"] = "queued_job"
    batch_job_id: int = Field(
        description="A batch job of this organization to start or resume (what batch_jobs_sensor "
        "launches; a finished job is reported as it is)."
    )


class SalesOrdersRequest(NewRequestConfig):
    kind: Literal["sales_orders"] = "sales_orders"
    order_ids: list[int] = Field(
        description="Sales orders of this organization to invoice; already invoiced ones are skipped."
    )


class AllReviewedRequest(NewRequestConfig):
    kind: Literal["all_reviewed"] = "all_reviewed"
    up_to: str | None = Field(
        default=None,
        description="Only orders dated up to this day, YYYY-MM-DD. Empty: every reviewed order.",
    )


class CustomerLinesRequest(NewRequestConfig):
    kind: Literal["customer_lines"] = "customer_lines"
    customers: list[CustomerInvoiceConfig] = Field(
        description="Customers with the items, quantities and prices to invoice (no sales orders)."
    )


BatchRequest = QueuedJobRequest | SalesOrdersRequest | AllReviewedRequest | CustomerLinesRequest


# what a plain Materialize of sales_invoices says to issue numbered invoices (lib/refusals.py)
ISSUE = "issue invoices"


class BatchInvoicingConfig(Config):
    """Exactly one request for the partition's organization: a queued job, or a new request."""

    request: BatchRequest = Field(
        default=AllReviewedRequest(),
        discriminator="kind",
        description="Exactly one of: queued_job (process a job from the queue), sales_orders "
        "(invoice orders by id), all_reviewed (every reviewed order, up to a date; the default), "
        "customer_lines (invoice customers with given lines).",
    )
    chunk_size: int = Field(
        default=DEFAULT_CHUNK_SIZE,
        description="Orders per transaction (at least 1); a crash loses at most one chunk's work.",
    )
    workers: int = Field(
        default=DEFAULT_WORKERS,
        description=f"PostgreSQL: chunks in flight at once, one database connection each "
        f"(1 to {MAX_WORKERS}).",
    )
    confirm: str = Field(default="", description=f'"{ISSUE}". {CONFIRM_HELP}')


def stats_metadata(stats: BatchStats) -> dict:
    metadata = {
        "day": MetadataValue.text(stats.day.isoformat()),
        "jobs_today": MetadataValue.int(stats.jobs),
        "orders_invoiced_today": MetadataValue.int(stats.invoices_created),
        "failed_items_today": MetadataValue.int(stats.failed_items),
        "skipped_items_today": MetadataValue.int(stats.skipped_items),
        "jobs_by_status": MetadataValue.json(stats.jobs_by_status),
        "jobs_by_kind": MetadataValue.json(stats.jobs_by_kind),
        "items_done_by_kind": MetadataValue.json(stats.items_done_by_kind),
    }
    if stats.average_duration_seconds is not None:
        metadata["average_duration_seconds"] = MetadataValue.float(stats.average_duration_seconds)
    if stats.orders_per_second is not None:
        metadata["orders_per_second"] = MetadataValue.float(stats.orders_per_second)
    return metadata


def _check_settings(config: BatchInvoicingConfig) -> None:
    if config.chunk_size < 1:
        raise refused(f"chunk_size must be at least 1, not {config.chunk_size}.")
    if not 1 <= config.workers <= MAX_WORKERS:
        raise refused(f"workers must be between 1 and {MAX_WORKERS}, not {config.workers}.")


def _queued_job(system, org: Organization, request: QueuedJobRequest) -> int:
    try:
        batch = get_batch_job(system, request.batch_job_id)
    except UnknownBatchJob:
        raise refused(f"There is no batch job {request.batch_job_id}.") from None
    if batch.kind not in INVOICING_KINDS:
        raise refused(f"Batch job {batch.id} is a {batch.kind} job; invoice_batch_job runs it.")
    if batch.organization_id != org.id:
        raise refused(
            f"Batch job {batch.id} belongs to organization {batch.organization_slug!r}, "
            f"not {org.slug!r}."
        )
    return batch.id


def _missing(engine, org: Organization, table, ids, what: str) -> None:
    missing = missing_ids(engine, org.id, table, ids)
    if missing:
        shown = ", ".join(str(i) for i in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise refused(f"Organization {org.slug!r} has no {what} {shown}.")


def _enqueue(
    context: OpExecutionContext,
    engine,
    org: Organization,
    request: BatchRequest,
) -> int:
    """Check a new request completely, then queue it, taken by this run; nothing is written first."""
    common = {
        "invoice_date": request.invoice_date or None,
        "due_days": request.due_days,
        "created_by": who_asked(request.created_by, context.run.tags),
        # taken by this run: the sensor must not launch a second run for it
        "runner": context.run.run_id,
        "options": follow_up_options(
            request.generate_pdf,
            request.send_immediately,
            request.channel.value if request.send_immediately else None,
        ),
    }
    try:
        parse_day(request.invoice_date, "invoice_date")
        check_due_days(request.due_days, "due_days")
        if isinstance(request, SalesOrdersRequest):
            ids = validate_order_ids(request.order_ids)
            _missing(engine, org, sales_orders_table, ids, "sales orders")
            return enqueue_sales_orders(engine, org, order_ids=ids, **common)
        if isinstance(request, AllReviewedRequest):
            return enqueue_sales_orders(
                engine,
                org,
                all_reviewed=True,
                up_to=parse_day(request.up_to, "up_to"),
                **common,
            )
        entries = normalize_customer_lines(
            [c.model_dump(mode="json", exclude_none=True) for c in request.customers]
        )
        _missing(engine, org, customers, [e["customer_id"] for e in entries], "customers")
        item_ids = [
            ln["item_id"] for e in entries for ln in e["lines"] if ln["item_id"] is not None
        ]
        _missing(engine, org, items, item_ids, "items")
        return enqueue_customer_lines(engine, org, entries, **common)
    except BatchRequestError as exc:
        raise refused(sentence(str(exc))) from None


sales_orders = AssetSpec(
    "sales_orders",
    metadata=defined_here(),
    group_name="billing",
    partitions_def=organizations_partitions,
    kinds={"sql"},
    owners=OWNERS,
    description="Sales orders of one organization with their lines, written by the ERP or app "
    "(draft, pending, reviewed, invoiced, cancelled). Not materialized here: every batch invoicing "
    "run records an observation (orders by status, customers, items).",
)


def _orders_observation(engine, org: Organization) -> AssetObservation:
    by_status, n_customers, n_items = order_counts(engine, org.id)
    metadata = {
        "orders": MetadataValue.int(sum(by_status.values())),
        "customers": MetadataValue.int(n_customers),
        "items": MetadataValue.int(n_items),
    }
    for status in ("draft", "pending", "reviewed", "invoiced", "cancelled"):
        metadata[f"orders_{status}"] = MetadataValue.int(by_status.get(status, 0))
    return AssetObservation(asset_key=sales_orders.key, partition=org.slug, metadata=metadata)


def failed_items_table(errors: list[dict]) -> str:
    return markdown_table(
        ("position", "sales order", "code", "message"),
        (
            (
                e.get("position", ""),
                e.get("sales_order_id") or "-",
                e.get("code", ""),
                e.get("message", ""),
            )
            for e in errors[:50]
        ),
    )


@asset(
    name="sales_invoices",
    partitions_def=organizations_partitions,
    deps=[sales_orders],
    group_name="billing",
    kinds={"python", "sql"},
    owners=OWNERS,
    check_specs=[gapless_numbers_spec, totals_spec],
    description="Sales invoices of one organization, created from sales orders (or customer "
    "lines) by batch invoicing: gapless numbers per organization, exactly once under crashes and "
    "concurrency. Materialized by batch_invoicing_job, one batch job per run (batch_jobs_sensor "
    "launches queued jobs); each run records what the job did, today's totals, the failed items, "
    "and checks numbering and totals. It issues gapless numbers that cannot be taken back: a "
    f'plain Materialize runs only with the config confirm: "{ISSUE}".',
)
def sales_invoices(
    context: AssetExecutionContext,
    config: BatchInvoicingConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    batch_kinds: ResourceParam[Kinds],
):
    # a run's SIGTERM that Dagster's handler loses still stops its chunks (stop_signal.py); a run
    # that started elsewhere than the code server's start_run remembers it from here on
    stop_signal.remember()
    engine = database
    confirmed_or_refuse(
        context, config.confirm, ISSUE, what="issues numbered invoices", job="batch_invoicing_job"
    )
    _check_settings(config)
    org = partition_organization(system_database, context)
    if isinstance(config.request, QueuedJobRequest):
        job_id = _queued_job(system_database, org, config.request)
    else:
        job_id = _enqueue(context, engine, org, config.request)
    context.log.info(f"batch job {job_id} ({org.slug})")

    def progress(batch: BatchJob) -> None:
        context.log.info(
            f"batch job {batch.id}: {batch.processed_count:,}/{batch.total_count:,} processed, "
            f"{batch.successful_count:,} invoiced, {batch.failed_count:,} failed, {batch.skipped_count:,} skipped"
        )

    batch = process_batch_job(
        engine,
        job_id,
        system=system_database,
        chunk_size=config.chunk_size,
        runner=context.run.run_id,
        on_progress=progress,
        workers=config.workers,
    )
    context.log_event(_orders_observation(engine, org))
    if batch.status == "failed":
        raise Failure(
            f"batch job {batch.id} failed: {batch.failure_reason}",
            metadata=job_metadata(batch, batch_kinds),
        )
    metadata = {
        **job_metadata(batch, batch_kinds),
        **stats_metadata(batch_stats(engine, org, batch_kinds)),
        "invoiced_amounts": MetadataValue.json(invoiced_amounts(engine, org.id, batch.id)),
    }
    if batch.errors:
        metadata["failed_items"] = MetadataValue.md(failed_items_table(batch.errors))
    yield MaterializeResult(metadata=metadata)
    gaps, totals = invoice_findings(engine, org.id, batch_job_id=batch.id)
    yield gapless_numbers_result(gaps)
    yield totals_result(totals, f"batch job {batch.id}")
    # the daily audit's checks, as it last found them (or now, before its first run): the UI
    # shows them on this materialization instead of "Not evaluated" (issue 73); unless this run
    # evaluates them itself (the UI's Materialize selects them with the asset)
    in_this_run = {key.name for key in context.run.asset_check_selection or ()}
    if not in_this_run.intersection(AUDIT_CHECKS):
        for event in latest_or_now(
            context.instance,
            SALES_INVOICES,
            AUDIT_CHECKS,
            lambda: audit_results(engine, system_database),
        ):
            context.log_event(event)
