"""Benchmark: archive retention over many organizations with old archived uploads.

Seeds `--orgs` fresh organizations, each with `--uploads` EXPORTED incoming invoices whose archived
originals (small files in a temporary local upload store) are old enough to go, plus as many
recent ones that must stay (written in bulk: seeding is not measured). Then times
`purge_archives` over those organizations as one housekeeping run does it, and a second run that
must find nothing. The files are deleted afterwards; the organizations stay (use a scratch
database): deleting an organization with many uploads is slow, because no index serves the foreign
keys that point at `uploads` (`uploads.duplicate_of_upload_id`, `incoming_invoices.upload_id`),
so PostgreSQL scans `uploads` once per deleted row.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from invoice_pipelines.cli_args import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--orgs", type=positive_int, default=100, help="organizations")
    parser.add_argument(
        "--uploads",
        type=positive_int,
        default=100,
        help="old uploads per organization (as many new ones)",
    )


def _seed(engine, root: Path, org_id: int, slug: str, n: int) -> None:
    from sqlalchemy import insert, select

    from invoice_pipelines.db.tables import incoming_invoices, uploads
    from invoice_pipelines.db.tenancy import tenant_transaction

    year = datetime.now(UTC).year
    old, new = datetime(year - 12, 3, 1, tzinfo=UTC), datetime(year - 1, 3, 1, tzinfo=UTC)
    folder = root / slug / ".archive"
    folder.mkdir(parents=True)
    docs, files = [], []
    for i in range(2 * n):
        when = old if i < n else new
        digest = hashlib.sha256(f"{slug}-{i}".encode()).hexdigest()
        key = f"{slug}/.archive/{digest[:16]}-1-invoice-{i}.xml"
        (root / key).write_bytes(b"<Invoice/>")
        docs.append(
            {
                "organization_id": org_id,
                "status": "EXPORTED",
                "status_changed_at": when,
                "content_hash": digest,
                "created_at": when,
            }
        )
        files.append((key, digest, when))
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(insert(incoming_invoices), docs)
        ids = conn.scalars(
            select(incoming_invoices.c.id)
            .where(incoming_invoices.c.organization_id == org_id)
            .order_by(incoming_invoices.c.id)
        ).all()
        conn.execute(
            insert(uploads),
            [
                {
                    "organization_id": org_id,
                    "filename": key.rsplit("/", 1)[-1],
                    "storage_key": key,
                    "size_bytes": 10,
                    "content_hash": digest,
                    "incoming_invoice_id": doc_id,
                    "created_at": when,
                }
                for (key, digest, when), doc_id in zip(files, ids, strict=True)
            ],
        )


LIMIT_METHOD = (
    "the same number of archived files of the same size removed with os.unlink, then one UPDATE "
    "marking the rows the run marked (purged_at, purge_result; rolled back), on the same "
    "database and file system right after the run: no candidate reads, no retention rules, no "
    "transaction per organization, no audit rows"
)


def _floor(engine, folder: Path, org_ids: list[int], files: int) -> dict:
    """Unlink `files` scratch files like the archived ones, then mark the run's purged rows
    again in one statement (rolled back): seconds, rows, database."""
    from sqlalchemy import update

    from invoice_pipelines.db.tables import uploads
    from invoice_pipelines_devtools.bench.limit import current_database, rolled_back

    folder.mkdir(parents=True)
    paths = [folder / f"{i:08d}-invoice.xml" for i in range(files)]
    for path in paths:
        path.write_bytes(b"<Invoice/>")
    mark = (
        update(uploads)
        .where(uploads.c.organization_id.in_(org_ids), uploads.c.purged_at.is_not(None))
        .values(purged_at=datetime.now(UTC), purge_result="removed")
    )
    with rolled_back(engine) as conn:
        database = current_database(conn)
        started = time.perf_counter()
        for path in paths:
            os.unlink(path)
        rows = conn.execute(mark).rowcount
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "database": database}


def run(args: argparse.Namespace) -> dict:
    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tenancy import find_organizations
    from invoice_pipelines.housekeeping.domain.archive import purge_archives
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines_devtools.bench.limit import limit_fields
    from invoice_pipelines_devtools.bench.scratch import scratch_organizations

    ensure_migrated(make_engine(owner=True))
    engine = make_engine()
    system = make_system_engine()
    root = Path(tempfile.mkdtemp(prefix="bench-housekeeping-"))
    slugs, org_ids, named = scratch_organizations(system, "bench-hk", args.orgs)
    try:
        t0 = time.perf_counter()
        for org_id, slug in zip(org_ids, slugs, strict=True):
            _seed(engine, root, org_id, slug, args.uploads)
        seed_seconds = time.perf_counter() - t0
        uploads_store = LocalUploads(str(root))
        export_store = LocalFiles(str(root / "exports"))

        t0 = time.perf_counter()
        # as the job and the command do: the organizations found once, then their retention
        outcomes = purge_archives(
            engine, system, uploads_store, export_store, find_organizations(system, slugs)[0],
            requested_by="bench",
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        again = purge_archives(
            engine, system, uploads_store, export_store, find_organizations(system, slugs)[0],
            requested_by="bench",
        )  # fmt: skip
        second_seconds = time.perf_counter() - t0
        removed = sum(o.uploads_removed for o in outcomes)
        left = sum(1 for _ in root.glob("*/.archive/*"))
        limit = _floor(engine, root / "floor", org_ids, removed)
        result = {
            "scenario": "housekeeping",
            "dialect": engine.dialect.name,
            "organizations": args.orgs,
            "old_uploads": args.orgs * args.uploads,
            "uploads_removed": removed,
            "files_left": left,
            "errors": sum(len(o.errors) + bool(o.refused) for o in outcomes),
            "seconds": round(seconds, 3),
            "uploads_removed_per_second": round(removed / seconds, 1) if seconds else None,
            "second_run_seconds": round(second_seconds, 3),
            "second_run_removed": sum(o.changed for o in again),
            "seed_seconds": round(seed_seconds, 3),
            "organizations_left": named,
        }
        return limit_fields(
            result,
            "uploads_removed_per_second",
            removed / limit["seconds"] if limit["seconds"] else None,
            LIMIT_METHOD,
            limit_seconds=round(limit["seconds"], 3),
            limit_rows=limit["rows"],
            database_name=limit["database"],
            limit_database=limit["database"],
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
