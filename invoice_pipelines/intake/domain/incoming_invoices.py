"""Incoming invoices in the database: registration of uploads, many status changes at once, stats.

The one status-change function, `change_status`, and the names that go with it live in
`db/incoming_status.py` (the exports move documents too); the intake's modules import them there.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, and_, func, insert, select
from sqlalchemy.engine import Connection, Engine

from invoice_pipelines.core.lifecycle import Status, check_transition
from invoice_pipelines.db.bulk import update_rows
from invoice_pipelines.db.incoming_status import (
    DocumentRef,
    ErrorRecord,
    StaleDocument,
    change_status,
    error_rows,
    in_intake,
    load_refs,
)
from invoice_pipelines.db.tables import (
    incoming_invoices,
    organizations,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow


@dataclass(frozen=True)
class Registration:
    upload_id: int
    document_id: int
    duplicate: bool


@dataclass(frozen=True)
class NewUpload:
    """A file to record (`register_uploads`)."""

    filename: str
    storage_key: str
    content_hash: str
    size_bytes: int
    content_type: str | None = None


def register_upload(
    conn: Connection,
    *,
    organization_id: int,
    filename: str,
    storage_key: str,
    content_hash: str,
    size_bytes: int,
    content_type: str | None = None,
    created_by: str = "upload-sensor",
) -> Registration:
    """Record an upload. The same bytes twice make one document; the second upload is a duplicate."""
    upload = NewUpload(filename, storage_key, content_hash, size_bytes, content_type)
    [registration] = register_uploads(
        conn, organization_id=organization_id, files=[upload], created_by=created_by
    )
    return registration


def register_uploads(
    conn: Connection,
    *,
    organization_id: int,
    files: Sequence[NewUpload],
    created_by: str = "upload-sensor",
) -> list[Registration]:
    """Record uploads, one Registration each in their order, as `register_upload` would one after
    another: bytes seen before (in the database or earlier in `files`) make a duplicate upload of
    that document, new bytes an upload and an UPLOADED document. A fixed number of statements
    whatever the number of files (the upload sensor registers up to a hundred at a time)."""
    if not files:
        return []
    earlier: dict[str, tuple[int, int | None]] = {}  # content hash -> (document id, upload id)
    ii = incoming_invoices
    hashes = sorted({f.content_hash for f in files})
    for row in _among(
        conn, organization_id, ii.c.content_hash, hashes, ii.c.id, ii.c.upload_id, ii.c.content_hash
    ):
        earlier.setdefault(row.content_hash, (row.id, row.upload_id))
    first_in_batch: dict[str, int] = {}  # content hash -> index of the file that brings it
    upload_rows = []
    for index, f in enumerate(files):
        row = {
            "organization_id": organization_id,
            "filename": f.filename,
            "storage_key": f.storage_key,
            "size_bytes": f.size_bytes,
            "content_hash": f.content_hash,
            "content_type": f.content_type,
            "created_by": created_by,
            "status": "registered",
            "duplicate_of_upload_id": None,
            "incoming_invoice_id": None,
        }
        if f.content_hash in earlier:
            document_id, upload_id = earlier[f.content_hash]
            row.update(
                status="duplicate",
                duplicate_of_upload_id=upload_id,
                incoming_invoice_id=document_id,
            )
        elif f.content_hash in first_in_batch:
            row["status"] = "duplicate"  # of a file above: its ids are filled in below
        else:
            first_in_batch[f.content_hash] = index
        upload_rows.append(row)
    upload_ids = list(
        conn.execute(
            insert(uploads).returning(uploads.c.id, sort_by_parameter_order=True), upload_rows
        ).scalars()
    )
    new = list(first_in_batch.values())  # in file order
    now = utcnow()
    document_ids = list(
        conn.execute(
            insert(incoming_invoices).returning(
                incoming_invoices.c.id, sort_by_parameter_order=True
            ),
            [
                {
                    "organization_id": organization_id,
                    "upload_id": upload_ids[i],
                    "status": Status.UPLOADED.value,
                    "status_changed_at": now,
                    "content_hash": files[i].content_hash,
                    "created_by": created_by,
                }
                for i in new
            ],
        ).scalars()
        if new
        else []
    )
    document_of = dict(zip(new, document_ids, strict=True))
    registrations: list[Registration] = []
    links = []
    for index, f in enumerate(files):
        if f.content_hash in earlier:
            document_id = earlier[f.content_hash][0]
            registrations.append(Registration(upload_ids[index], document_id, duplicate=True))
            continue
        first = first_in_batch[f.content_hash]
        document_id = document_of[first]
        duplicate = first != index
        links.append(
            {
                "b_id": upload_ids[index],
                "b_document": document_id,
                "b_duplicate_of": upload_ids[first] if duplicate else None,
            }
        )
        registrations.append(Registration(upload_ids[index], document_id, duplicate=duplicate))
    if links:
        _link_uploads(conn, links)
    return registrations


def _link_uploads(conn: Connection, links: list[dict]) -> None:
    """Each new upload's document (and the upload it duplicates), in one statement
    (`update_rows`)."""
    update_rows(
        conn,
        uploads,
        {"b_id": uploads.c.id},
        [
            {
                "incoming_invoice_id": link["b_document"],
                "duplicate_of_upload_id": link["b_duplicate_of"],
                "b_id": link["b_id"],
            }
            for link in links
        ],
    )


def _among(
    conn: Connection, organization_id: int, key, values: list, *columns, for_update: bool = False
) -> Iterator[Row]:
    """`columns` of the organization's incoming invoices whose `key` is among `values`, asked for
    1000 values at a time (each statement's rows by id; with `for_update`, locked)."""
    for start in range(0, len(values), 1000):
        query = (
            select(*columns)
            .where(
                incoming_invoices.c.organization_id == organization_id,
                key.in_(values[start : start + 1000]),
            )
            .order_by(incoming_invoices.c.id)
        )
        if for_update:
            query = query.with_for_update()
        yield from conn.execute(query)


def fail_registered(
    conn: Connection, organization_id: int, document_id: int, stage: str, message: str
) -> None:
    """A document registered just now that cannot be processed at all (e.g. its file is over the
    upload limit): FAILED at once with the reason, so nobody waits for a run that cannot help.
    A retry sends it through intake again (after the limit was raised, it is read then)."""
    ref = load_refs(conn, organization_id, [document_id])[document_id]
    change_status(
        conn,
        ref,
        Status.FAILED,
        fields={"format": "unknown", "raw_json": {"not_read": message}},
        errors=[ErrorRecord(stage, message)],
    )


@dataclass(frozen=True)
class StatusChange:
    """One document's move for `change_statuses`: what `change_status` takes for it."""

    ref: DocumentRef
    target: Status | str | Sequence[Status | str]
    fields: dict | None = None
    errors: Sequence[ErrorRecord] = ()


def change_statuses(
    conn: Connection, changes: Sequence[StatusChange], *, now: datetime | None = None
) -> tuple[dict[int, DocumentRef], dict[int, str]]:
    """`change_status` for many documents in a fixed number of statements: (the moved documents
    as they are now, by id; the ids that were not moved, with the reason).

    Each document gets the same check as from `change_status`: the lifecycle (an impossible move
    raises before anything is written), and the optimistic lock: its rows are read and locked
    (FOR UPDATE; SQLite's writer holds the whole database), and a document that no longer has
    the version and status its caller saw, or no longer exists, is not written (the reason says
    which) while the others are. Then one UPDATE per kind of change (the same fields) for all of
    them, each still WHERE version and status are as seen, and the findings in one INSERT.
    """
    if not changes:
        return {}, {}
    paths: dict[int, tuple[Status, int]] = {}
    for change in changes:
        target = change.target
        path = [target] if isinstance(target, (str, Status)) else list(target)
        if not path:
            raise ValueError("change_status needs at least one target status")
        current = change.ref.status
        for step in path:
            current = check_transition(current, step)
        if change.ref.id in paths:
            raise ValueError(f"incoming invoice {change.ref.id} is changed twice in one call")
        paths[change.ref.id] = (current, change.ref.processing_version + len(path))
    organization_id = changes[0].ref.organization_id
    ii = incoming_invoices
    rows = _among(
        conn,
        organization_id,
        ii.c.id,
        sorted(paths),
        ii.c.id,
        ii.c.status,
        ii.c.processing_version,
        for_update=True,
    )
    found: dict[int, tuple[str, int]] = {r.id: (r.status, r.processing_version) for r in rows}
    now = now or utcnow()
    moved: dict[int, DocumentRef] = {}
    stale: dict[int, str] = {}
    groups: dict[tuple[str, ...], list[dict]] = {}
    error_values: list[dict] = []
    for change in changes:
        ref = change.ref
        if ref.organization_id != organization_id:
            raise ValueError("change_statuses changes the documents of one organization")
        seen = found.get(ref.id)
        if seen is None:
            stale[ref.id] = f"incoming invoice {ref.id} does not exist"
            continue
        if seen != (ref.status.value, ref.processing_version):
            stale[ref.id] = (
                f"incoming invoice {ref.id} changed meanwhile: expected {ref.status} "
                f"v{ref.processing_version}, found {seen[0]} v{seen[1]}"
            )
            continue
        status, version = paths[ref.id]
        values = {
            "status": status.value,
            "processing_version": version,
            "last_processed_at": now,
            "status_changed_at": now,
            "updated_at": now,
            **(change.fields or {}),
        }
        groups.setdefault(tuple(sorted(values)), []).append(
            {
                **values,
                "b_id": ref.id,
                "b_organization_id": ref.organization_id,
                "b_version": ref.processing_version,
                "b_status": ref.status.value,
            }
        )
        moved[ref.id] = DocumentRef(ref.id, ref.organization_id, status, version)
        if change.errors:
            error_values += error_rows(ref, version, change.errors)
    for params in groups.values():
        changed = _update_each(conn, params)
        if changed is not None and changed != len(params):
            # the rows are locked since they were read: this cannot happen, and if it does the
            # caller's transaction must not keep the others either
            raise StaleDocument(
                f"{changed} of {len(params)} incoming invoices were changed where all "
                "were expected: someone changed them meanwhile"
            )
    if error_values:
        conn.execute(insert(processing_errors), error_values)
    return moved, stale


_SEEN = {
    "b_id": incoming_invoices.c.id,
    "b_organization_id": incoming_invoices.c.organization_id,
    "b_version": incoming_invoices.c.processing_version,
    "b_status": incoming_invoices.c.status,
}


def _update_each(conn: Connection, params: list[dict]) -> int | None:
    """An UPDATE of incoming_invoices per row of `params`: the new values by column name, and
    the b_* columns of `_SEEN` the row must still have. How many changed (None: not known)."""
    return update_rows(conn, incoming_invoices, _SEEN, params)


def errors_of(conn: Connection, document_id: int) -> list[dict]:
    rows = conn.execute(
        select(processing_errors)
        .where(processing_errors.c.incoming_invoice_id == document_id)
        .order_by(processing_errors.c.id)
    ).mappings()
    return [dict(r) for r in rows]


def waiting_documents(engine: Engine, organization_id: int) -> list[int]:
    """The ids of the organization's documents waiting for the intake (UPLOADED or CREATED),
    oldest first: what a run without ids processes."""
    with tenant_transaction(engine, organization_id) as conn:
        return list(
            conn.execute(
                select(incoming_invoices.c.id)
                .where(
                    incoming_invoices.c.organization_id == organization_id,
                    in_intake([Status.UPLOADED, Status.CREATED]),
                )
                .order_by(incoming_invoices.c.id)
            ).scalars()
        )


def organization_stats(conn: Connection, organization_id: int) -> dict:
    """Counts by status, the shares (in %) EXPORTED, passed validation (VALIDATED or since
    EXPORTED) and FAILED, average processing seconds."""
    rows = conn.execute(
        select(
            incoming_invoices.c.status,
            func.count(),
            func.avg(incoming_invoices.c.processing_seconds),
        )
        .where(incoming_invoices.c.organization_id == organization_id)
        .group_by(incoming_invoices.c.status)
    ).all()
    by_status = {s.value: 0 for s in Status}
    weighted, timed = 0.0, 0
    for status, count, avg_seconds in rows:
        by_status[status] = count
        if avg_seconds is not None:
            weighted += float(avg_seconds) * count
            timed += count
    total = sum(by_status.values())
    return {
        "total": total,
        "by_status": by_status,
        "exported_rate": round(100.0 * by_status["EXPORTED"] / total, 2) if total else 0.0,
        "passed_validation_rate": round(
            100.0 * (by_status["VALIDATED"] + by_status["EXPORTED"]) / total, 2
        )
        if total
        else 0.0,
        "failed_rate": round(100.0 * by_status["FAILED"] / total, 2) if total else 0.0,
        "avg_processing_seconds": round(weighted / timed, 3) if timed else None,
    }


def stuck_documents(
    conn: Connection, *, older_than: timedelta, now: datetime | None = None
) -> list[dict]:
    """Documents waiting in UPLOADED/CREATED longer than `older_than` (all organizations: system scope)."""
    cutoff = (now or utcnow()) - older_than
    rows = conn.execute(
        select(
            incoming_invoices.c.id,
            incoming_invoices.c.status,
            incoming_invoices.c.status_changed_at,
            organizations.c.slug,
        )
        .join(organizations, organizations.c.id == incoming_invoices.c.organization_id)
        .where(
            and_(
                in_intake([Status.UPLOADED, Status.CREATED]),
                incoming_invoices.c.status_changed_at < cutoff,
            )
        )
        .order_by(incoming_invoices.c.status_changed_at)
    ).mappings()
    return [dict(r) for r in rows]


def failed_documents(conn: Connection, organization_id: int, ids: Sequence[int]) -> list[dict]:
    """The given documents that are FAILED, with file name and the rule ids of their errors."""
    if not ids:
        return []
    rows = conn.execute(
        select(
            incoming_invoices.c.id,
            uploads.c.filename,
            processing_errors.c.rule_id,
            processing_errors.c.message,
        )
        .select_from(incoming_invoices)
        .outerjoin(uploads, uploads.c.id == incoming_invoices.c.upload_id)
        .outerjoin(
            processing_errors,
            and_(
                processing_errors.c.incoming_invoice_id == incoming_invoices.c.id,
                processing_errors.c.processing_version == incoming_invoices.c.processing_version,
                processing_errors.c.severity != "warning",
            ),
        )
        .where(
            incoming_invoices.c.organization_id == organization_id,
            incoming_invoices.c.id.in_(list(ids)),
            incoming_invoices.c.status == Status.FAILED.value,
        )
        .order_by(incoming_invoices.c.id, processing_errors.c.id)
    ).all()
    found: dict[int, dict] = {}
    for doc_id, filename, rule_id, message in rows:
        doc = found.setdefault(
            doc_id, {"id": doc_id, "filename": filename or "", "rules": [], "message": ""}
        )
        if rule_id and rule_id not in doc["rules"]:
            doc["rules"].append(rule_id)
        if message and not doc["message"]:
            doc["message"] = message
    return list(found.values())


def documents_in_review(
    conn: Connection, *, organization_id: int | None = None, limit: int = 50
) -> tuple[dict[str, int], list[dict]]:
    """Documents waiting in NEEDS_REVIEW, oldest first: (their count by organization slug, the
    first `limit` with id,
    organization slug, file name, invoice number, supplier, gross total, class, since when, and
    why: the first finding of their latest findings, a doubt before anything else). In the
    system scope across organizations; `organization_id` narrows it to one. Three statements."""
    t = incoming_invoices.c
    where = t.status == Status.NEEDS_REVIEW.value
    if organization_id is not None:
        where = and_(where, t.organization_id == organization_id)
    by_organization = {
        slug: count
        for slug, count in conn.execute(
            select(organizations.c.slug, func.count())
            .select_from(incoming_invoices)
            .join(organizations, organizations.c.id == t.organization_id)
            .where(where)
            .group_by(organizations.c.slug)
            .order_by(organizations.c.slug)
        )
    }
    rows = [
        dict(r)
        for r in conn.execute(
            select(
                t.id,
                organizations.c.slug.label("organization"),
                uploads.c.filename,
                t.invoice_number,
                t.seller_name,
                t.gross_total,
                t.currency,
                t.einvoice_class,
                t.einvoice_reason,
                t.status_changed_at,
            )
            .select_from(incoming_invoices)
            .join(organizations, organizations.c.id == t.organization_id)
            .outerjoin(uploads, uploads.c.id == t.upload_id)
            .where(where)
            .order_by(t.status_changed_at, t.id)
            .limit(limit)
        ).mappings()
    ]
    why: dict[int, tuple] = {}
    if rows:
        e = processing_errors.c
        # a review's correction moves the version on without new findings: the latest that has any
        for row in conn.execute(
            select(e.incoming_invoice_id, e.processing_version, e.stage, e.rule_id, e.message)
            .where(e.incoming_invoice_id.in_([r["id"] for r in rows]))
            .order_by(e.incoming_invoice_id, e.processing_version.desc(), e.id)
        ):
            rank = (row.processing_version or 0, row.stage in ("review", "hybrid"))
            best = why.get(row.incoming_invoice_id)
            if best is None or rank > best[0]:
                why[row.incoming_invoice_id] = (rank, row.rule_id, row.message)
    for row in rows:
        _, rule, message = why.get(row["id"], (None, None, ""))
        row["rule"], row["why"] = rule, message or "held for review by the organization's policy"
    return by_organization, rows
