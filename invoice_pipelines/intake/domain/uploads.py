"""From files in the drop zone to UPLOADED documents, and from those to batches for intake runs.

The upload sensor calls `scan_uploads`; it is plain code so tests drive it without a daemon.

- A file is registered once it has stopped changing: the same size and mtime on two looks and at
  least `settle_seconds` old, or untouched for `quiet_seconds`.
- Its content hash decides identity: the same bytes are one document; a second upload of them is
  recorded as a duplicate upload, and the tick names it with the invoice it duplicates
  (`duplicate_uploads`: the `uploads` observation lists them, intake/domain/duplicate_uploads.py).
- The record is committed first, with the archive key derived from the file (hash, mtime, name);
  then the file moves into the archive. A crash in between leaves a record whose file is still in
  the drop zone: the next look finds the record by that key and only completes the move. Nothing
  is lost and nothing is registered twice.
- The database, not the sensor cursor, decides what needs a run: every UPLOADED document above the
  organization's dispatch mark, plus UPLOADED/CREATED documents that have waited longer than
  `redispatch_after` (their run died), under a new run key once per such window. A window starts
  when an organization's stale documents are first sent again (the cursor keeps that second), so
  two re-dispatches of one organization are always `redispatch_after` apart.
- Each organization gets its share of the per-tick budget, so one tenant's flood does not starve
  the others; the sensor lists at most `limits.SCAN_FILES_PER_ORGANIZATION` of its files per tick
  and the cursor remembers at most that share (and `limits.SCAN_CURSOR_MAX_FILES` in all), so a
  drop zone of 100,000 files neither slows every tick nor bloats the cursor written each tick.
- A file over the upload limit is not hashed (that would read it whole): it is recorded at once as
  a FAILED document with the reason and archived like any other. A file the store refuses to read
  (a symbolic link, not a regular file) is skipped and reported in `errors`, never recorded.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.incoming_status import in_intake
from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import (
    active_organizations,
    system_transaction,
    tenant_transaction,
)
from invoice_pipelines.intake.domain.duplicate_uploads import duplicates_of_uploads
from invoice_pipelines.intake.domain.incoming_invoices import (
    NewUpload,
    fail_registered,
    register_uploads,
)
from invoice_pipelines.limits import SCAN_CURSOR_MAX_FILES, SCAN_FILES_PER_ORGANIZATION
from invoice_pipelines.resources.files.uploads import (
    StoredFile,
    Uploads,
    UploadTooLarge,
    archive_key,
)

REGISTER_CHUNK = 100


@dataclass
class ScanState:
    """What the sensor remembers between ticks (its JSON cursor)."""

    pending: dict[str, list[int]] = field(default_factory=dict)  # key -> [size, mtime_ns] last seen
    dispatched: dict[str, int] = field(default_factory=dict)  # organization slug -> last id sent
    # organization slug -> the second its current re-dispatch window started
    redispatched: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict | None) -> ScanState:
        data = data or {}
        return cls(
            dict(data.get("pending", {})),
            {k: int(v) for k, v in data.get("dispatched", {}).items()},
            {k: int(v) for k, v in data.get("redispatched", {}).items()},
        )

    def to_json(self) -> dict:
        return {
            "pending": self.pending,
            "dispatched": self.dispatched,
            "redispatched": self.redispatched,
        }


@dataclass(frozen=True)
class IntakeBatch:
    organization_slug: str
    document_ids: list[int]
    attempt: str = ""  # empty for the first dispatch; a window label for re-dispatches

    @property
    def run_key(self) -> str:
        key = f"intake-{self.organization_slug}-{self.document_ids[0]}-{self.document_ids[-1]}"
        return f"{key}-{self.attempt}" if self.attempt else key


@dataclass
class ScanResult:
    state: ScanState
    batches: list[IntakeBatch]
    registered: int = 0
    duplicates: int = 0
    waiting: int = 0  # files still changing or too fresh, or over this tick's budget
    errors: list[str] = field(default_factory=list)
    # organization slug -> [registered, duplicates] this tick (the `uploads` asset's observations)
    by_organization: dict[str, list[int]] = field(default_factory=dict)
    # organization slug -> the duplicate uploads this tick, each with the invoice it duplicates
    duplicate_uploads: dict[str, list[dict]] = field(default_factory=dict)
    duplicate_upload_ids: list[int] = field(default_factory=list)


def scan_uploads(
    engine: Engine,
    store: Uploads,
    state: ScanState,
    *,
    system: Engine,
    settle_seconds: float = 2.0,
    quiet_seconds: float = 60.0,
    batch_size: int = 200,
    max_files_per_tick: int = 2000,
    redispatch_after: timedelta = timedelta(minutes=15),
    only_organizations: set[str] | None = None,
    time_budget_s: float = 20.0,
    now: float | None = None,
) -> ScanResult:
    now = time.time() if now is None else now
    # a sensor evaluation must finish well inside Dagster's 60 s limit: registering (which reads and
    # hashes every file) stops after this long and the rest waits for the next tick
    deadline = time.monotonic() + time_budget_s
    # the organizations and the waiting documents of all of them: the system engine's work; each
    # organization's files are registered as its own on `engine`
    orgs = sorted(
        (
            org
            for org in active_organizations(system)
            if only_organizations is None or org.slug in only_organizations
        ),
        key=lambda org: org.id,
    )
    result = ScanResult(
        state=ScanState(dispatched=dict(state.dispatched), redispatched=dict(state.redispatched)),
        batches=[],
    )
    share = max(20, max_files_per_tick // max(len(orgs), 1))
    for org in orgs:
        org_id, slug = org.id, org.slug
        ready: list[StoredFile] = []
        remembered = 0
        try:
            listed = store.list_inbox(slug, limit=max(share, SCAN_FILES_PER_ORGANIZATION))
        except Exception as exc:  # one organization's broken folder must not stop the others
            result.errors.append(f"{slug}/: drop zone not read: {type(exc).__name__}: {exc}")
            continue
        for stored in listed:
            if stored.refused:
                result.errors.append(f"{stored.key}: skipped: {stored.refused}")
                continue
            signature = [stored.size, stored.mtime_ns]
            age = now - stored.mtime_ns / 1e9
            settled = state.pending.get(stored.key) == signature or age >= quiet_seconds
            if age < settle_seconds or not settled or len(ready) >= share:
                # only files that can be registered next tick are worth remembering: the share
                # per organization, and a fixed number in all (the cursor is written every tick)
                if remembered < share and len(result.state.pending) < SCAN_CURSOR_MAX_FILES:
                    result.state.pending[stored.key] = signature
                    remembered += 1
                result.waiting += 1
                continue
            ready.append(stored)
        seen_duplicates = len(result.duplicate_upload_ids)
        for i in range(0, len(ready), REGISTER_CHUNK):
            if time.monotonic() > deadline:
                result.waiting += len(ready) - i
                break
            before = (result.registered, result.duplicates)
            _register_files(engine, store, org_id, ready[i : i + REGISTER_CHUNK], result)
            counts = result.by_organization.setdefault(slug, [0, 0])
            counts[0] += result.registered - before[0]
            counts[1] += result.duplicates - before[1]
        if len(result.duplicate_upload_ids) > seen_duplicates:
            with tenant_transaction(engine, org_id) as conn:
                result.duplicate_uploads[slug] = duplicates_of_uploads(
                    conn, org_id, result.duplicate_upload_ids[seen_duplicates:]
                )
    result.batches = _batches(system, orgs, result.state, batch_size, redispatch_after, now)
    return result


def _register_files(
    engine: Engine, store: Uploads, org_id: int, files: list[StoredFile], result: ScanResult
) -> None:
    """Register files in one transaction; if that fails, one by one, so a bad file costs only itself."""
    try:
        planned = _record_files(engine, store, org_id, files)
    except Exception as exc:  # one bad file must not stop the others
        if len(files) == 1:
            result.errors.append(f"{files[0].key}: {type(exc).__name__}: {exc}")
        else:
            for stored in files:
                _register_files(engine, store, org_id, [stored], result)
        return
    for stored, target, registration in planned:
        try:
            store.move(stored.key, target)
        except OSError as exc:
            # recorded already; the next look finds the record by its key and moves it then
            result.errors.append(f"{stored.key}: recorded, not yet archived: {exc}")
        if registration is not None:
            result.duplicates += registration.duplicate
            result.registered += not registration.duplicate
            if registration.duplicate:
                result.duplicate_upload_ids.append(registration.upload_id)


def _record_files(engine: Engine, store: Uploads, org_id: int, files: list[StoredFile]) -> list:
    """Hash and record the files in one transaction, in a fixed number of statements (about five
    round trips for a hundred files instead of five per file)."""
    hashed = []
    for stored in files:
        refused = ""
        try:
            digest = store.digest(stored.key)
        except UploadTooLarge as exc:
            # recorded FAILED without reading it; the identity comes from the listing, so a
            # second look after a crash finds the same record by its archive key
            refused, digest = str(exc), _unread_identity(stored)
        hashed.append((stored, archive_key(stored.key, digest, stored.mtime_ns), digest, refused))
    with tenant_transaction(engine, org_id, write=True) as conn:
        known: set[str] = set()
        targets = [target for _, target, _, _ in hashed]
        for chunk in chunked(targets, 1000):
            known.update(
                conn.execute(
                    select(uploads.c.storage_key).where(
                        uploads.c.organization_id == org_id, uploads.c.storage_key.in_(chunk)
                    )
                ).scalars()
            )
        # recorded before a crash: only the move is missing
        new = [entry for entry in hashed if entry[1] not in known]
        registrations = register_uploads(
            conn,
            organization_id=org_id,
            files=[
                NewUpload(
                    filename=stored.name,
                    storage_key=target,
                    content_hash=digest,
                    size_bytes=stored.size,
                    content_type=mimetypes.guess_type(stored.name)[0],
                )
                for stored, target, digest, _ in new
            ],
        )
        by_target = {
            entry[1]: registration for entry, registration in zip(new, registrations, strict=True)
        }
        for _, target, _, refused in new:
            registration = by_target[target]
            if refused and not registration.duplicate:
                fail_registered(conn, org_id, registration.document_id, "read", refused)
    return [(stored, target, by_target.get(target)) for stored, target, _, _ in hashed]


def _unread_identity(stored: StoredFile) -> str:
    """A stand-in for the content hash of a file too large to hash: unique to this file (name,
    size, mtime), and never equal to a real content hash."""
    seed = f"not read\0{stored.key}\0{stored.size}\0{stored.mtime_ns}"
    return hashlib.sha256(seed.encode("utf-8", "surrogateescape")).hexdigest()


def _batches(
    system: Engine,
    orgs: list[Organization],
    state: ScanState,
    batch_size: int,
    redispatch_after: timedelta,
    now: float,
) -> list[IntakeBatch]:
    """One query over every waiting document; new ones above the mark, stale ones again."""
    slugs = {org.id: org.slug for org in orgs}
    if not slugs:
        return []
    cutoff = datetime.fromtimestamp(now, UTC) - redispatch_after
    with system_transaction(system) as conn:
        rows = conn.execute(
            select(
                incoming_invoices.c.id,
                incoming_invoices.c.organization_id,
                incoming_invoices.c.status,
                incoming_invoices.c.status_changed_at,
            )
            .where(
                incoming_invoices.c.organization_id.in_(list(slugs)),
                in_intake([Status.UPLOADED, Status.CREATED]),
            )
            .order_by(incoming_invoices.c.organization_id, incoming_invoices.c.id)
        ).all()
    fresh: dict[str, list[int]] = {}
    stale: dict[str, list[int]] = {}
    for row in rows:
        slug = slugs[row.organization_id]
        mark = state.dispatched.get(slug, 0)
        if row.id > mark and row.status == Status.UPLOADED.value:
            fresh.setdefault(slug, []).append(row.id)
        elif row.id <= mark and row.status_changed_at < cutoff:
            stale.setdefault(slug, []).append(row.id)
    batches = []
    for slug, ids in fresh.items():
        state.dispatched[slug] = ids[-1]
        batches += [IntakeBatch(slug, chunk) for chunk in chunked(ids, batch_size)]
    # a window is relative to its own start, not to the clock's multiples of redispatch_after: a
    # tick just before such a multiple and one just after would otherwise send the same documents
    # twice within a second
    for slug in [s for s in slugs.values() if s in state.redispatched and s not in stale]:
        del state.redispatched[slug]
    for slug, ids in stale.items():
        start = state.redispatched.get(slug)
        if start is None or now - start >= redispatch_after.total_seconds():
            start = state.redispatched[slug] = int(now)
        batches += [IntakeBatch(slug, chunk, f"r{start}") for chunk in chunked(ids, batch_size)]
    return batches
