"""What the Dagster side of every kind of batch job shares: the run tag that names the job, the
metadata a run records of it, the sentence a refusal shows, and the config a new request over a
list of sales invoices starts from (`NewInvoiceJob`, which the kinds' requests extend)."""

from __future__ import annotations

from dagster import Config, MetadataValue
from pydantic import Field

from invoice_pipelines.lib.partitions import REQUESTED_BY_HELP
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.known_kinds import Kinds

BATCH_JOB_TAG = "invoice_pipelines/batch_job"


class NewInvoiceJob(Config):
    invoice_ids: list[int] = Field(description="Sales invoice ids, in the order to process them.")
    requested_by: str | None = Field(
        default=None,
        description="Who asked, for the audit log. " + REQUESTED_BY_HELP,
    )


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, one full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."


def job_metadata(batch: BatchJob, kinds: Kinds) -> dict:
    """A batch job as run and asset metadata. Invoicing jobs (a kind that `creates_invoices`)
    count `invoiced` orders (with their rate and the first 20 errors); documents, communications
    and credit notes jobs count `succeeded` items (with the first 50 failed items, each with its
    code and reason)."""
    over_invoices = not kinds.creates_invoices(batch.kind)
    metadata = {"batch_job_id": MetadataValue.int(batch.id)}
    if over_invoices:
        metadata["kind"] = MetadataValue.text(batch.kind)
    else:
        metadata["organization"] = MetadataValue.text(batch.organization_slug)
    metadata.update(
        status=MetadataValue.text(batch.status),
        total=MetadataValue.int(batch.total_count),
        **{"succeeded" if over_invoices else "invoiced": MetadataValue.int(batch.successful_count)},
        failed=MetadataValue.int(batch.failed_count),
        skipped=MetadataValue.int(batch.skipped_count),
    )
    if batch.duration_seconds is not None:
        metadata["duration_seconds"] = MetadataValue.float(batch.duration_seconds)
        if batch.duration_seconds > 0 and not over_invoices:
            metadata["orders_per_second"] = MetadataValue.float(
                round(batch.processed_count / batch.duration_seconds, 1)
            )
    # chunks of this run redone one at a time after their attempt in flight was rolled back
    # (invoicing on PostgreSQL: billing.invoicing.ProcessedBatchJob)
    fallbacks = getattr(batch, "fallbacks", None)
    if fallbacks is not None:
        metadata["fallbacks"] = MetadataValue.int(fallbacks)
        if batch.fallback_causes:
            metadata["fallback_causes"] = MetadataValue.json(batch.fallback_causes)
    if batch.errors:
        if over_invoices:
            metadata["failed_items"] = MetadataValue.json(batch.errors[:50])
        else:
            metadata["first_errors"] = MetadataValue.json(batch.errors[:20])
    if batch.failure_reason:
        metadata["failure_reason"] = MetadataValue.text(batch.failure_reason)
    return metadata
