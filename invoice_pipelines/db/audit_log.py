"""The organization's audit log (`audit_log`): who changed what, written in the transaction of
the change it records."""

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
