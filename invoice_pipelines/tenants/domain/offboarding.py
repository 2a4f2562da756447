"""Offboarding an organization (issue 75), in two steps, each audited:

1. `export_organization`: everything it has, as files a person can read: `organization.json`
   (its values and settings), one CSV per table with its rows (`tables/<table>.csv`, every
   column; binary columns as files under `blobs/`), its originals (`originals/`, the upload
   store), its documents (`documents/`, the document store) and its exports' files (`exports/`),
   with `manifest.json`: each file's SHA-256 and size, each table's row count and money sums.
   The folder is checked before anything changes: never a symbolic link, never inside a folder
   our stores read (an upload drop zone, the archive, the export and document stores). The
   organization is suspended first, so nothing new arrives while the export is written, and
   marked offboarded once it is written; from then on its rows are read-only in the database
   (migration 0055). Right after it, `thin_organization` deletes what the law does not keep.
2. `delete_organization`: its rows and files, as the system login, once every retention period
   is over, the law's and the organization's own longer ones (`core/retention.py`, one strict
   reading of its `settings.retention`): booking documents (invoices, their originals) 8 years
   (§ 147 AO and § 257 HGB as amended from 2025), books and records (the DATEV exports, the
   books) 10 years, each from the end of the calendar year of the latest one. Before that date
   it is refused, naming the date; under a legal hold, or with a retention setting that cannot be
   read, it is refused too.

What the deletion leaves: the organization's audit trail (`audit_log`, `audit_seals`: books) of
the years still kept, read-only, and its row with it, until a later deletion finds those years
over too; and one `audit_log` row without an organization (its slug, who, the rows deleted, what
is kept until when), the record of the deletion outside the deleted organization. The partitions
are the caller's (tenants/domain/partition_keys.py), once the row is gone."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, LargeBinary, Numeric, Table, delete, extract, func, insert, select
from sqlalchemy import update as sql_update
from sqlalchemy.engine import Connection

from invoice_pipelines.core.chunks import chunked
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.retention import (
    RecordClass,
    RetentionSettings,
    RetentionSettingsError,
    kept_through,
    retention_settings,
)
from invoice_pipelines.core.retention import deletable_from as class_deletable_from
from invoice_pipelines.db.audit_log import SEALED_TABLES, record_retention_deletion
from invoice_pipelines.db.tables import (
    audit_log,
    audit_seals,
    exports,
    incoming_invoices,
    metadata,
    organizations,
    qbo_connections,
    qbo_cursors,
    qbo_realm_requests,
    qbo_webhook_receipts,
    sales_invoice_documents,
    sales_invoices,
    uploads,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.queue.domain.jobs import cancel_unfinished_jobs
from invoice_pipelines.settings import data_dir, document_dir, export_dir, upload_dir
from invoice_pipelines.tenants.domain.lifecycle import Refused, _audit, locked

# what the law does not keep: deleted right after the export (`thin_organization`)
NOT_KEPT = (qbo_connections, qbo_cursors, qbo_realm_requests, qbo_webhook_receipts)
# what a deletion keeps while its years are kept (books: the organization's audit trail)
AUDIT_TRAIL = (audit_log, audit_seals)
OFFBOARDING = "offboarding"
YIELD_PER = 2000


class NotYet(Exception):
    """A deletion before the end of a retention period: the sentence names the date it may."""


@dataclass
class Stores:
    """Where the organization's files are: the plain stores of the commands and runs (any may be
    None: its files are then listed in the manifest as not copied)."""

    uploads: Any = None  # resources.files.uploads.Uploads
    documents: Any = None  # resources.files.files.Files
    exports: Any = None  # resources.files.files.Files


@dataclass
class Manifest:
    files: list[dict] = field(default_factory=list)
    tables: dict[str, dict] = field(default_factory=dict)
    not_copied: list[str] = field(default_factory=list)


def tenant_tables() -> list[Table]:
    """Every table with the organization's rows (an `organization_id` column), parents first."""
    return [t for t in metadata.sorted_tables if "organization_id" in t.c]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _write(root: Path, relative: str, data: bytes, manifest: Manifest) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _record(root, relative, manifest)


def _record(root: Path, relative: str, manifest: Manifest) -> None:
    digest = hashlib.sha256()
    path = root / relative
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    manifest.files.append(
        {"path": relative, "sha256": digest.hexdigest(), "bytes": path.stat().st_size}
    )


def _safe(key: str) -> str:
    """A store key (or a location, `s3://bucket/...`: bucket first) as a relative path inside
    the export (no way out of its folder)."""
    key = key.split("://", 1)[-1]
    parts = [p for p in key.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts) or "unnamed"


