"""The delivery area's assets: invoice_emails, downstream of sales_invoice_documents, per
organization, and invoice_text_messages, the invoices announced by SMS or WhatsApp.

Materializing an organization's partition e-mails the invoices whose documents exist and that
were never sent (or the invoices the config names; failed ones again with `retry_failed`; any
again, deliberately, with `resend`). Nothing sends on its own: sending is a decision, taken in
the launchpad, by the CLI, or by a batch request that asks for it. The e-mail run sends the
invoices of customers on Peppol over Peppol, where the receiver takes them (delivery/domain/peppol.py),
and its metadata counts each channel.

The `peppol` group of the UI, read from our own records (delivery/domain/peppol_overview.py): sending is
`invoice_emails`', receiving the intake's (`invoice-pipelines peppol receive`).

- `peppol_participants`, `peppol_sent_documents`, `peppol_received_documents` (per
  organization): what they say, materialized from the UI whenever someone wants to look (they
  write nothing).
- `peppol_monthly_report` (organization x month, delivery/partitions.py): documents sent and
  received in a month, per document type and per country; the months are those the exports have
  (from INVOICE_PIPELINES_EXPORT_START_MONTH to the last complete month), and the access point's
  report for a month is the sum over its organizations' partitions of that month
  (`monthly_counts` without an organization gives it at once).

Its checks, `peppol_undelivered` and `peppol_unanswered`, are in checks.py.
"""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    MultiPartitionKey,
    ResourceParam,
    asset,
)
from pydantic import Field
from sqlalchemy import Connection, Engine

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.channels import EMAIL, PEPPOL
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.delivery.domain.peppol_overview import (
    RECEIVED,
    SENT,
    SHOWN,
    monthly_counts,
    participants,
    received_documents,
    sent_documents,
)
from invoice_pipelines.delivery.domain.pipeline import (
    AlreadySending,
    already_sending_message,
    send_invoices,
)
from invoice_pipelines.delivery.partitions import MONTH_DIMENSION, report_partitions
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
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
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.messaging.channels import (
    channels_of_form,
    open_channel,
    resources_of,
)
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import PeppolTransport

CHECK = "no_unknown_deliveries"
PEPPOL_GROUP = "peppol"
# what the Peppol reports say of their upstream assets, which the UI calls "not materialized" on a
# fresh installation (issue 85): a report reads what is recorded, whenever it is materialized
REPORT_NOTE = (
    " A report of what the database records: it reads no output of its upstream assets, so it "
    "may be materialized whether or not they are (the UI's note that they are not materialized "
    "changes nothing here)."
)
# what the Peppol assets share
PEPPOL_ASSET = dict(group_name=PEPPOL_GROUP, kinds={"python", "peppol"}, owners=OWNERS)
SENT_DOCUMENTS = "peppol_sent_documents"
RECEIVED_DOCUMENTS = "peppol_received_documents"
# the channels invoice_text_messages sends over: those whose messages are short texts
TEXT_CHANNELS = channels_of_form("text")


# what a plain Materialize of a delivery asset says to send (lib/refusals.py)
SEND = "send messages"
SENDING = f'Messages sent cannot be taken back: a plain Materialize runs only with the config confirm: "{SEND}".'


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
    confirm: str = Field(default="", description=f'"{SEND}". {CONFIRM_HELP}')


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


