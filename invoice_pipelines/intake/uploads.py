"""From files in the drop zone to UPLOADED documents, and from those to batches for intake runs.

The upload sensor calls `scan_uploads`; it is plain code so tests drive it without a daemon.
A file is registered once it has stopped changing (same size and mtime on two looks, at least
`settle_seconds` old, or untouched for `quiet_seconds`), its bytes are hashed (the same content is
one document; a second upload of it is recorded as a duplicate) and it is moved into the archive, all
inside the transaction that records it. The database, not the sensor cursor, decides what still
needs a run: every UPLOADED document with an id above the organization's dispatch mark.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.tables import incoming_invoices, organizations, uploads
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.intake.documents import register_upload
from invoice_pipelines.resources.storage import StoredFile, UploadStore


@dataclass
class ScanState:
    """What the sensor remembers between ticks (its JSON cursor)."""

    pending: dict[str, list[int]] = field(default_factory=dict)  # key -> [size, mtime_ns] last seen
    dispatched: dict[str, int] = field(
        default_factory=dict
    )  # organization slug -> last document id sent

    @classmethod
    def from_json(cls, data: dict | None) -> ScanState:
        data = data or {}
        return cls(
            dict(data.get("pending", {})),
            {k: int(v) for k, v in data.get("dispatched", {}).items()},
        )

    def to_json(self) -> dict:
        return {"pending": self.pending, "dispatched": self.dispatched}


@dataclass(frozen=True)
class IntakeBatch:
    organization_slug: str
    document_ids: list[int]

    @property
    def run_key(self) -> str:
        return f"intake-{self.organization_slug}-{self.document_ids[0]}-{self.document_ids[-1]}"


@dataclass
class ScanResult:
    state: ScanState
    batches: list[IntakeBatch]
    registered: int = 0
    duplicates: int = 0
    waiting: int = 0  # files still changing or too fresh
    errors: list[str] = field(default_factory=list)


def scan_uploads(
    engine: Engine,
    store: UploadStore,
    state: ScanState,
    *,
    settle_seconds: float = 2.0,
    quiet_seconds: float = 60.0,
    batch_size: int = 200,
    max_files_per_tick: int = 2000,
    now: float | None = None,
) -> ScanResult:
    now = time.time() if now is None else now
    with system_transaction(engine) as conn:
        orgs = conn.execute(
            select(organizations.c.id, organizations.c.slug).where(organizations.c.active.is_(True))
        ).all()
    result = ScanResult(state=ScanState(dispatched=dict(state.dispatched)), batches=[])
    budget = max_files_per_tick
    for org_id, slug in orgs:
        ready: list[StoredFile] = []
        for stored in store.list_inbox(slug):
            signature = [stored.size, stored.mtime_ns]
            age = now - stored.mtime_ns / 1e9
            stable = age >= settle_seconds and (
                state.pending.get(stored.key) == signature or age >= quiet_seconds
            )
            if not stable or budget <= 0:
                result.state.pending[stored.key] = signature
                result.waiting += 1
                continue
            budget -= 1
            ready.append(stored)
        for chunk in (ready[i : i + REGISTER_CHUNK] for i in range(0, len(ready), REGISTER_CHUNK)):
            _register_files(engine, store, org_id, chunk, result)
        result.batches.extend(_batches_for(engine, org_id, slug, result.state, batch_size))
    return result


REGISTER_CHUNK = 100


def _register_files(
    engine: Engine, store: UploadStore, org_id: int, files: list[StoredFile], result: ScanResult
) -> None:
    """Register files in one transaction; if that fails, one by one, so one bad file costs only itself."""
    try:
        registrations = _register_in_transaction(engine, store, org_id, files)
    except Exception as exc:  # noqa: BLE001 - one bad file must not stop the others
        if len(files) == 1:
            result.errors.append(f"{files[0].key}: {type(exc).__name__}: {exc}")
        else:
            for stored in files:
                _register_files(engine, store, org_id, [stored], result)
        return
    for registration in registrations:
        result.duplicates += registration.duplicate
        result.registered += not registration.duplicate


def _register_in_transaction(
    engine: Engine, store: UploadStore, org_id: int, files: list[StoredFile]
) -> list:
    moved: list[tuple[str, str]] = []
    registrations = []
    try:
        with tenant_transaction(engine, org_id, write=True) as conn:
            for stored in files:
                data = store.read(stored.key)
                registration = register_upload(
                    conn,
                    organization_id=org_id,
                    filename=stored.name,
                    storage_key=stored.key,
                    content_hash=hashlib.sha256(data).hexdigest(),
                    size_bytes=len(data),
                    content_type=mimetypes.guess_type(stored.name)[0],
                )
                archived = store.archive(stored.key, registration.upload_id)
                moved.append((archived, stored.key))
                conn.execute(
                    uploads.update()
                    .where(uploads.c.id == registration.upload_id)
                    .values(storage_key=archived)
                )
                registrations.append(registration)
    except Exception:
        # the records were rolled back: put the files back so a later attempt finds them
        for archived, original in reversed(moved):
            store.restore(archived, original)
        raise
    return registrations


def _batches_for(
    engine: Engine, org_id: int, slug: str, state: ScanState, batch_size: int
) -> list[IntakeBatch]:
    mark = state.dispatched.get(slug, 0)
    with tenant_transaction(engine, org_id) as conn:
        ids = list(
            conn.execute(
                select(incoming_invoices.c.id)
                .where(
                    incoming_invoices.c.organization_id == org_id,
                    incoming_invoices.c.status == Status.UPLOADED.value,
                    incoming_invoices.c.id > mark,
                )
                .order_by(incoming_invoices.c.id)
            ).scalars()
        )
    if ids:
        state.dispatched[slug] = ids[-1]
    return [IntakeBatch(slug, ids[i : i + batch_size]) for i in range(0, len(ids), batch_size)]