def export_organization(
    engine: Engine,
    organization: Organization,
    target: Path,
    *,
    system: Engine,
    by: str,
    stores: Stores | None = None,
) -> dict:
    """Write everything the organization has into `target` (a new or empty folder that no store
    of ours reads); the manifest as a dict (also `target/manifest.json`). The folder and the
    organization's retention settings are checked before anything changes (`Refused`, one
    sentence each). It is suspended first (so nothing new arrives while the export is written),
    and marked offboarded, on the system engine `system`, only once the export is written; a
    failed write leaves it suspended, not offboarded, and says so. Reads it on `engine`."""
    stores = stores or Stores()
    target = export_folder(Path(target), stores)
    with system_transaction(system) as conn:
        org = locked(conn, organization)
        settings = _retention(org)
    _mark(
        system, organization, by, "organization_offboarding",
        lambda was: {"folder": str(target), "suspended_before": was["suspension_reason"]},
        suspended_at=utcnow(), suspended_by=by[:255], suspension_reason=OFFBOARDING,
    )  # fmt: skip
    manifest = Manifest()
    try:
        document = _write_export(engine, stores, org, settings, target, by, manifest)
    except OSError as exc:
        raise Refused(
            [
                f"writing the export into {target} failed ({exc.__class__.__name__}: {exc}); "
                f"{org['slug']} is suspended for its offboarding, not offboarded: free the folder "
                "or give another one and export again"
            ]
        ) from None
    details = {
        "folder": str(target),
        "files": len(manifest.files),
        "rows": {name: t["rows"] for name, t in manifest.tables.items() if t["rows"]},
        "not_copied": len(manifest.not_copied),
    }
    _mark(system, organization, by, "organization_exported", lambda _org: details,
          offboarded_at=utcnow(), offboarded_by=by[:255])  # fmt: skip
    thinned = thin_organization(system, org["id"], org["slug"], by=by)
    return {**document, "files": len(manifest.files) + 1, "thinned": thinned}


def export_folder(target: Path, stores: Stores) -> Path:
    """The folder an export may be written to, resolved: refused (one sentence) when it is a
    symbolic link (a dangling one included), not a folder, not empty, or inside (or holding) a
    folder one of our stores reads: an upload drop zone, the archive, the exports' and documents'
    folders, the data folder."""
    if target.is_symlink():
        raise Refused([f"{target} is a symbolic link: give the real folder, nothing was changed"])
    resolved = target.resolve()
    if resolved.exists() and not resolved.is_dir():
        raise Refused([f"{target} is not a folder: give a new or empty folder"])
    if resolved.is_dir() and any(resolved.iterdir()):
        raise Refused([f"{target} is not empty: give a new or empty folder"])
    for name, folder in _read_folders(stores):
        if resolved == folder or folder in resolved.parents or resolved in folder.parents:
            raise Refused(
                [
                    f"{target} is inside the {name} ({folder}), which the project reads: give a "
                    "folder outside every store, nothing was changed"
                ]
            )
    try:
        resolved.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Refused(
            [f"{target} cannot be made ({exc.strerror or exc}): give another folder"]
        ) from None
    return resolved


def _read_folders(stores: Stores) -> list[tuple[str, Path]]:
    """The folders the project reads or keeps its files in: each store's own root (a local one)
    and the configured ones."""
    found = [
        ("data folder", data_dir()),
        ("upload folder", upload_dir()),
        ("export store", export_dir()),
        ("document store", document_dir()),
    ]
    for name, store in (
        ("upload folder", stores.uploads),
        ("document store", stores.documents),
        ("export store", stores.exports),
    ):
        root = getattr(store, "root", "")
        if isinstance(root, str | Path) and str(root):
            found.append((name, Path(root)))
    return [(name, folder.resolve()) for name, folder in found]


def _mark(system: Engine, organization: Organization, by: str, action: str, details, **wanted):
    """In one system transaction: set each lifecycle column of `wanted` that is still empty (an
    offboarding done again keeps its first dates and reason) and write the audit row `action`
    with `details(the row as it was)`."""
    with system_transaction(system, write=True) as conn:
        org = locked(conn, organization)
        conn.execute(
            sql_update(organizations)
            .where(organizations.c.id == org["id"])
            .values({column: org[column] or value for column, value in wanted.items()})
        )
        conn.execute(insert(audit_log), [_audit(by, action, org["id"], org["slug"], details(org))])


