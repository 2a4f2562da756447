"""Old uploads and exports for the housekeeping tests: rows made by the project's own code, then
dated back by setting their timestamps directly (as if they had been there for years)."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime

from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import audit_log, exports, incoming_invoices, uploads
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.exports.domain.pipeline import file_keys
from invoice_pipelines.intake.domain.incoming_invoices import register_upload
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.files.uploads import Uploads, archive_key

THIS_YEAR = datetime.now(UTC).year
# with the legal 10 years, documents of this year are the newest that may go today
LAST_EXPIRED = THIS_YEAR - 11


def at(year: int, month: int = 6, day: int = 15, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def old_upload(
    db,
    store: Uploads,
    org: dict,
    *,
    uploaded: datetime,
    status: str = "EXPORTED",
    changed: datetime | None = None,
    issued: date | None = None,
    data: bytes | None = None,
    file: bool = True,
) -> dict:
    """An archived upload and its incoming invoice, dated back; returns ids, key and hash."""
    data = data or f"invoice {uuid.uuid4()}".encode()
    digest = hashlib.sha256(data).hexdigest()
    name = f"invoice-{uuid.uuid4().hex[:8]}.xml"
    key = archive_key(f"{org['slug']}/{name}", digest, 1_000_000)
    if file:
        dropped = store.put(org["slug"], name, data)
        store.move(dropped, key)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        registration = register_upload(
            conn,
            organization_id=org["id"],
            filename=name,
            storage_key=key,
            content_hash=digest,
            size_bytes=len(data),
        )
    with db.owner_engine.begin() as conn:
        conn.execute(
            update(uploads)
            .where(uploads.c.id == registration.upload_id)
            .values(created_at=uploaded)
        )
        if not registration.duplicate:
            conn.execute(
                update(incoming_invoices)
                .where(incoming_invoices.c.id == registration.document_id)
                .values(
                    status=status,
                    status_changed_at=changed or uploaded,
                    issue_date=issued,
                    created_at=uploaded,
                )
            )
    return {
        "upload_id": registration.upload_id,
        "document_id": registration.document_id,
        "key": key,
        "hash": digest,
        "data": data,
    }


def old_export(
    db,
    store: Files,
    org: dict,
    *,
    period: str,
    written: datetime,
    files: bool = True,
    provisional: bool = False,
) -> dict:
    """An export version of `period` with its files, written at `written` (`provisional`: a
    version of the running month, exported on request, with its own file names)."""
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        version = 1 + (
            conn.execute(
                select(exports.c.version)
                .where(exports.c.organization_id == org["id"], exports.c.period == period)
                .order_by(exports.c.version.desc())
            ).scalar()
            or 0
        )
        keys = file_keys(org["slug"], period, "incoming", version, provisional=provisional)
        if files:
            for key in keys.values():
                store.write(key, [f"{key}\r\n".encode()])
        export_id = conn.execute(
            insert(exports)
            .values(
                organization_id=org["id"],
                direction="incoming",
                period=period,
                version=version,
                fingerprint=hashlib.sha256(period.encode()).hexdigest(),
                files={kind: store.location(key) for kind, key in keys.items()},
                notes={"provisional": True} if provisional else None,
            )
            .returning(exports.c.id)
        ).scalar_one()
    with db.owner_engine.begin() as conn:
        conn.execute(update(exports).where(exports.c.id == export_id).values(created_at=written))
    return {"export_id": export_id, "keys": list(keys.values())}


def upload_row(db, upload_id: int):
    with db.owner_engine.connect() as conn:
        return conn.execute(select(uploads).where(uploads.c.id == upload_id)).mappings().one()


def export_row(db, export_id: int):
    with db.owner_engine.connect() as conn:
        return conn.execute(select(exports).where(exports.c.id == export_id)).mappings().one()


def audit_rows(db, org_id: int) -> list:
    with db.owner_engine.connect() as conn:
        return (
            conn.execute(
                select(audit_log)
                .where(
                    audit_log.c.organization_id == org_id, audit_log.c.action == "archive_retention"
                )
                .order_by(audit_log.c.id)
            )
            .mappings()
            .all()
        )
