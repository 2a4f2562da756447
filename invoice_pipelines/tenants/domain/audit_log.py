"""One entry of an organization's audit log: who did what (`action`) to which of its records
(`entity_type`, `entity_id`), with what the entry says (`details`); written in the caller's
transaction, so the entry commits with the change it records or not at all."""

from __future__ import annotations

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import audit_log


def record_audit_entry(
    conn: Connection,
    organization_id: int,
    who: str,
    action: str,
    entity: tuple[str, object],
    details: dict,
) -> None:
    """`entity`: the record's type and id (an id is kept as text)."""
    entity_type, entity_id = entity
    conn.execute(
        insert(audit_log).values(
            organization_id=organization_id,
            created_by=who,
            action=action,
            entity_type=entity_type,
            entity_id=str(entity_id),
            details=details,
        )
    )