def _write_export(engine, stores, org, settings, target: Path, by: str, manifest) -> dict:
    with tenant_transaction(engine, org["id"], snapshot=True) as conn:
        values = (
            conn.execute(select(organizations).where(organizations.c.id == org["id"]))
            .mappings()
            .one()
        )
        _write(
            target,
            "organization.json",
            json.dumps(dict(values), default=_cell, indent=2, ensure_ascii=False).encode(),
            manifest,
        )
        for table in tenant_tables():
            _export_table(conn, table, org["id"], target, manifest)
        files = _stored_files(conn, org["id"])
        allowed = deletable_from(conn, org["id"], settings) or datetime.now(UTC).date()
    for folder, store, store_key in files:
        _copy(stores, folder, store, store_key, target, manifest)
    document = {
        "organization": org["slug"],
        "exported_at": utcnow().isoformat(),
        "exported_by": by,
        "deletable_from": allowed.isoformat(),
        "tables": manifest.tables,
        "files": sorted(manifest.files, key=lambda f: f["path"]),
        "not_copied": manifest.not_copied,
    }
    (target / "manifest.json").write_text(json.dumps(document, indent=2, ensure_ascii=False))
    return document


@contextmanager
def offboarding_step(conn: Connection, org_id: int, step: str) -> Iterator[None]:
    """Inside `conn`'s transaction, let the offboarding's own step write the offboarded
    organization's rows (the read-only triggers of migration 0055 let it): set here, cleared
    before the transaction commits, so no other transaction ever sees it."""
    where = organizations.c.id == org_id
    conn.execute(sql_update(organizations).where(where).values(offboarding_step=step))
    yield
    conn.execute(sql_update(organizations).where(where).values(offboarding_step=None))


def thin_organization(system: Engine, org_id: int, slug: str, *, by: str) -> dict[str, int]:
    """Right after the export: delete what the law does not require to keep (`NOT_KEPT`: the
    QuickBooks connection with its tokens and secrets, and its sync state) and end the batch jobs
    that had not finished (cancelled), audited; everything else stays, read-only, until
    `delete_organization` (docs/organizations.md, "What the law keeps"). Rows removed by table."""
    with system_transaction(system, write=True) as conn:
        with offboarding_step(conn, org_id, "thinning"):
            removed = {
                table.name: conn.execute(
                    delete(table).where(table.c.organization_id == org_id)
                ).rowcount
                for table in NOT_KEPT
            }
            removed["batch_jobs_cancelled"] = cancel_unfinished_jobs(
                conn, org_id, why="cancelled: the organization was offboarded"
            )
        removed = {name: count for name, count in removed.items() if count}
        conn.execute(
            insert(audit_log),
            [_audit(by, "organization_thinned", org_id, slug, {"removed": removed})],
        )
    return removed


def _export_table(conn, table: Table, org_id: int, root: Path, manifest: Manifest) -> None:
    columns = list(table.c)
    money = [c.name for c in columns if isinstance(c.type, Numeric)]
    binary = {c.name for c in columns if isinstance(c.type, LargeBinary)}
    order = list(table.primary_key.columns) or columns[:1]
    sums = {name: Decimal(0) for name in money}
    relative = f"tables/{table.name}.csv"
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    result = conn.execution_options(yield_per=YIELD_PER).execute(
        select(table).where(table.c.organization_id == org_id).order_by(*order)
    )
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.name for c in columns])
        for row in result.mappings():
            rows += 1
            cells = []
            for column in columns:
                value = row[column.name]
                if column.name in binary and value is not None:
                    blob = f"blobs/{table.name}/{rows}.{column.name}"
                    _write(root, blob, bytes(value), manifest)
                    value = blob
                if column.name in sums and value is not None:
                    sums[column.name] += Decimal(value)
                cells.append(_cell(value))
            writer.writerow(cells)
    _record(root, relative, manifest)
    manifest.tables[table.name] = {
        "rows": rows,
        "sums": {name: str(total) for name, total in sums.items()},
    }


def _stored_files(conn, org_id: int) -> list[tuple[str, str, str]]:
    """(folder in the export, store, key or location) of every file the rows name."""
    found = [
        ("originals", "uploads", key)
        for key in conn.execute(
            select(uploads.c.storage_key).where(
                uploads.c.organization_id == org_id, uploads.c.purged_at.is_(None)
            )
        ).scalars()
    ]
    found += [
        ("documents", "documents", key)
        for key in conn.execute(
            select(sales_invoice_documents.c.storage_key).where(
                sales_invoice_documents.c.organization_id == org_id,
                sales_invoice_documents.c.storage_key.is_not(None),
            )
        ).scalars()
    ]
    for files in conn.execute(
        select(exports.c.files).where(
            exports.c.organization_id == org_id, exports.c.purged_at.is_(None)
        )
    ).scalars():
        found += [
            ("exports", "exports", location)
            for location in (files or {}).values()
            if isinstance(location, str) and location
        ]
    return found


