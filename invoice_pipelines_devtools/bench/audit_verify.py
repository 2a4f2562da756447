"""Benchmark: `audit-verify` over many organizations (issue 83), as the daily `archive_unchanged`
check runs it: each organization's stored originals hashed again, its keyed audit chain recomputed
and compared with every chain head anchored beside the archive, the rows written since sealed and
the new head anchored.

Seeds `--organizations` fresh organizations, each with `--rows` audit rows, one supplier with
its register history (`--rows` changes) and one original in a temporary local upload store (written
in bulk: seeding is not measured); the export store holding the anchors is a temporary folder too.
Then times three rounds over every organization, one `verify_archive` each: the first seals
everything and anchors the first head; the second finds nothing new (the steady state of the daily
check); the third comes after one new audit row per organization (seal one, anchor one). Prints
seconds per organization for each round. The organizations stay (use a scratch database); the
files are deleted afterwards.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from invoice_pipelines.cli_args import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--organizations", type=positive_int, default=200, help="organizations")
    parser.add_argument(
        "--rows", type=positive_int, default=20, help="audit rows and supplier changes each"
    )


def _seed(engine, root: Path, org_id: int, slug: str, rows: int, when: datetime) -> None:
    from sqlalchemy import insert

    from invoice_pipelines.db.tables import audit_log, supplier_changes, suppliers, uploads
    from invoice_pipelines.db.tenancy import tenant_transaction

    data = f"<Invoice>{slug}</Invoice>".encode()
    key = f"{slug}/.archive/invoice-1.xml"
    (root / "uploads" / slug / ".archive").mkdir(parents=True)
    (root / "uploads" / key).write_bytes(data)
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(
            insert(uploads).values(
                organization_id=org_id, filename="invoice-1.xml", storage_key=key,
                size_bytes=len(data), content_hash=hashlib.sha256(data).hexdigest(),
                created_at=when,
            )
        )  # fmt: skip
        supplier = conn.execute(
            insert(suppliers)
            .values(
                organization_id=org_id, name="Bench Lieferant GmbH", name_key="bench lieferant",
                origin="person", updated_by="bench",
            )
            .returning(suppliers.c.id)
        ).scalar_one()  # fmt: skip
        conn.execute(
            insert(supplier_changes),
            [
                {"organization_id": org_id, "supplier_id": supplier, "action": "change",
                 "changed_by": "bench", "reason": f"change {i}", "after": {"i": i},
                 "changed_at": when}
                for i in range(rows)
            ],
        )  # fmt: skip
        conn.execute(
            insert(audit_log),
            [
                {"organization_id": org_id, "created_by": "bench", "action": "bench.seeded",
                 "entity_type": "bench", "entity_id": str(i), "details": {"i": i},
                 "created_at": when}
                for i in range(rows)
            ],
        )  # fmt: skip


def _round(engine, stores, orgs, keyring, now) -> tuple[float, list]:
    from invoice_pipelines.audit.domain.verify import verify_archive

    started = time.perf_counter()
    reports = [verify_archive(engine, stores, org, now=now, keyring=keyring) for org in orgs]
    return time.perf_counter() - started, reports


def run(args: argparse.Namespace) -> dict:
    from sqlalchemy import insert

    from invoice_pipelines.audit.domain.seal_keys import keyring_from
    from invoice_pipelines.db.engine import make_engine, make_system_engine
    from invoice_pipelines.db.migrate import ensure_migrated
    from invoice_pipelines.db.tables import audit_log
    from invoice_pipelines.db.tenancy import find_organizations, system_transaction
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines_devtools.bench.scratch import scratch_organizations

    ensure_migrated(make_engine(owner=True))
    engine, system = make_engine(), make_system_engine()
    root = Path(tempfile.mkdtemp(prefix="bench-audit-verify-"))
    slugs, org_ids, named = scratch_organizations(system, "bench-av", args.organizations)
    keyring = keyring_from(uuid.uuid4().hex * 2, "bench")  # a key of this run only
    when = datetime.now(UTC) - timedelta(hours=1)
    try:
        t0 = time.perf_counter()
        for org_id, slug in zip(org_ids, slugs, strict=True):
            _seed(engine, root, org_id, slug, args.rows, when)
        seed_seconds = time.perf_counter() - t0
        stores = {
            "upload_store": LocalUploads(str(root / "uploads")),
            "document_store": LocalFiles(str(root / "documents"), area="documents"),
            "export_store": LocalFiles(str(root / "exports")),
        }
        orgs = find_organizations(system, slugs)[0]
        now = datetime.now(UTC) + timedelta(minutes=10)
        first, first_reports = _round(engine, stores, orgs, keyring, now)
        steady, steady_reports = _round(engine, stores, orgs, keyring, now)
        with system_transaction(system, write=True) as conn:
            conn.execute(
                insert(audit_log),
                [
                    {"organization_id": i, "created_by": "bench", "action": "bench.later",
                     "created_at": when}
                    for i in org_ids
                ],
            )  # fmt: skip
        grown, grown_reports = _round(engine, stores, orgs, keyring, now)
        n = len(orgs)
        everything = first_reports + steady_reports + grown_reports
        return {
            "scenario": "audit-verify",
            "dialect": engine.dialect.name,
            "organizations": n,
            "audit_rows_each": args.rows,
            "supplier_changes_each": args.rows,
            "seals_each": first_reports[0].chain.head_position if first_reports else 0,
            "failed": sum(not r.passed for r in everything),
            "first_seconds_per_organization": round(first / n, 5),
            "steady_seconds_per_organization": round(steady / n, 5),
            "one_new_row_seconds_per_organization": round(grown / n, 5),
            "first_seconds": round(first, 3),
            "steady_seconds": round(steady, 3),
            "one_new_row_seconds": round(grown, 3),
            "anchors_each": max(r.chain.anchors_checked for r in grown_reports) + 1,
            "headline": "steady_seconds_per_organization",
            "seed_seconds": round(seed_seconds, 3),
            "organizations_left": named,
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
