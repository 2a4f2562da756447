"""Status changes of incoming invoices, the lifecycle's one door: what the intake and the exports
both move documents through (the intake parses and reviews them, the export books them and a
correction reopens them).

Every status change goes through `change_status` (or, for many documents in one statement,
`change_status_where`): it checks the lifecycle, and its UPDATE only succeeds when the row still
has the version (and status) the caller saw, so of two concurrent writers exactly one wins and the
other gets `StaleDocument` instead of silently overwriting.

The working sets are found without an index on `status` (migration 0048, so that the export's
VALIDATED -> EXPORTED update is heap-only): `validated` through `incoming_validated`, which the
database keeps (one row per VALIDATED document), and `in_intake` through the generated column
`intake_status` (the status while the intake works on a document, NULL once accepted).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, insert, select, update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.lifecycle import Status, check_transition
from invoice_pipelines.db.tables import (
    incoming_invoices,
    incoming_validated,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.types import utcnow

ACCEPTED = frozenset({Status.VALIDATED.value, Status.EXPORTED.value})


def validated(documents=incoming_invoices, organization_id: int | None = None):
    """SQL: the document (a row of `documents`, the table or an alias of it) is VALIDATED, found
    through `incoming_validated` (indexed by organization; a small table: what waits for an
    export) instead of an index on `status`. `organization_id`: the organization's rows of it
    only (in the system scope, without it: every organization's)."""
    v = incoming_validated.c
    waiting = select(v.incoming_invoice_id)
    if organization_id is not None:
        waiting = waiting.where(v.organization_id == organization_id)
    return and_(documents.c.status == Status.VALIDATED.value, documents.c.id.in_(waiting))


def in_intake(statuses: Iterable[Status | str], documents=incoming_invoices):
    """SQL: the document's status is one of `statuses`, statuses the intake works on (not VALIDATED
    or EXPORTED), found through the index on `intake_status`."""
    wanted = sorted({str(s) for s in statuses})
    if ACCEPTED & set(wanted):
        raise ValueError(f"{wanted}: VALIDATED and EXPORTED are not in intake_status")
    c = documents.c
    # IS NOT NULL spelled out: SQLite uses a partial index only for a WHERE that names its term
    return and_(c.intake_status.is_not(None), c.intake_status.in_(wanted))


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


def upload_sources(
    conn: Connection, organization_id: int, ids: Sequence[int]
) -> dict[int, tuple[str | None, str | None, int | None]]:
    """Where each document's original is (storage key, filename, size in bytes; all None for a
    document without an upload), by document id: what the intake reads the originals from."""
    if not ids:
        return {}
    docs = incoming_invoices.c
    rows = conn.execute(
        select(docs.id, uploads.c.storage_key, uploads.c.filename, uploads.c.size_bytes)
        .select_from(incoming_invoices.outerjoin(uploads, uploads.c.id == docs.upload_id))
        .where(docs.organization_id == organization_id, docs.id.in_(ids))
    )
    return {r.id: (r.storage_key, r.filename, r.size_bytes) for r in rows}


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