def _copy(
    stores: Stores, folder: str, store: str, key: str, root: Path, manifest: Manifest
) -> None:
    relative = f"{folder}/{_safe(key)}"
    try:
        if store == "exports":
            # an export records where its file is (a path, or a URL on S3)
            local = Path(key)
            data = local.read_bytes() if local.is_file() else stores.exports.read(key)
        else:
            data = getattr(stores, store).read(key)
    except Exception as exc:  # a missing file is named in the manifest, not a failed export
        manifest.not_copied.append(f"{store}: {key} ({exc.__class__.__name__})")
        return
    _write(root, relative, data, manifest)


def deletable_from(conn: Connection, org_id: int, settings: RetentionSettings) -> date | None:
    """The first day every period of the organization's booking documents and books is over
    (the law's, or its own where it keeps a class longer): each from the end of the calendar year
    of the latest one. None: it has none."""
    documents = [
        conn.execute(
            select(func.max(extract("year", sales_invoices.c.issue_date))).where(
                sales_invoices.c.organization_id == org_id
            )
        ).scalar(),
        conn.execute(
            select(func.max(extract("year", incoming_invoices.c.created_at))).where(
                incoming_invoices.c.organization_id == org_id
            )
        ).scalar(),
        conn.execute(
            select(func.max(extract("year", uploads.c.created_at))).where(
                uploads.c.organization_id == org_id
            )
        ).scalar(),
    ]
    books = conn.execute(
        select(func.max(func.substr(exports.c.period, 1, 4))).where(
            exports.c.organization_id == org_id
        )
    ).scalar()
    # core/retention.py: the one rule, as housekeeping and the tax-audit export read it
    document = RecordClass.BOOKING_DOCUMENT
    dates = [
        class_deletable_from(document, int(year), settings.years(document))
        for year in documents
        if year
    ]
    if books:
        dates.append(
            class_deletable_from(RecordClass.BOOK, int(books), settings.years(RecordClass.BOOK))
        )
    return max(dates) if dates else None


def audit_kept_through(conn: Connection, org_id: int, settings: RetentionSettings) -> date | None:
    """The last day the organization's audit trail is kept: it is part of its books (10 years,
    or its own longer period), from the end of the year of its latest row. None: it has none.
    The trail is kept whole while any year of it is kept, so that its chain still verifies from
    its first seal."""
    year = conn.execute(
        select(func.max(extract("year", audit_log.c.created_at))).where(
            audit_log.c.organization_id == org_id
        )
    ).scalar()
    if not year:
        return None
    return kept_through(RecordClass.BOOK, int(year), settings.years(RecordClass.BOOK))


@dataclass
class Deleted:
    """What a deletion did: the rows deleted by table, the files removed, and what the law still
    keeps (`kept`: by table, its rows and the last day they are kept). `gone`: the organization's
    own row went too (nothing of it is kept any more)."""

    slug: str
    rows: dict[str, int]
    files_removed: int = 0
    kept: dict[str, dict] = field(default_factory=dict)
    gone: bool = False


def delete_organization(
    engine: Engine,
    organization: Organization,
    *,
    system: Engine,
    by: str,
    stores: Stores | None = None,
    today: date | None = None,
) -> Deleted:
    """Delete what every retention period (the law's and the organization's own) and every hold
    allow, all as the system login: refused until it was exported (step 1), under a hold, with a
    retention setting that cannot be read (one sentence naming it), and until the periods of its
    booking documents and books are over (`NotYet`, naming the date). Its audit trail of the
    years still kept stays, read-only, and with it the organization's row; a later deletion,
    once those years are over, takes them too. Each deletion is recorded outside the
    organization (an audit row of the system: who, when, what went, what is kept until when).
    `engine` is unused: the deletion never runs in a tenant transaction."""
    del engine
    stores = stores or Stores()
    today = today or datetime.now(UTC).date()
    with system_transaction(system) as conn:
        org = locked(conn, organization)
        if not org["offboarded_at"]:
            raise Refused(
                [f"{org['slug']} is not offboarded: write its export first (offboard --export DIR)"]
            )
        settings = _retention(org)
        if settings.legal_hold:
            raise NotYet(
                f"{org['slug']} is under a legal hold (settings retention.legal_hold): nothing of "
                "it is deleted until the hold is lifted"
            )
        allowed = deletable_from(conn, org["id"], settings)
        audit_until = audit_kept_through(conn, org["id"], settings)
        files = _stored_files(conn, org["id"])
    if allowed is not None and today < allowed:
        raise NotYet(
            f"{org['slug']}'s records are kept until {allowed - timedelta(days=1)} "
            f"(booking documents {settings.uploads_years} years, books "
            f"{settings.exports_years} years, from the end of the year of the latest): it may "
            f"be deleted from {allowed}"
        )
    keep_audit = audit_until is not None and today <= audit_until
    removed = _remove_files(stores, files)
    with system_transaction(system, write=True) as conn:
        with offboarding_step(conn, org["id"], "deleting"):
            rows = {
                table.name: _deleted_rows(conn, table, org["id"], by, keep_audit)
                for table in reversed(tenant_tables())
                if not (keep_audit and table in AUDIT_TRAIL)
            }
            kept = _kept(conn, org["id"], audit_until) if keep_audit else {}
            if not keep_audit:
                conn.execute(delete(organizations).where(organizations.c.id == org["id"]))
        deleted = Deleted(
            org["slug"], {k: v for k, v in rows.items() if v}, removed, kept, not keep_audit
        )
        if deleted.rows or deleted.files_removed or deleted.gone:
            conn.execute(
                insert(audit_log),
                [
                    _audit(
                        by,
                        "organization_deleted",
                        None,
                        org["slug"],
                        _record_of(deleted, org, settings, today),
                    )
                ],
            )
    return deleted


