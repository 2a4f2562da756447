"""Status changes of incoming invoices, the lifecycle's one door: what the intake and the exports
both move documents through (the intake parses and reviews them, the export books them and a
correction reopens them).

Every status change goes through `change_status` (or, for many documents in one statement,
`change_status_where`): it checks the lifecycle, and its UPDATE only succeeds when the row still
has the version (and status) the caller saw, so of two concurrent writers exactly one wins and the
other gets `StaleDocument` instead of silently overwriting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.lifecycle import Status, check_transition
from invoice_pipelines.db.tables import incoming_invoices, processing_errors
from invoice_pipelines.db.types import utcnow


class StaleDocument(RuntimeError):
    """Someone else changed the document since it was read; re-read and decide again."""


class DocumentNotFound(LookupError):
    pass


@dataclass(frozen=True)
class DocumentRef:
    id: int
    organization_id: int
    status: Status
    processing_version: int


@dataclass(frozen=True)
class ErrorRecord:
    stage: str
    message: str
    rule_id: str | None = None
    severity: str = "error"


def load_refs(
    conn: Connection, organization_id: int, document_ids: Iterable[int]
) -> dict[int, DocumentRef]:
    ids = sorted(set(int(i) for i in document_ids))
    if not ids:
        return {}
    rows = conn.execute(
        select(
            incoming_invoices.c.id,
            incoming_invoices.c.organization_id,
            incoming_invoices.c.status,
            incoming_invoices.c.processing_version,
        ).where(
            incoming_invoices.c.organization_id == organization_id, incoming_invoices.c.id.in_(ids)
        )
    )
    return {
        r.id: DocumentRef(r.id, r.organization_id, Status(r.status), r.processing_version)
        for r in rows
    }


def change_status(
    conn: Connection,
    ref: DocumentRef,
    target: Status | str | Sequence[Status | str],
    *,
    fields: dict | None = None,
    errors: Sequence[ErrorRecord] = (),
    now: datetime | None = None,
) -> DocumentRef:
    """Move a document to `target`: lifecycle check, optimistic lock, timestamps, error rows.

    `target` may be a path of several statuses (e.g. PARSED then VALIDATED): every step is checked
    against the lifecycle and counts as a version, but the row is written once. Nothing is written
    when the row no longer has the version and status the caller saw (StaleDocument).
    """
    path = [target] if isinstance(target, (str, Status)) else list(target)
    if not path:
        raise ValueError("change_status needs at least one target status")
    current = ref.status
    for step in path:
        current = check_transition(current, step)
    now = now or utcnow()
    new_version = ref.processing_version + len(path)
    result = conn.execute(
        update(incoming_invoices)
        .where(
            incoming_invoices.c.id == ref.id,
            incoming_invoices.c.organization_id == ref.organization_id,
            incoming_invoices.c.processing_version == ref.processing_version,
            incoming_invoices.c.status == ref.status.value,
        )
        .values(
            status=current.value,
            processing_version=new_version,
            last_processed_at=now,
            status_changed_at=now,
            updated_at=now,
            **(fields or {}),
        )
    )
    if result.rowcount != 1:
        found = conn.execute(
            select(incoming_invoices.c.status, incoming_invoices.c.processing_version).where(
                incoming_invoices.c.id == ref.id
            )
        ).first()
        if found is None:
            raise DocumentNotFound(f"incoming invoice {ref.id} does not exist")
        raise StaleDocument(
            f"incoming invoice {ref.id} changed meanwhile: expected {ref.status} v{ref.processing_version}, "
            f"found {found.status} v{found.processing_version}"
        )
    if errors:
        conn.execute(insert(processing_errors), error_rows(ref, new_version, errors))
    return DocumentRef(ref.id, ref.organization_id, current, new_version)


def change_chosen(
    conn: Connection,
    organization_id: int,
    document_ids: Iterable[int],
    source: Status,
    target: Status,
    *,
    verb: str,
) -> tuple[list[int], dict[int, str]]:
    """`change_status` source -> target for documents a person chose: (moved ids, refused ids with
    the reason), e.g. a retry (FAILED -> CREATED) or a correction (EXPORTED -> VALIDATED)."""
    refs = load_refs(conn, organization_id, document_ids)
    moved: list[int] = []
    refused: dict[int, str] = {}
    for doc_id in sorted(set(int(i) for i in document_ids)):
        ref = refs.get(doc_id)
        if ref is None:
            refused[doc_id] = "no such document in this organization"
        elif ref.status != source:
            refused[doc_id] = f"status is {ref.status}; only {source} documents can be {verb}"
        else:
            change_status(conn, ref, target)
            moved.append(doc_id)
    return moved, refused


def change_status_where(
    conn: Connection,
    organization_id: int,
    where,
    source: Status,
    target: Status,
    expected: int | None,
    *,
    now: datetime | None = None,
) -> int:
    """`change_status` for many documents in one UPDATE: those of the organization that match
    `where` and have status `source` move to `target`, each one version on.

    For callers that read the documents in the same snapshot transaction
    (`tenant_transaction(snapshot=True)` on PostgreSQL, the write lock on SQLite): a document
    someone changed since the snapshot is not silently overwritten (PostgreSQL refuses the UPDATE,
    SQLSTATE 40001), and one that appeared since is not touched. If fewer or more than `expected`
    documents match, nothing is kept: StaleDocument, and the caller's transaction rolls back.
    `expected=None`: the caller compares the count returned before it commits.
    """
    check_transition(source, target)
    if expected == 0:
        return 0
    now = now or utcnow()
    result = conn.execute(
        update(incoming_invoices)
        .where(
            incoming_invoices.c.organization_id == organization_id,
            incoming_invoices.c.status == source.value,
            where,
        )
        .values(
            status=target.value,
            processing_version=incoming_invoices.c.processing_version + 1,
            last_processed_at=now,
            status_changed_at=now,
            updated_at=now,
        )
    )
    if expected is not None and result.rowcount != expected:
        raise StaleDocument(
            f"{result.rowcount} documents were {source} where {expected} were expected: "
            "someone changed them meanwhile"
        )
    return result.rowcount


def error_rows(ref: DocumentRef, version: int, errors: Sequence[ErrorRecord]) -> list[dict]:
    return [
        {
            "organization_id": ref.organization_id,
            "incoming_invoice_id": ref.id,
            "processing_version": version,
            "stage": e.stage,
            "rule_id": e.rule_id,
            "severity": e.severity,
            "message": e.message,
        }
        for e in errors
    ]