def _deliver(context, config, databases, document_store, channel, peppol=None):
    """What both delivery assets do: check the config, send over `channel` (and `peppol` for the
    invoices of customers on Peppol), log what was not sent, and the metadata of the run.
    `databases`: the runtime and the system engine."""
    job = "send_invoices_job" if channel.name == EMAIL else "send_text_messages_job"
    confirmed_or_refuse(context, config.confirm, SEND, what="sends messages", job=job)
    if config.resend and not config.invoice_ids:
        raise refused("resend needs the invoice_ids to send again.")
    engine, system = databases
    org = partition_organization(system, context)
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
        raise refused(already_sending_message(org.slug)) from None
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
    # waits on the mail provider's rate limit: a lane of its own (lib/run_coordinator.py)
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
    "e-mail. " + SENDING,
)
def invoice_emails(
    context: AssetExecutionContext,
    config: EmailConfig,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
    document_store: ResourceParam[Files],
    mailer: ResourceParam[Smtp],
    peppol_access_point: ResourceParam[PeppolTransport],
):
    channel = open_channel(EMAIL, SimpleNamespace(mailer=mailer))
    peppol = open_channel(PEPPOL, SimpleNamespace(peppol_access_point=peppol_access_point))
    databases = (database, system_database)
    summary, metadata = _deliver(context, config, databases, document_store, channel, peppol)
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
    required_resource_keys={
        "database",
        "system_database",
        "document_store",
        *resources_of(TEXT_CHANNELS),
    },
    description="Sales invoices announced by SMS or WhatsApp (amount, due date, payment "
    "reference) through the messaging provider, at most once per invoice and channel, recorded "
    "like the e-mails (the phone number is checked for E.164 before anything is sent). " + SENDING,
)
def invoice_text_messages(context: AssetExecutionContext, config: TextConfig):
    if config.channel not in TEXT_CHANNELS:
        raise refused(f"channel must be {' or '.join(TEXT_CHANNELS)}, not {config.channel!r}.")
    resources = context.resources
    channel = open_channel(config.channel, resources)
    databases = (resources.database, resources.system_database)
    _, metadata = _deliver(context, config, databases, resources.document_store, channel)
    metadata["channel"] = config.channel
    return MaterializeResult(metadata=metadata)


def _counts(counter) -> MetadataValue:
    return MetadataValue.json(dict(sorted(counter.items())))


