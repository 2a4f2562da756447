"""Batch communications through the queue (kind `communications`, the queue's
`COMMUNICATIONS_KIND`): each chunk of invoices gets its documents first (the queue runs the
documents kind's chunk work before this one: `prepared_by`), then the invoices whose documents
exist are sent over the job's channel by `delivery.pipeline.send_invoices`, at most once per
invoice and channel; over e-mail, the invoices of customers on Peppol go over Peppol where
their receiver takes them (delivery/domain/peppol.py), and their items read that delivery.

An item's outcome is read from `deliveries`, not from what this process saw: a run that died
mid-chunk and was resumed finds the messages it already sent there (sent: done, not sent again;
under way at the death: `unknown`, a failed item with that reason, never resent on its own). A
failed delivery (a 5xx answer, no address) is tried again by the job's retry, which asks for
exactly the failed invoices. Every delivery of the job leaves an audit log row: who sent which
invoice, when, to whom, over which channel, with which message id and outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.core.channels import DELIVERY_CHANNELS, EMAIL, INVOICE_CHANNELS, PEPPOL
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import deliveries, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import (
    AlreadySending,
    Channel,
    already_sending_message,
    send_invoices,
)
from invoice_pipelines.queue.domain.batch_job import BatchJob
from invoice_pipelines.queue.domain.items import enqueue_invoice_job, request_of
from invoice_pipelines.queue.domain.job_kind import (
    SUCCEEDED,
    Chunks,
    ItemOutcome,
    JobKind,
    Reading,
    Requests,
    Work,
)
from invoice_pipelines.queue.domain.requests import BatchRequestError
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.messaging.channels import (
    ChannelUnavailable,
    open_channel,
    resources_of,
    transport_of,
)

if TYPE_CHECKING:
    from invoice_pipelines.delivery.domain.batch_request import CommunicationsJobRequest

COMMUNICATIONS = KindName.COMMUNICATIONS  # this area's kind of batch job, by its name
DELIVERY_ACTIONS = {"sent": "invoice.sent", "failed": "invoice.send_failed"}


def communications_work(
    engine: Engine,
    channel_for: Callable[[str], Channel],
    *,
    run_id: str | None = None,
    max_per_second: float = 50.0,
    backoff_seconds: float = 0.5,
    store: Files,
) -> Work:
    """The sending of a communications chunk (its documents are written first: the kind is
    prepared by the documents kind); `channel_for(name)` opens the job's channel."""

    def work(job: BatchJob, org: Organization, request: Mapping[str, Any], invoice_ids: list[int]):
        channel = channel_for(request.get("channel") or EMAIL)
        peppol = _peppol(channel_for) if channel.carries_files else None
        summary = send_invoices(
            engine,
            store,
            channel,
            org,
            invoice_ids,
            # a failed delivery (refused address, none at all) did not arrive: sending it again
            # is what a job that names the invoice asks for
            retry_failed=True,
            resend=bool(request.get("resend")),
            max_per_second=max_per_second,
            backoff_seconds=backoff_seconds,
            requested_by=job.created_by or "unknown",
            run_id=run_id,
            batch_job_id=job.id,
            peppol=peppol,
        )
        channels = (channel.name, PEPPOL) if peppol is not None else (channel.name,)
        return _outcomes(engine, job, channels, invoice_ids, summary.skipped)

    return work


def _peppol(channel_for: Callable[[str], Channel]) -> Channel | None:
    """The Peppol channel where the run has an access point, else None (sent as before)."""
    try:
        channel = channel_for(PEPPOL)
    except ChannelUnavailable:
        return None
    return channel if channel.name == PEPPOL else None


