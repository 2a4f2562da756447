"""Corrections of exported supplier invoices: EXPORTED -> VALIDATED, so the next export of their
month writes a new version with them (and says so in its notes)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import change_chosen
from invoice_pipelines.db.tables import audit_log
from invoice_pipelines.db.tenancy import tenant_transaction


def reopen_exported(
    engine: Engine,
    organization_id: int,
    document_ids: Sequence[int],
    *,
    reason: str,
    requested_by: str = "unknown",
) -> tuple[list[int], dict[int, str]]:
    """Move EXPORTED documents back to VALIDATED; returns (reopened, refused with reasons)."""
    with tenant_transaction(engine, organization_id, write=True) as conn:
        reopened, refused = change_chosen(
            conn, organization_id, document_ids, Status.EXPORTED, Status.VALIDATED, verb="reopened"
        )
        # one row per document asked for, naming it: what an auditor looks a document up by
        rows = [
            {
                "organization_id": organization_id,
                "created_by": requested_by,
                "action": "export.reopen",
                "entity_type": "incoming_invoice",
                "entity_id": str(doc_id),
                "details": {
                    "reason": reason,
                    "outcome": "reopened" if doc_id in reopened else refused.get(doc_id),
                },
            }
            for doc_id in dict.fromkeys([*reopened, *refused])
        ]
        if rows:
            conn.execute(insert(audit_log), rows)
    return reopened, refused