@asset(
    name="peppol_participants",
    partitions_def=organizations_partitions,
    **PEPPOL_ASSET,
    description="The organization's Peppol participant id (BT-34 of its Peppol BIS documents) "
    "and its customers' (BT-49): who of them is reachable on Peppol. Set on the organization and "
    "the customer; checked against OpenPEPPOL's EAS list and check digits before they are stored.",
)
def peppol_participants(
    context: AssetExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    found = participants(database, partition_organization(system_database, context))
    return MaterializeResult(
        metadata={
            "organization_participant": MetadataValue.text(found.organization or "not on Peppol"),
            "customers": MetadataValue.int(found.customers),
            "customers_on_peppol": MetadataValue.int(len(found.on_peppol)),
            "participants": MetadataValue.md(
                markdown_table(("customer", "name", "participant id"), found.on_peppol, limit=SHOWN)
            ),
        }
    )


@asset(
    name=SENT_DOCUMENTS,
    partitions_def=organizations_partitions,
    deps=["invoice_emails", "peppol_participants"],
    **PEPPOL_ASSET,
    description="The invoices and credit notes the organization sent over Peppol (invoice_emails "
    "sends them through the access point) with their sending reports: sent (the access point's "
    "accepted report, its AS4 message id), failed (the receiver's AS4 error, with the id), "
    "unknown (no answer: never sent again on its own), sending; and how many invoices of "
    "customers on Peppol went by e-mail, saying why." + REPORT_NOTE,
)
def peppol_sent_documents(
    context: AssetExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    found = _read(database, system_database, context, sent_documents)
    table = markdown_table(
        ("invoice", "attempt", "receiver", "outcome", "AS4 message id", "sent at", "report"),
        (
            (
                number,
                sequence,
                recipient,
                status,
                message_id or "",
                sent_at.isoformat(timespec="seconds") if sent_at else "",
                (error or "")[:200],
            )
            for number, sequence, recipient, status, message_id, sent_at, error in found.rows
        ),
        align="lr",
        limit=SHOWN,
    )
    return MaterializeResult(
        metadata={
            "deliveries": MetadataValue.int(sum(found.by_status.values())),
            **{
                status: MetadataValue.int(found.by_status.get(status, 0))
                for status in ("sent", "failed", "unknown", "sending")
            },
            "sent_by_document_type": _counts(found.by_type),
            "by_email_instead": MetadataValue.int(found.fallbacks),
            "newest": MetadataValue.md(table),
        }
    )


@asset(
    name=RECEIVED_DOCUMENTS,
    partitions_def=organizations_partitions,
    deps=["incoming_invoices", "peppol_participants"],
    **PEPPOL_ASSET,
    description="The documents the organization received over Peppol (forwarded by the access "
    "point to `invoice-pipelines peppol listen`, or handed to `peppol receive`: once per SBDH "
    "InstanceIdentifier), with the intake's status and class of each and the answer its sender "
    "has had: accepted (VALIDATED, EXPORTED), rejected by an Invoice Response over Peppol or by "
    "the supplier notice, or none yet." + REPORT_NOTE,
)
def peppol_received_documents(
    context: AssetExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    found = _read(database, system_database, context, received_documents)
    table = markdown_table(
        ("InstanceIdentifier", "sender", "type", "number", "status", "class", "answer"),
        found.rows,
        limit=SHOWN,
    )
    return MaterializeResult(
        metadata={
            "received": MetadataValue.int(sum(found.by_state.values())),
            "by_status": _counts(found.by_status),
            "by_answer": _counts(found.by_answer),
            "newest": MetadataValue.md(table),
        }
    )


def _read(
    engine: Engine,
    system: Engine,
    context: AssetExecutionContext,
    read: Callable[[Connection, int], Any],
    slug_of: Callable[[str], str] | None = None,
) -> Any:
    """`read(conn, organization_id)` in the transaction of the partition's organization (refused
    when unknown; `slug_of` as `partition_organization`'s)."""
    org = partition_organization(system, context, slug_of=slug_of)
    with tenant_transaction(engine, org.id) as conn:
        return read(conn, org.id)


def _partition(key) -> tuple[str, str]:
    if not isinstance(key, MultiPartitionKey):
        key = report_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims[ORGANIZATIONS_PARTITIONS_NAME], dims[MONTH_DIMENSION]


@asset(
    name="peppol_monthly_report",
    partitions_def=report_partitions,
    deps=[SENT_DOCUMENTS, RECEIVED_DOCUMENTS],
    **PEPPOL_ASSET,
    description="One month of the organization's Peppol traffic as an access point reports it to "
    "OpenPEPPOL (in the style of its Transaction Statistics and End User Statistics reports): "
    "documents sent (accepted by the access point) and received, per document type and per "
    "country (sender's C1, receiver's C4), and the distinct participants at the other end. "
    "The access point's report is the sum over the month's organizations." + REPORT_NOTE,
)
def peppol_monthly_report(
    context: AssetExecutionContext,
    database: ResourceParam[Engine],
    system_database: ResourceParam[Engine],
):
    month = _partition(context.partition_key)[1]
    counts = _read(
        database,
        system_database,
        context,
        lambda conn, org_id: monthly_counts(conn, month, org_id),
        slug_of=lambda key: _partition(key)[0],
    )
    rows = sorted(counts.rows.items())
    return MaterializeResult(
        metadata={
            "month": MetadataValue.text(month),
            "sent": MetadataValue.int(counts.total(SENT)),
            "received": MetadataValue.int(counts.total(RECEIVED)),
            "sent_by_document_type": MetadataValue.json(counts.by(SENT, 1)),
            "received_by_document_type": MetadataValue.json(counts.by(RECEIVED, 1)),
            "sent_by_receiver_country": MetadataValue.json(counts.by(SENT, 3)),
            "received_by_sender_country": MetadataValue.json(counts.by(RECEIVED, 2)),
            "receivers": MetadataValue.int(counts.receivers),
            "senders": MetadataValue.int(counts.senders),
            "counts": MetadataValue.md(
                markdown_table(
                    ("direction", "document type", "C1 country", "C4 country", "documents"),
                    ((*key, n) for key, n in rows),
                    align="llllr",
                )
                if rows
                else "(no Peppol documents this month)"
            ),
        }
    )
