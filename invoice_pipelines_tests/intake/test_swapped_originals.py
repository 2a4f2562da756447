"""Read-ahead bounded by what is read (issue 38 item 2): a tenant that can write its own archive
swaps small registered originals for large files. The intake reads each original within the
size recorded at registration, so a swapped file is refused after at most one byte more, never
held whole, and the document says why."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from sqlalchemy import select

from invoice_pipelines.db.tables import processing_errors, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.limits import MiB
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_hostile_uploads import QuickParser, _drop


def test_originals_swapped_after_registration_are_refused_unread(db, tmp_path) -> None:
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    n = 24
    for i in range(n):
        _drop(store, org["slug"], f"small-{i:02d}.pdf", b"%PDF-1.4\n" + bytes([i]) * 100)
    scan = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        max_files_per_tick=n,
        only_organizations={org["slug"]},
    )
    ids = [i for b in scan.batches for i in b.document_ids]
    assert len(ids) == n
    with tenant_transaction(db.engine, org["id"]) as conn:
        keys = conn.execute(
            select(uploads.c.storage_key).where(uploads.c.organization_id == org["id"])
        ).scalars()
        archived = [Path(store.root) / key for key in keys]
    swapped = archived[: n // 2]
    for path in swapped:  # 16 MiB each: 192 MiB if they were read
        path.write_bytes(b"%PDF-1.4\n" + b"\0" * (16 * MiB))

    parser = QuickParser()
    tracemalloc.start()
    try:
        organization = find_organization(db.engine, org["slug"])
        summary = process_documents(db.engine, store, organization, ids, parser=parser, ocr=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.outcomes["FAILED"] == n  # every one recorded (QuickParser fails the rest)
    # only the untouched originals reached the parser, at their registered size
    assert sum(count for count, _ in parser.calls) == n - len(swapped)
    assert max(held for _, held in parser.calls) <= n * 110
    assert peak < 16 * MiB  # not even one swapped file was held whole
    with tenant_transaction(db.engine, org["id"]) as conn:
        messages = conn.execute(
            select(processing_errors.c.message).where(
                processing_errors.c.organization_id == org["id"],
                processing_errors.c.message.like("%changed after it was received%"),
            )
        ).scalars()
        assert len(list(messages)) == len(swapped)
