"""The `peppol` group of the UI: an organization's participants, the documents it sent and
received over Peppol with their reports, the checks for what was not delivered or not answered,
and the monthly counts an access point owes OpenPEPPOL. Read from our own records
(delivery/peppol_overview.py); sending is `invoice_emails`' (delivery/assets.py), receiving the
intake's (`invoice-pipelines peppol receive`).

- `peppol_participants`, `peppol_sent_documents`, `peppol_received_documents` (per
  organization): what they say, materialized from the UI whenever someone wants to look (they
  write nothing).
- `peppol_monthly_report` (organization x month): documents sent and received in a month, per
  document type and per country; the months are those the exports have (from
  INVOICE_PIPELINES_EXPORT_START_MONTH to the last complete month), and the access point's
  report for a month is the sum over its organizations' partitions of that month
  (`monthly_counts` without an organization gives it at once).
- `peppol_undelivered` and `peppol_unanswered` (WARN): across organizations, on their own
  timetable (`peppol_checks_job`, `peppol_checks_schedule`, hourly), as the other areas' checks.
"""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Definitions,
    MaterializeResult,
    MetadataValue,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    asset,
    multi_asset_check,
)

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.export_months import START_MONTH_SETTING
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.delivery.peppol_overview import (
    RECEIVED,
    SENT,
    SHOWN,
    UNANSWERED_AFTER,
    UNDELIVERED_AFTER,
    monthly_counts,
    participants,
    received_documents,
    sent_documents,
    unanswered,
    undelivered,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.database import Database
from invoice_pipelines.scheduled_checks import scheduled_checks
from invoice_pipelines.settings import env
from invoice_pipelines.tenants.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    organizations_partitions,
)
from invoice_pipelines.tenants.refusals import organization_or_refuse

GROUP = "peppol"
SENT_DOCUMENTS = "peppol_sent_documents"
RECEIVED_DOCUMENTS = "peppol_received_documents"
MONTH_DIMENSION = "month"

# a month is reported once it is over (the same months the exports have)
report_partitions = MultiPartitionsDefinition(
    {
        ORGANIZATIONS_PARTITIONS_NAME: organizations_partitions,
        MONTH_DIMENSION: MonthlyPartitionsDefinition(
            start_date=env(START_MONTH_SETTING), fmt="%Y-%m", end_offset=0
        ),
    }
)


def _counts(counter) -> MetadataValue:
    return MetadataValue.json(dict(sorted(counter.items())))


@asset(
    name="peppol_participants",
    partitions_def=organizations_partitions,
    group_name=GROUP,
    kinds={"python", "peppol"},
    owners=OWNERS,
    description="The organization's Peppol participant id (BT-34 of its Peppol BIS documents) "
    "and its customers' (BT-49): who of them is reachable on Peppol. Set on the organization and "
    "the customer; checked against OpenPEPPOL's EAS list and check digits before they are stored.",
)
def peppol_participants(context: AssetExecutionContext, database: Database):
    engine = database.get_engine()
    org = organization_or_refuse(engine, context.partition_key)
    with tenant_transaction(engine, org["id"]) as conn:
        found = participants(conn, org["id"])
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
    group_name=GROUP,
    kinds={"python", "peppol"},
    owners=OWNERS,
    description="The invoices and credit notes the organization sent over Peppol (invoice_emails "
    "sends them through the access point) with their sending reports: sent (the access point's "
    "accepted report, its AS4 message id), failed (the receiver's AS4 error, with the id), "
    "unknown (no answer: never sent again on its own), sending; and how many invoices of "
    "customers on Peppol went by e-mail, saying why.",
)
def peppol_sent_documents(context: AssetExecutionContext, database: Database):
    engine = database.get_engine()
    org = organization_or_refuse(engine, context.partition_key)
    with tenant_transaction(engine, org["id"]) as conn:
        found = sent_documents(conn, org["id"])
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
    group_name=GROUP,
    kinds={"python", "peppol"},
    owners=OWNERS,
    description="The documents the organization received over Peppol (forwarded by the access "
    "point to `invoice-pipelines peppol listen`, or handed to `peppol receive`: once per SBDH "
    "InstanceIdentifier), with the intake's status and class of each and the answer its sender "
    "has had: accepted (VALIDATED, EXPORTED), rejected by an Invoice Response over Peppol or by "
    "the supplier notice, or none yet.",
)
def peppol_received_documents(context: AssetExecutionContext, database: Database):
    engine = database.get_engine()
    org = organization_or_refuse(engine, context.partition_key)
    with tenant_transaction(engine, org["id"]) as conn:
        found = received_documents(conn, org["id"])
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


def _partition(key) -> tuple[str, str]:
    if not isinstance(key, MultiPartitionKey):
        key = report_partitions.get_partition_key_from_str(str(key))
    dims = key.keys_by_dimension
    return dims[ORGANIZATIONS_PARTITIONS_NAME], dims[MONTH_DIMENSION]


