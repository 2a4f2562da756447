"""Dunning's assets: `dunning_notices`, partitioned by organization, downstream of `receivables`.

`receivables` is the open amounts of the organization's sales invoices as the application
database holds them (billing writes the invoices and credit notes, the QuickBooks pull their
payments, commands and the app change them too): an external asset (`AssetSpec`, never
materialized by Dagster). A materializable upstream with the same partitions would make the
launch dialog say "Upstream data missing" for every organization whose invoices no
`sales_invoices` run wrote, though the notices read the database and need no such run. A
partition materialized by hand (or a backfill with `as_of`) re-runs one organization, or answers
"what would have been noticed on 2026-03-01" with `dry_run`; the schedule (schedules.py) runs
batches of organizations.
"""

from datetime import date, datetime

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from invoice_pipelines.catalog import OWNERS, defined_here
from invoice_pipelines.lib.partitions import (
    REQUESTED_BY_HELP,
    organizations_partitions,
    who_asked,
)
from invoice_pipelines.lib.refusals import (
    CONFIRM_HELP,
    PartitionRefusals,
    confirmed_or_refuse,
    fail_keeping_the_done,
    materialize_the_done,
    refused,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.overdue.domain import scheduling
from invoice_pipelines.overdue.domain.letter import LetterSummary, write_letters
from invoice_pipelines.overdue.domain.notice_sending import NoticeDeliverySummary, send_notices_over
from invoice_pipelines.overdue.domain.pipeline import DunningResult, run_overdue
from invoice_pipelines.resources.messaging.channels import resources_of

ASSET = "dunning_notices"


# what a plain Materialize of dunning_notices says to write and send notices (lib/refusals.py)
NOTICE = "send notices"


class DunningConfig(Config):
    as_of: str = Field(
        default="",
        description="Notice as of this day (YYYY-MM-DD, in each organization's timezone: a "
        "backfill) or this instant (ISO 8601 with offset; the schedule passes its tick). "
        "Empty: now.",
    )
    dry_run: bool = Field(
        default=False,
        description="Count what would be noticed without writing notices (the run is logged).",
    )
    requested_by: str = Field(
        default="", description="Who asked for it (execution log). " + REQUESTED_BY_HELP
    )
    confirm: str = Field(default="", description=f'"{NOTICE}". {CONFIRM_HELP}')


def parse_as_of(value: str) -> tuple[datetime | None, date | None]:
    """(instant, day) from the config's as_of; both None for now. The run coordinator refuses a
    bad one before the run is queued; this refusal is for runs that did not pass through it."""
    try:
        return scheduling.parse_as_of(value)
    except scheduling.AsOfError as exc:
        raise refused(str(exc)) from None


def _cents(amount) -> int:
    return int(amount * 100)


def _metadata(r: DunningResult) -> dict:
    """One organization's figures, on its own partition's materialization (plotted over time)."""
    metadata = {
        "status": MetadataValue.text(r.status),
        "as_of": MetadataValue.text(str(r.as_of or "")),
        "invoices_scanned": MetadataValue.int(r.scanned),
        "notices_created": MetadataValue.int(r.notices_created),
        # money as exact text; whole cents for the plots
        "fees_charged": MetadataValue.text(f"{r.fees:.2f}"),
        "interest_charged": MetadataValue.text(f"{r.interest:.2f}"),
        "fees_charged_cents": MetadataValue.int(_cents(r.fees)),
        "interest_charged_cents": MetadataValue.int(_cents(r.interest)),
        "errors": MetadataValue.int(len(r.errors)),
        "seconds": MetadataValue.float(round(r.seconds, 3)),
        "dry_run": MetadataValue.bool(r.dry_run),
        "notices_fee_invoiced": MetadataValue.int(r.notices_invoiced),
    }
    if r.fee_invoice_job_id is not None:
        metadata["fee_invoice_batch_job"] = MetadataValue.int(r.fee_invoice_job_id)
    for name, count in sorted(r.created_by_level.items()):
        metadata[f"notices_{name}"] = MetadataValue.int(count)
    if r.errors:
        metadata["error_list"] = MetadataValue.md(
            markdown_table(
                ("invoice id", "number", "reason"),
                (
                    (e.get("invoice_id", ""), e.get("invoice_number", ""), e["message"])
                    for e in r.errors
                ),
                align="r",
                limit=50,
            )
        )
    return metadata


def _letter_metadata(letters: LetterSummary) -> dict:
    """The letters this run wrote: how many, and each one's path, size and pages."""
    metadata = {
        "letters_written": MetadataValue.int(len(letters.written)),
        "letters_failed": MetadataValue.int(len(letters.failed)),
    }
    if letters.written:
        metadata["letters"] = MetadataValue.md(
            markdown_table(
                ("notice", "invoice", "level", "path", "bytes", "pages"),
                (
                    (
                        w["notice_id"],
                        w["invoice_number"],
                        w["level"],
                        w["path"],
                        w["size_bytes"],
                        w["pages"],
                    )
                    for w in letters.written
                ),  # fmt: skip
                align="r",
                limit=50,
            )
        )
    return metadata


def _delivery_metadata(sent: NoticeDeliverySummary) -> dict:
    return {
        "notices_sent": MetadataValue.int(sent.sent),
        "notices_send_failed": MetadataValue.int(len(sent.failed)),
        "notices_send_postponed": MetadataValue.int(len(sent.postponed)),
        "notices_send_unknown": MetadataValue.int(len(sent.unknown)),
        "notices_withdrawn": MetadataValue.int(len(sent.withdrawn)),
    }


receivables = AssetSpec(
    "receivables",
    deps=["sales_invoices", "qbo_payments"],
    metadata=defined_here(),
    group_name="overdue",
    partitions_def=organizations_partitions,
    kinds={"sql"},
    owners=OWNERS,
    description="What one organization's customers owe: its sales invoices with their amount due, "
    "due date, payments and credit notes, as the application database holds them (written by "
    "billing, the QuickBooks payment pull, commands and the app). Not materialized here: the "
    "dunning run reads it as it is, whichever run or command wrote it.",
)


@asset(
    name=ASSET,
    partitions_def=organizations_partitions,
    deps=[receivables],
    # a run over several organizations leaves a suspended one's partition unmaterialized
    output_required=False,
    group_name="overdue",
    kinds={"python", "sql"},
    owners=OWNERS,
    # the notices go out over every delivery channel's resource (resources/messaging/channels.py)
    required_resource_keys={
        "database",
        "system_database",
        "document_store",
        "letter_writer",
        *resources_of(),
    },
    description="Dunning notices of overdue sales invoices: one per invoice and level (reminder, "
    "first dunning, final notice by default), with fee and default interest, never twice; "
    "customers with a dunning block and disputed invoices are left out. Each notice becomes a "
    "PDF/A letter in the document store (written once; path, size and pages in the metadata). "
    "Where the organization enables it, notices are sent at most once, in the customer's "
    "language: by e-mail with the letter and the invoice PDF, or as a short SMS or WhatsApp text. "
    "Each organization's run is recorded in the execution log (dunning_runs). Notices sent "
    "cannot be taken back: a plain Materialize runs only with the config confirm: "
    f'"{NOTICE}" (or dry_run: true).',
)
def dunning_notices(context: AssetExecutionContext, config: DunningConfig):
    if not config.dry_run:
        confirmed_or_refuse(
            context, config.confirm, NOTICE, what="writes and sends notices", job="dunning_job"
        )
    at, on = parse_as_of(config.as_of)
    resources = context.resources
    engine, document_store = resources.database, resources.document_store
    who = who_asked(config.requested_by, context.run.tags)
    refusals = PartitionRefusals(context.partition_keys, context.log.error)
    metadata_by_key = {}
    # each partition's organization, found once; a gone one refused, an inactive one left
    for key, org in refusals.organizations(resources.system_database, context.log.warning):
        result = run_overdue(
            engine, org, at=at, on=on, dry_run=config.dry_run, run_id=context.run.run_id,
            requested_by=who,
        )  # fmt: skip
        metadata = _metadata(result)
        if result.status != "FAILED" and not result.dry_run:
            letters = write_letters(engine, resources.letter_writer, document_store, org)
            metadata.update(_letter_metadata(letters))
            for notice_id, reason in letters.failed.items():
                context.log.warning(f"{key}: notice {notice_id}: {reason}")
            sent = send_notices_over(engine, resources, document_store, org)
            metadata.update(_delivery_metadata(sent))
            for notice_id, reason in {**sent.failed, **sent.postponed, **sent.withdrawn}.items():
                context.log.warning(f"{key}: notice {notice_id} not sent: {reason}")
            for notice_id in sent.unknown:
                context.log.error(f"{key}: notice {notice_id} has an unknown outcome (not resent)")
        metadata_by_key[key] = metadata
        if result.status == "FAILED":
            # recorded in dunning_runs; the partition is refused, the others go on
            refusals.refuse(key, result.errors[0]["message"])
        for error in result.errors if result.status == "PARTIAL" else []:
            context.log.warning(
                f"{key}: invoice {error['invoice_number']} not noticed: {error['message']}"
            )
        context.log.info(
            f"{key} as of {result.as_of}: {result.status}, {result.scanned} scanned, "
            f"{result.notices_created} notices {dict(result.created_by_level)}"
        )
    if refusals:
        fail_keeping_the_done(context, refusals, metadata=metadata_by_key)
    if len(refusals.keys) > 1:
        # each partition done materialized by an event of its own, with its metadata: a result
        # would materialize the range, a left (suspended) organization's partition too, and
        # Dagster's add_asset_metadata(partition_key=...) reads every organization's partition
        # key at each call (at 10,000 organizations 10 s of a run over 100, issue 76)
        materialize_the_done(context, refusals, metadata_by_key)
        return
    yield MaterializeResult(metadata=next(iter(metadata_by_key.values()), None))
