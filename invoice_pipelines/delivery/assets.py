"""The delivery area's assets: invoice_emails, downstream of sales_invoice_documents, per
organization, and invoice_text_messages, the invoices announced by SMS or WhatsApp.

Materializing an organization's partition e-mails the invoices whose documents exist and that
were never sent (or the invoices the config names; failed ones again with `retry_failed`; any
again, deliberately, with `resend`). Nothing sends on its own: sending is a decision, taken in
the launchpad, by the CLI, or by a batch request that asks for it. The e-mail run sends the
invoices of customers on Peppol over Peppol, where the receiver takes them (delivery/peppol.py),
and its metadata counts each channel.
"""

from types import SimpleNamespace

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.channels import EMAIL, PEPPOL
from invoice_pipelines.delivery.pipeline import (
    AlreadySending,
    already_sending_message,
    send_invoices,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.channels import channels_of_form, open_channel, resources_of
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.file_stores import FileStore
from invoice_pipelines.resources.mail import SmtpMailer
from invoice_pipelines.resources.peppol import PeppolAccessPoint
from invoice_pipelines.tenants.partitions import organizations_partitions, who_asked
from invoice_pipelines.tenants.refusals import organization_or_refuse, refused

CHECK = "no_unknown_deliveries"
# the channels invoice_text_messages sends over: those whose messages are short texts
TEXT_CHANNELS = channels_of_form("text")


class EmailConfig(Config):
    invoice_ids: list[int] = Field(
        default_factory=list,
        description="Sales invoice ids to send (history too); empty: every invoice with "
        "documents that was never sent by e-mail, history left out.",
    )
    retry_failed: bool = Field(default=False, description="Send failed deliveries again.")
    resend: bool = Field(
        default=False,
        description="Send the given invoices again although they were sent (needs invoice_ids).",
    )
    max_per_second: float = Field(default=50.0, gt=0, description="Messages per second at most.")
    requested_by: str = Field(default="", description="Who asked for it (kept with each delivery).")


def _table(items: dict[int, str], numbers: dict[int, str], limit: int = 50) -> str:
    return markdown_table(
        ("invoice id", "number", "reason"),
        (
            (invoice_id, numbers.get(invoice_id, ""), reason)
            for invoice_id, reason in sorted(items.items())
        ),
        align="r",
        limit=limit,
    )


def _deliver(context, config, database, document_store, channel, peppol=None):
    """What both delivery assets do: check the config, send over `channel` (and `peppol` for the
    invoices of customers on Peppol), log what was not sent, and the metadata of the run."""
    if config.resend and not config.invoice_ids:
        raise refused("resend needs the invoice_ids to send again.")
    engine = database.get_engine()
    org = organization_or_refuse(engine, context.partition_key)
    try:
        summary = send_invoices(
            engine,
            document_store,
            channel,
            org,
            config.invoice_ids or None,
            retry_failed=config.retry_failed,
            resend=config.resend,
            max_per_second=config.max_per_second,
            requested_by=who_asked(config.requested_by, context.run.tags),
            run_id=context.run.run_id,
            peppol=peppol,
        )
    except AlreadySending:
        raise refused(already_sending_message(org["slug"])) from None
    for invoice_id, reason in summary.failed.items():
        context.log.warning(
            f"invoice {summary.numbers.get(invoice_id, invoice_id)} not sent: {reason}"
        )
    for invoice_id, message_id in summary.unknown.items():
        context.log.error(
            f"invoice {invoice_id}: {channel.name} {message_id} has an unknown outcome "
            "(not sent again)"
        )
    for invoice_id, reason in summary.fallbacks.items():
        context.log.info(
            f"invoice {summary.numbers.get(invoice_id, invoice_id)}: {reason}; "
            f"over {channel.name} instead"
        )
    channels = (channel.name, PEPPOL) if peppol is not None else (channel.name,)
    metadata = {
        "requested": MetadataValue.int(summary.requested),
        "sent": MetadataValue.int(summary.sent),
        # what went over each channel of the run (Peppol: customers on Peppol whose SMP
        # registration takes the document)
        **{f"sent_{name}": MetadataValue.int(summary.by_channel.get(name, 0)) for name in channels},
        "failed": MetadataValue.int(len(summary.failed)),
        "unknown": MetadataValue.int(len(summary.unknown)),
        "skipped": MetadataValue.int(len(summary.skipped)),
        "retries": MetadataValue.int(summary.retries),
        "seconds": MetadataValue.float(round(summary.seconds, 3)),
    }
    if summary.failed:
        metadata["failed_deliveries"] = MetadataValue.md(_table(summary.failed, summary.numbers))
    if summary.unknown:
        metadata["unknown_deliveries"] = MetadataValue.md(_table(summary.unknown, summary.numbers))
    if peppol is not None:
        metadata["peppol_fallbacks"] = MetadataValue.int(len(summary.fallbacks))
    if summary.fallbacks:
        metadata["not_over_peppol"] = MetadataValue.md(_table(summary.fallbacks, summary.numbers))
    return summary, metadata


@asset(
    name="invoice_emails",
    partitions_def=organizations_partitions,
    deps=["sales_invoice_documents"],
    group_name="delivery",
    kinds={"python", "email", "peppol"},
    owners=OWNERS,
    # the channels it sends over (its materializations count each: sent_email, sent_peppol)
    metadata={"channels": "email, peppol"},
    # waits on the mail provider's rate limit: a lane of its own (tenants/run_coordinator.py)
    pool="mail",
    check_specs=[
        AssetCheckSpec(
            CHECK,
            asset="invoice_emails",
            description="Warns when e-mails of this organization have an unknown outcome (a "
            "sending run died while they were under way): someone has to look, they are not "
            "sent again on their own.",
        )
    ],
    description="Sales invoices sent by e-mail (PDF with the e-invoice inside, XRechnung where "
    "the customer receives it), or over Peppol (the Peppol BIS document through the access "
    "point) to customers on Peppol whose SMP registration takes it, at most once per invoice: "
    "each delivery is recorded before the message leaves. Records sent (per channel), failed "
    "(with the reason) and unknown deliveries, and why invoices of customers on Peppol went by "
    "e-mail.",
)
def invoice_emails(
    context: AssetExecutionContext,
    config: EmailConfig,
    database: Database,
    document_store: FileStore,
    mailer: SmtpMailer,
    peppol_access_point: PeppolAccessPoint,
):
    channel = open_channel(EMAIL, SimpleNamespace(mailer=mailer))
    peppol = open_channel(PEPPOL, SimpleNamespace(peppol_access_point=peppol_access_point))
    summary, metadata = _deliver(context, config, database, document_store, channel, peppol)
    yield MaterializeResult(metadata=metadata)
    yield AssetCheckResult(
        check_name=CHECK,
        passed=not summary.unknown,
        severity=AssetCheckSeverity.WARN,
        description="No e-mail with an unknown outcome."
        if not summary.unknown
        else f"{len(summary.unknown)} e-mail(s) with an unknown outcome: see the table.",
    )


class TextConfig(EmailConfig):
    channel: str = Field(default=TEXT_CHANNELS[0], description=" or ".join(TEXT_CHANNELS))


@asset(
    name="invoice_text_messages",
    partitions_def=organizations_partitions,
    deps=["sales_invoice_documents"],
    group_name="delivery",
    kinds={"python"},
    owners=OWNERS,
    # waits on the text message provider's rate limit: a lane of its own
    pool="text_messages",
    # the database, the documents and the resources the text channels go out through
    required_resource_keys={"database", "document_store", *resources_of(TEXT_CHANNELS)},
    description="Sales invoices announced by SMS or WhatsApp (amount, due date, payment "
    "reference) through the messaging provider, at most once per invoice and channel, recorded "
    "like the e-mails (the phone number is checked for E.164 before anything is sent).",
)
def invoice_text_messages(context: AssetExecutionContext, config: TextConfig):
    if config.channel not in TEXT_CHANNELS:
        raise refused(f"channel must be {' or '.join(TEXT_CHANNELS)}, not {config.channel!r}.")
    resources = context.resources
    channel = open_channel(config.channel, resources)
    _, metadata = _deliver(context, config, resources.database, resources.document_store, channel)
    metadata["channel"] = config.channel
    return MaterializeResult(metadata=metadata)