def _deleted_rows(conn: Connection, table: Table, org_id: int, by: str, recorded: bool) -> int:
    """Delete the organization's rows of `table`; how many. Where its audit trail stays
    (`recorded`), each deleted row the chain sealed is recorded as the retention path's deletion
    (db/audit_log.py), so `audit-verify` tells it from a rewrite."""
    statement = delete(table).where(table.c.organization_id == org_id)
    if not (recorded and table.name in SEALED_TABLES):
        return conn.execute(statement).rowcount
    ids = conn.execute(statement.returning(table.c.id)).scalars().all()
    for chunk in chunked(ids, 5000):
        record_retention_deletion(
            conn, org_id, by, table.name, chunk, "organization deleted after its retention"
        )
    return len(ids)


def deletion_lines(deleted: Deleted) -> list[str]:
    """What a deletion did and what it keeps, as the command and the launchpad say it."""
    if not (deleted.rows or deleted.files_removed or deleted.gone):
        lines = [f"{deleted.slug}: nothing more to delete"]
    else:
        lines = [
            f"{deleted.slug}: deleted {sum(deleted.rows.values())} rows and "
            f"{deleted.files_removed} files (recorded outside the organization: audit action "
            "organization_deleted)"
        ]
    lines += [
        f"{deleted.slug}: kept {kept['rows']} {table} rows through {kept['kept_through']} "
        "(books the law keeps), read-only, with the organization's row"
        for table, kept in deleted.kept.items()
    ]
    if deleted.gone:
        lines.append(f"{deleted.slug}: its row is deleted; nothing of it is kept")
    return lines


def _retention(org: dict) -> RetentionSettings:
    try:
        return retention_settings(org["slug"], org["settings"])
    except RetentionSettingsError as exc:
        raise Refused([str(exc)]) from None


def _remove_files(stores: Stores, files: list[tuple[str, str, str]]) -> int:
    removed = 0
    for _folder, store, store_key in files:
        target = getattr(stores, store)
        try:
            if store == "exports" and Path(store_key).is_file():
                Path(store_key).unlink()
            elif target is not None:
                target.remove(store_key)
            else:
                continue
            removed += 1
        except Exception:  # noqa: S112 - a file already gone is what the deletion wants
            continue
    return removed


def _kept(conn: Connection, org_id: int, until: date) -> dict[str, dict]:
    """What the deletion leaves, by table: its rows and the last day they are kept."""
    return {
        table.name: {
            "rows": conn.execute(
                select(func.count()).where(table.c.organization_id == org_id)
            ).scalar_one(),
            "kept_through": until.isoformat(),
        }
        for table in AUDIT_TRAIL
    }


def _record_of(deleted: Deleted, org: dict, settings: RetentionSettings, today: date) -> dict:
    """The deletion as the system's audit row keeps it, outside the organization."""
    return {
        "organization_id": org["id"],
        "deleted_on": today.isoformat(),
        "rows": deleted.rows,
        "files_removed": deleted.files_removed,
        "kept": deleted.kept,
        "organization_row": "deleted" if deleted.gone else "kept, offboarded and read-only",
        "retention": {
            "uploads_years": settings.uploads_years,
            "exports_years": settings.exports_years,
        },
    }
