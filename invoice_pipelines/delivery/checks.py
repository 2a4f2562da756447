"""The delivery area's asset checks: the Peppol checks over every organization,
`peppol_undelivered` and `peppol_unanswered` (WARN), evaluated on their own timetable
(`peppol_checks_job`, `peppol_checks_schedule`, hourly), as the other areas' checks."""

from collections import Counter
from collections.abc import Iterable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    ResourceParam,
    multi_asset_check,
)
from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.delivery.assets import RECEIVED_DOCUMENTS, SENT_DOCUMENTS
from invoice_pipelines.delivery.domain.peppol_overview import (
    SHOWN,
    UNANSWERED_AFTER,
    UNDELIVERED_AFTER,
    unanswered,
    undelivered,
)
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.scheduled_checks import scheduled_checks


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
    # each check guards one asset: materializing peppol_sent_documents alone (the UI's
    # Materialize) runs its check without the other asset's (issue 73)
    can_subset=True,
)
def peppol_audit(context: AssetCheckExecutionContext, system_database: ResourceParam[Engine]):
    selected = {key.name for key in context.selected_asset_check_keys}
    if "peppol_undelivered" in selected:
        yield _undelivered_result(system_database)
    if "peppol_unanswered" in selected:
        yield _unanswered_result(system_database)


def _undelivered_result(system: Engine) -> AssetCheckResult:
    with system_transaction(system) as conn:
        late = undelivered(conn)
    return _warning(
        "peppol_undelivered",
        SENT_DOCUMENTS,
        "undelivered",
        [row.organization for row in late],
        ("organization", "invoice", "attempt", "receiver", "outcome", "since", "AS4 id"),
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
        f"{len(late)} document(s) sent over Peppol without an accepted report",
    )


def _unanswered_result(system: Engine) -> AssetCheckResult:
    with system_transaction(system) as conn:
        waiting = unanswered(conn)
    return _warning(
        "peppol_unanswered",
        RECEIVED_DOCUMENTS,
        "unanswered",
        [row.organization or "(no organization)" for row in waiting],
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
        f"{len(waiting)} document(s) received over Peppol without an answer",
    )


def _warning(
    check_name: str,
    asset_key: str,
    counted: str,
    organizations: list[str],
    columns: tuple[str, ...],
    rows: Iterable[tuple],
    description: str,
) -> AssetCheckResult:
    """A WARN when there is any document (one organization each in `organizations`): how many,
    how many an organization, and the first of them as a table."""
    return AssetCheckResult(
        check_name=check_name,
        asset_key=asset_key,
        passed=not organizations,
        severity=AssetCheckSeverity.WARN,
        metadata={
            counted: MetadataValue.int(len(organizations)),
            "by_organization": MetadataValue.json(dict(Counter(organizations))),
            "documents": MetadataValue.md(markdown_table(columns, rows, limit=SHOWN)),
        },
        description=description,
    )


peppol_checks_job, peppol_checks_schedule = scheduled_checks(
    "peppol_checks",
    [peppol_audit],
    cron="20 * * * *",
    job_description="Checks every organization's Peppol documents: sent ones without the access "
    "point's accepted report, received ones without an answer.",
    schedule_description="Hourly at :20: Peppol documents undelivered or unanswered across "
    "all organizations.",
)
