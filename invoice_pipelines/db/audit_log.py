"""The organization's audit log (`audit_log`): who changed what, written in the transaction of
the change it records."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import audit_log


def record_audit_entries(
    conn: Connection,
    organization_id: int,
    who: str,
    action: str,
    entity_type: str,
    entity_ids: Iterable[object],
    details: dict,
) -> None:
    """Entries of the organization's audit log, in the caller's transaction (they commit with the
    change they record or not at all): who did what (`action`) to each of `entity_ids` (at least
    one; an id is kept as text) of `entity_type`, each saying `details`; one statement."""
    conn.execute(
        insert(audit_log),
        [
            {
                "organization_id": organization_id,
                "created_by": who,
                "action": action,
                "entity_type": entity_type,
                "entity_id": str(entity_id),
                "details": details,
            }
            for entity_id in entity_ids
        ],
    )


# A sealed row the retention path deletes is recorded so, one audit row per row, in the
# transaction that deletes it (audit/domain/sealed_records.py): the chain accepts only such a
# deletion. The tables the chain seals besides audit_log (a test holds this to the seal's list).
RETENTION_DELETED = "retention.deleted"
SEALED_TABLES = (
    "supplier_changes",
    "uploads",
    "sales_invoice_documents",
    "dunning_notices",
    "exports",
)


def record_retention_deletion(
    conn: Connection, organization_id: int, who: str, table: str, ids: Iterable[object], why: str
) -> None:
    """Record that the retention path deleted rows `ids` of the sealed `table` (none: nothing)."""
    ids = list(ids)
    if ids:
        record_audit_entries(
            conn, organization_id, who, RETENTION_DELETED, table, ids, {"why": why}
        )


POLICY_CHANGED = "policy_changed"
MAX_WHO, MAX_REASON = 255, 2000


def checked_who_and_why(by: object, reason: object, what: str) -> tuple[str, str]:
    """Who switches `what` (a money-path policy) and why, as the audit keeps them: blanks
    collapsed; a ValueError with one sentence when either is missing, holds a character nobody
    sees as written, or is longer than the audit keeps."""
    checked = []
    for value, option, limit in (
        (by, "who (--by NAME)", MAX_WHO),
        (reason, "why (--reason TEXT)", MAX_REASON),
    ):
        text = " ".join(str(value or "").split())
        if not text:
            raise ValueError(f"a switch of {what} names {option}; nothing was changed")
        if (
            any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cs") for c in text)
            or len(text) > limit
        ):
            raise ValueError(
                f"{option} of a switch of {what} must be visible characters, at most {limit}; "
                "nothing was changed"
            )
        checked.append(text)
    return checked[0], checked[1]


def record_policy_change(
    conn: Connection,
    organization_id: int,
    setting: str,
    before: object,
    after: object,
    *,
    by: str,
    reason: str,
) -> None:
    """A switch of a money-path policy (which suppliers a first invoice registers as confirmed,
    which documents are booked without a person) as the organization's audit keeps it, in the
    transaction of the switch: who, why, the setting before and after."""
    record_audit_entries(
        conn,
        organization_id,
        by,
        POLICY_CHANGED,
        "organization",
        [organization_id],
        {"setting": setting, "before": before, "after": after, "reason": reason},
    )