@asset(
    name="peppol_monthly_report",
    partitions_def=report_partitions,
    deps=[SENT_DOCUMENTS, RECEIVED_DOCUMENTS],
    group_name=GROUP,
    kinds={"python", "peppol"},
    owners=OWNERS,
    description="One month of the organization's Peppol traffic as an access point reports it to "
    "OpenPEPPOL (in the style of its Transaction Statistics and End User Statistics reports): "
    "documents sent (accepted by the access point) and received, per document type and per "
    "country (sender's C1, receiver's C4), and the distinct participants at the other end. "
    "The access point's report is the sum over the month's organizations.",
)
def peppol_monthly_report(context: AssetExecutionContext, database: Database):
    slug, month = _partition(context.partition_key)
    engine = database.get_engine()
    org = organization_or_refuse(engine, slug)
    with tenant_transaction(engine, org["id"]) as conn:
        counts = monthly_counts(conn, month, org["id"])
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


def _hours(after) -> int:
    return int(after.total_seconds() // 3600)


@multi_asset_check(
    specs=[
        AssetCheckSpec(
            "peppol_undelivered",
            asset=SENT_DOCUMENTS,
            description=f"Scheduled check (hourly, peppol_checks_schedule, all organizations): "
            f"no document sent over Peppol is without the access point's accepted report "
            f"{_hours(UNDELIVERED_AFTER)} hour(s) after it was recorded (still sending, unknown "
            "or failed, and no later attempt accepted). WARN: an unknown one is never sent "
            "again on its own; someone looks it up with the AS4 message id and decides.",
        ),
        AssetCheckSpec(
            "peppol_unanswered",
            asset=RECEIVED_DOCUMENTS,
            description=f"Scheduled check (hourly, peppol_checks_schedule, all organizations): "
            f"every document received over Peppol has had an answer {_hours(UNANSWERED_AFTER)} "
            "hours after it arrived: accepted (VALIDATED, EXPORTED) or rejected with its "
            "notice sent. WARN with those held for an unknown receiver, still in the intake or "
            "in review, or rejected without a notice.",
        ),
    ],
    description="The Peppol checks over every organization: undelivered and unanswered documents.",
)
def peppol_audit(context: AssetCheckExecutionContext, database: Database):
    with system_transaction(database.get_engine()) as conn:
        late = undelivered(conn)
        waiting = unanswered(conn)
    by_org: dict[str, int] = {}
    for row in late:
        by_org[row.organization] = by_org.get(row.organization, 0) + 1
    yield AssetCheckResult(
        check_name="peppol_undelivered",
        asset_key=SENT_DOCUMENTS,
        passed=not late,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "undelivered": MetadataValue.int(len(late)),
            "by_organization": MetadataValue.json(by_org),
            "documents": MetadataValue.md(
                markdown_table(
                    (
                        "organization",
                        "invoice",
                        "attempt",
                        "receiver",
                        "outcome",
                        "since",
                        "AS4 id",
                    ),
                    (
                        (
                            r.organization,
                            r.invoice_number,
                            r.sequence,
                            r.recipient,
                            r.status,
                            r.since.isoformat(timespec="minutes"),
                            r.transport_message_id or "",
                        )
                        for r in late
                    ),
                    limit=SHOWN,
                )
            ),
        },
        description=f"{len(late)} document(s) sent over Peppol without an accepted report",
    )
    held: dict[str, int] = {}
    for row in waiting:
        name = row.organization or "(no organization)"
        held[name] = held.get(name, 0) + 1
    yield AssetCheckResult(
        check_name="peppol_unanswered",
        asset_key=RECEIVED_DOCUMENTS,
        passed=not waiting,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "unanswered": MetadataValue.int(len(waiting)),
            "by_organization": MetadataValue.json(held),
            "documents": MetadataValue.md(
                markdown_table(
                    ("organization", "InstanceIdentifier", "sender", "received", "why"),
                    (
                        (
                            r.organization or "",
                            r.instance_identifier,
                            r.sender or "",
                            r.received_at.isoformat(timespec="minutes"),
                            r.why,
                        )
                        for r in waiting
                    ),
                    limit=SHOWN,
                )
            ),
        },
        description=f"{len(waiting)} document(s) received over Peppol without an answer",
    )


peppol_checks_job, peppol_checks_schedule = scheduled_checks(
    "peppol_checks",
    [peppol_audit],
    cron="20 * * * *",
    job_description="Checks every organization's Peppol documents: sent ones without the access "
    "point's accepted report, received ones without an answer.",
    schedule_description="Hourly at :20 (UTC): Peppol documents undelivered or unanswered across "
    "all organizations.",
)

defs = Definitions(
    assets=[
        peppol_participants,
        peppol_sent_documents,
        peppol_received_documents,
        peppol_monthly_report,
    ],
    asset_checks=[peppol_audit],
    jobs=[peppol_checks_job],
    schedules=[peppol_checks_schedule],
)