def _outcomes(
    engine: Engine,
    job: BatchJob,
    channels: tuple[str, ...],
    ids: list[int],
    skipped: Mapping[int, str],
) -> dict[int, ItemOutcome]:
    """Each invoice's outcome from its latest delivery over the channels (the job's, and Peppol
    where it sent over it), with an audit log row for each delivery of the job (recorded with
    the item, so once)."""
    d = deliveries.c
    with tenant_transaction(engine, job.organization_id) as conn:
        latest: dict[int, Any] = {}
        mine: dict[int, Any] = {}  # the latest of this job's own, over several channels
        for row in conn.execute(
            select(deliveries, sales_invoices.c.invoice_number)
            .join(sales_invoices, sales_invoices.c.id == d.sales_invoice_id)
            .where(
                d.organization_id == job.organization_id,
                d.channel.in_(channels),
                d.sales_invoice_id.in_(ids),
            )
            # the latest attempt last, over whichever channel (a resend is a later row)
            .order_by(d.sales_invoice_id, d.id)
        ):
            latest[row.sales_invoice_id] = row
            if row.batch_job_id == job.id:
                mine[row.sales_invoice_id] = row
        outcomes: dict[int, ItemOutcome] = {}
        for invoice_id in ids:
            row = latest.get(invoice_id)
            if len(channels) > 1 and invoice_id in mine:
                # an e-mail this job sent after Peppol was tried (the SMP turned it away) is
                # its outcome, whatever an earlier job left over Peppol
                row = mine[invoice_id]
            ours = row is not None and row.batch_job_id == job.id
            reason = skipped.get(invoice_id)
            if row is None or (not ours and reason and reason.startswith("not sent in this run")):
                outcomes[invoice_id] = ItemOutcome(
                    "failed", "not_sent", reason or "not sent (no delivery recorded)"
                )
            elif not ours:
                outcomes[invoice_id] = ItemOutcome(
                    "skipped", f"already_{row.status}", reason or f"already {row.status}"
                )
            elif row.status == "sent":
                outcomes[invoice_id] = SUCCEEDED
            elif row.status == "failed":
                outcomes[invoice_id] = ItemOutcome("failed", "send_failed", row.error)
            else:  # unknown (or still sending: its run died under way)
                outcomes[invoice_id] = ItemOutcome(
                    "failed",
                    "outcome_unknown",
                    row.error
                    or "the message may or may not have arrived; it is not sent again on its own",
                )
            if ours:
                outcomes[invoice_id] = replace(
                    outcomes[invoice_id],
                    audit={
                        "created_by": row.created_by or job.created_by or "unknown",
                        "action": DELIVERY_ACTIONS.get(row.status, "invoice.send_unknown"),
                        "entity_type": "sales_invoice",
                        "entity_id": str(invoice_id),
                        "details": {
                            "batch_job_id": job.id,
                            "invoice_number": row.invoice_number,
                            "channel": row.channel,
                            "recipient": row.recipient,
                            "message_id": row.message_id,
                            "transport_message_id": row.transport_message_id,
                            "fallback_reason": row.fallback_reason,
                            "sequence": row.sequence,
                            "status": row.status,
                            "sent_at": row.sent_at.isoformat() if row.sent_at else None,
                            "error": row.error,
                        },
                    },
                )
    return outcomes


# -- the kind, as the queue knows it -------------------------------------------------------------


def _request() -> type:
    """The launchpad's request (Dagster config), loaded with the queue's Dagster job only."""
    from invoice_pipelines.delivery.domain.batch_request import CommunicationsJobRequest

    return CommunicationsJobRequest


def _enqueue(
    engine: Engine, organization: Organization, request: CommunicationsJobRequest, who, runner
):
    return enqueue_invoice_job(
        engine,
        organization,
        COMMUNICATIONS_KIND,
        request.invoice_ids,
        channel=request.channel.value,
        resend=request.resend,
        created_by=who,
        runner=runner,
    )


def _options(*, combined_pdf: bool = False, channel: str | None = None, resend: bool = False):
    """What a communications request over invoices may ask for: its channel (e-mail unless
    given), and sending again what was sent before."""
    if combined_pdf:
        raise BatchRequestError("a combined PDF applies to documents jobs")
    channel = channel or EMAIL
    if channel not in DELIVERY_CHANNELS:
        raise BatchRequestError(
            f"channel must be one of {', '.join(DELIVERY_CHANNELS)}, not {channel!r}"
        )
    return {"channel": channel, "resend": True} if resend else {"channel": channel}


def _asset(engine: Engine, job: BatchJob) -> str:
    """The asset a job's sending is recorded on: e-mails on invoice_emails, the rest on
    invoice_text_messages."""
    channel = request_of(engine, job).get("channel") or EMAIL
    return "invoice_emails" if transport_of(channel).form == "email" else "invoice_text_messages"


COMMUNICATIONS_KIND = JobKind(
    name=COMMUNICATIONS,
    runs=Chunks(
        lambda engine, resources, run_id: communications_work(
            engine,
            lambda name: open_channel(name, resources),
            store=resources.document_store,
            run_id=run_id,
        ),
        prepared_by=KindName.DOCUMENTS,
    ),
    requests=Requests(config=_request, enqueue=_enqueue, options=_options),
    reading=Reading(
        unit="invoices",
        done="sent",
        stuck_left="Messages sent stay; the invoices not reached were not sent",
        asset=_asset,
    ),
    # every invoice channel's resource: Peppol's too, for the invoices of customers on Peppol
    resource_keys=frozenset({"document_store", *resources_of(INVOICE_CHANNELS)}),
    refusals=((AlreadySending, lambda exc, job: already_sending_message(job.organization_slug)),),
    # e-mails (and text messages) wait on their provider's rate limit: the mail lane (issue 56)
    waits_on="mail",
)
