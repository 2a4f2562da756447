"""Entries of an organization's audit log: who did what (`action`) to which of its records
(`entity_type`, `entity_ids`), with what each entry says (`details`); written in the caller's
transaction, so the entries commit with the change they record or not at all."""

from __future__ import annotations

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
    """One entry for each of `entity_ids` (an id is kept as text), in one statement; at least
    one id."""
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
