"""Hostile drop zones through the real upload scan and intake: a file or the archive folder swapped
for a link into another tenant's folder, files over the upload limit (at registration, grown
afterwards, in the CLI), a batch of large files, and a tenant with thousands of files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices, processing_errors, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.einvoice.read import ParseOutcome, failed
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents, retry_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.limits import INTAKE_READ_AHEAD_BYTES, MiB
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_bad_input import own_invoice

SCRIPT = Path(sys.executable).with_name("invoice-pipelines")


class SeeingParser:
    """parse_document in this process, remembering every byte string it was handed."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def parse_many(self, items: list[tuple[bytes, str]]) -> list[ParseOutcome]:
        self.seen += [data for data, _ in items]
        return [parse_document(data, filename) for data, filename in items]


def _age(root: str, key: str, seconds: float = 120) -> None:
    past = time.time() - seconds
    os.utime(os.path.join(root, key), (past, past))


def _drop(store: LocalUploads, slug: str, name: str, data: bytes) -> str:
    key = store.put(slug, name, data)
    _age(store.root, key)
    return key


def _rows(db, org_id: int, table=uploads) -> list[dict]:
    with tenant_transaction(db.engine, org_id) as conn:
        found = conn.execute(select(table).where(table.c.organization_id == org_id)).mappings()
        return [dict(r) for r in found]


def _errors(db, org_id: int, doc_id: int) -> list[str]:
    with tenant_transaction(db.engine, org_id) as conn:
        return list(
            conn.execute(
                select(processing_errors.c.message).where(
                    processing_errors.c.incoming_invoice_id == doc_id
                )
            ).scalars()
        )


def _regular_files(folder: Path) -> dict[str, bytes]:
    """Every regular file under a folder (links not followed), by path relative to it."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path.relative_to(folder))] = path.read_bytes()
    return found


@pytest.fixture
def tenants(db, tmp_path):
    """acme (the attacker's drop zone) and bob, whose invoice is registered and archived."""
    acme, bob = db.new_organization(), db.new_organization()
    store = LocalUploads(str(tmp_path))
    secret = own_invoice("BOB-SECRET-1")
    _drop(store, bob["slug"], "bob.xml", secret)
    assert scan_uploads(db.engine, store, ScanState(), system=db.system_engine).errors == []
    (row,) = _rows(db, bob["id"])
    bob_file = tmp_path / row["storage_key"]
    assert bob_file.read_bytes() == secret
    return acme, bob, store, secret, bob_file


def _acme_never_got(db, acme, store, secret) -> None:
    digest = hashlib.sha256(secret).hexdigest()
    assert all(r["content_hash"] != digest for r in _rows(db, acme["id"]))
    assert secret not in _regular_files(Path(store.root) / acme["slug"]).values()


class SwapAfterListing(LocalUploads):
    """Between the sensor's look at the drop zone and its read, the file becomes a link."""

    def __init__(self, root: str, swap_name: str, swap_to: str) -> None:
        super().__init__(root)
        self.swap_name, self.swap_to = swap_name, swap_to

    def list_inbox(self, organization_slug, **options):
        listed = super().list_inbox(organization_slug, **options)
        path = Path(self.root, organization_slug, self.swap_name)
        if path.exists():
            path.unlink()
            path.symlink_to(self.swap_to)
        return listed


class SwapAfterHashing(LocalUploads):
    """Between the sensor's read (content hash) and the move into the archive, the file becomes a
    link."""

    def __init__(self, root: str, swap_to: str) -> None:
        super().__init__(root)
        self.swap_to = swap_to

    def digest(self, key, **options):
        found = super().digest(key, **options)
        path = Path(self.root, key)
        path.unlink()
        path.symlink_to(self.swap_to)
        return found


def test_a_file_swapped_for_a_link_after_the_look_is_refused_and_bob_keeps_his_file(db, tenants):
    acme, bob, store, secret, bob_file = tenants
    _drop(store, acme["slug"], "x.xml", own_invoice("ACME-1"))
    swapping = SwapAfterListing(root=store.root, swap_name="x.xml", swap_to=str(bob_file))
    result = scan_uploads(db.engine, swapping, ScanState(), system=db.system_engine)
    assert bob_file.read_bytes() == secret  # not moved, not changed
    _acme_never_got(db, acme, store, secret)
    assert result.registered == 0 and _rows(db, acme["id"]) == []
    assert any(
        e.startswith(f"{acme['slug']}/x.xml") and "symbolic link" in e for e in result.errors
    )

    # the next look sees the link itself: skipped and reported again, still nothing recorded
    again = scan_uploads(db.engine, store, result.state, system=db.system_engine)
    assert any("x.xml: skipped" in e and "symbolic link" in e for e in again.errors)
    assert _rows(db, acme["id"]) == [] and bob_file.read_bytes() == secret


def test_a_file_swapped_after_it_was_hashed_is_not_moved_nor_read(db, tenants):
    acme, bob, store, secret, bob_file = tenants
    _drop(store, acme["slug"], "x.xml", own_invoice("ACME-1"))
    swapping = SwapAfterHashing(root=store.root, swap_to=str(bob_file))
    result = scan_uploads(db.engine, swapping, ScanState(), system=db.system_engine)
    assert bob_file.read_bytes() == secret
    # recorded (the bytes hashed were acme's own), but the link is not moved into the archive
    assert any("x.xml: recorded, not yet archived" in e for e in result.errors)
    (doc,) = _rows(db, acme["id"], incoming_invoices)

    parser = SeeingParser()
    organization = find_organization(db.engine, acme["slug"])
    summary = process_documents(
        db.engine, store, organization, [doc["id"]], parser=parser, ocr=None
    )
    assert summary.outcomes["FAILED"] == 1
    assert secret not in parser.seen
    _acme_never_got(db, acme, store, secret)
    assert bob_file.read_bytes() == secret


def test_an_archive_folder_swapped_for_a_link_to_another_tenant_is_not_followed(db, tenants):
    acme, bob, store, secret, bob_file = tenants
    root = Path(store.root)
    _drop(store, acme["slug"], "a.xml", own_invoice("ACME-1"))
    assert scan_uploads(db.engine, store, ScanState(), system=db.system_engine).errors == []
    (doc,) = _rows(db, acme["id"], incoming_invoices)
    (upload,) = _rows(db, acme["id"])
    acme_archive = root / acme["slug"] / ".archive"
    # acme's archive becomes a link to bob's, where a file of bob's carries the name acme's record
    # points at
    (root / acme["slug"] / "old-archive").mkdir()
    acme_archive.rename(root / acme["slug"] / "old-archive" / "x")
    acme_archive.symlink_to(bob_file.parent, target_is_directory=True)
    planted = bob_file.parent / Path(upload["storage_key"]).name
    planted.write_bytes(secret)
    bob_before = _regular_files(root / bob["slug"])

    parser = SeeingParser()
    organization = find_organization(db.engine, acme["slug"])
    summary = process_documents(
        db.engine, store, organization, [doc["id"]], parser=parser, ocr=None
    )
    assert summary.outcomes["FAILED"] == 1 and secret not in parser.seen
    (message,) = _errors(db, acme["id"], doc["id"])
    assert "could not be read" in message and "symbolic link" in message

    # a new upload of acme's is not moved through the link into bob's folder
    _drop(store, acme["slug"], "b.xml", own_invoice("ACME-2"))
    result = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    assert any("b.xml: recorded, not yet archived" in e for e in result.errors)
    assert _regular_files(root / bob["slug"]) == bob_before
    assert (root / acme["slug"] / "b.xml").is_file()


def test_a_tenant_folder_that_is_a_link_to_another_tenant_is_not_scanned(db, tmp_path):
    acme, bob = db.new_organization(), db.new_organization()
    store = LocalUploads(str(tmp_path))
    _drop(store, bob["slug"], "bob.xml", own_invoice("BOB-2"))
    (tmp_path / acme["slug"]).symlink_to(tmp_path / bob["slug"], target_is_directory=True)
    ours = {acme["slug"], bob["slug"]}
    result = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations=ours
    )
    assert _rows(db, acme["id"]) == []  # bob's upload is not acme's
    assert [u["filename"] for u in _rows(db, bob["id"])] == ["bob.xml"]  # and bob is served
    assert any(e.startswith(f"{acme['slug']}/: drop zone not read") for e in result.errors)


def test_a_file_over_the_limit_is_failed_at_registration_without_hashing_and_the_rest_go_on(
    db, tmp_path, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_MAX_UPLOAD_BYTES", str(1 * MiB))
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    _drop(store, org["slug"], "huge-scan.pdf", b"%PDF-1.7\n" + b"\0" * (MiB + MiB // 2))
    _drop(store, org["slug"], "good.xml", own_invoice("OK-1"))
    result = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    assert (result.registered, result.errors) == (2, [])
    assert store.list_inbox(org["slug"]) == []  # both archived; the original is kept
    docs = {d["upload_id"]: d for d in _rows(db, org["id"], incoming_invoices)}
    by_name = {u["filename"]: docs[u["id"]] for u in _rows(db, org["id"])}
    huge, good = by_name["huge-scan.pdf"], by_name["good.xml"]
    assert (huge["status"], good["status"]) == ("FAILED", "UPLOADED")
    assert _errors(db, org["id"], huge["id"]) == [
        "the file is 1.5 MiB; the limit is 1 MiB (INVOICE_PIPELINES_MAX_UPLOAD_BYTES)"
    ]
    dispatched = [
        i for b in result.batches if b.organization_slug == org["slug"] for i in b.document_ids
    ]
    assert good["id"] in dispatched and huge["id"] not in dispatched

    # retried, it goes through intake with the good one: refused again by its recorded size
    # (never opened), while the good one is read and validated
    retry_documents(db.engine, org["id"], [huge["id"]])
    parser = SeeingParser()
    organization = find_organization(db.engine, org["slug"])
    summary = process_documents(
        db.engine, store, organization, [huge["id"], good["id"]], parser=parser, ocr=None
    )
    assert (summary.outcomes["VALIDATED"], summary.outcomes["FAILED"]) == (1, 1)
    assert _errors(db, org["id"], huge["id"])[-1] == (
        "the file is 1.5 MiB; the limit is 1 MiB (INVOICE_PIPELINES_MAX_UPLOAD_BYTES); "
        "the original is kept"
    )
    assert all(len(data) <= MiB for data in parser.seen)


def test_an_original_that_grew_past_the_limit_fails_alone(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    for n in range(3):
        _drop(store, org["slug"], f"{n}.xml", own_invoice(f"GROW-{n}"))
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    (grown,) = [u for u in _rows(db, org["id"]) if u["filename"] == "1.xml"]
    # recorded at its small size; by the time the intake reads it, it is 64 KiB
    (tmp_path / grown["storage_key"]).write_bytes(b"<x>" + b" " * 65536 + b"</x>")

    parser = SeeingParser()
    organization = find_organization(db.engine, org["slug"])
    summary = process_documents(
        db.engine, store, organization, ids, parser=parser, ocr=None, max_bytes=32 * 1024
    )
    assert (summary.outcomes["VALIDATED"], summary.outcomes["FAILED"]) == (2, 1)
    doc_id = grown["incoming_invoice_id"]
    # it is read within the size recorded at registration (the read-ahead counts on it), so it
    # is refused as changed, after one byte more than recorded, whatever the limit
    [error] = _errors(db, org["id"], doc_id)
    assert error.startswith("the archived original is larger than the ")
    assert error.endswith(
        "bytes registered; it changed after it was received and was not read; the original is kept"
    )
    assert all(len(data) <= 32 * 1024 for data in parser.seen)


class QuickParser:
    """Fails every document at once, remembering how many bytes each call was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def parse_many(self, items: list[tuple[bytes, str]]) -> list[ParseOutcome]:
        self.calls.append((len(items), sum(len(data) for data, _ in items)))
        return [failed("unknown", "parse", "not an invoice", digest="") for _ in items]


def test_a_batch_of_large_files_is_not_held_in_memory_at_once(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    folder = tmp_path / org["slug"]
    folder.mkdir()
    n, size = 60, 2 * MiB  # 120 MiB in all, about twice the read-ahead
    for i in range(n):
        path = folder / f"scan-{i:03d}.pdf"
        path.write_bytes(b"%PDF-1.4\n" + i.to_bytes(4, "big") * (size // 4))
        _age(store.root, f"{org['slug']}/{path.name}")
    scan = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        max_files_per_tick=n,
        only_organizations={org["slug"]},
    )
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert len(ids) == n

    parser = QuickParser()
    tracemalloc.start()
    try:
        organization = find_organization(db.engine, org["slug"])
        summary = process_documents(db.engine, store, organization, ids, parser=parser, ocr=None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.outcomes["FAILED"] == n  # every one recorded
    assert sum(count for count, _ in parser.calls) == n
    assert max(held for _, held in parser.calls) <= INTAKE_READ_AHEAD_BYTES
    # the whole batch would be 120 MiB; what is held at once stays near the read-ahead
    assert peak < INTAKE_READ_AHEAD_BYTES + 16 * MiB


def test_a_tenant_with_thousands_of_files_keeps_the_cursor_small_and_the_others_served(
    db, tmp_path
):
    flood, other = db.new_organization(), db.new_organization()
    store = LocalUploads(str(tmp_path))
    folder = tmp_path / flood["slug"]
    folder.mkdir()
    n = 600
    for i in range(n):
        (folder / f"f{i:04d}.xml").write_bytes(b"<x n='%d'/>" % i)
    start = time.time()
    _drop(store, other["slug"], "other.xml", b"<other/>")

    # the flood arrived just now: every file waits for a second look
    ours = {flood["slug"], other["slug"]}
    first = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        max_files_per_tick=200,
        only_organizations=ours,
        now=start,
    )
    share = 100  # 200 per tick, two organizations
    cursor = json.dumps(first.state.to_json())
    assert len(first.state.pending) <= share and len(cursor) < 100 * share
    assert first.by_organization.get(other["slug"]) == [1, 0]  # not starved by the flood

    # tick after tick the flood is worked through, the cursor never growing past the share
    state, registered = first.state, 0
    for tick in range(1, 12):
        result = scan_uploads(
            db.engine,
            store,
            state,
            system=db.system_engine,
            max_files_per_tick=200,
            only_organizations=ours,
            now=start + 5 * tick,
        )
        assert len(result.state.pending) <= share
        registered += result.by_organization.get(flood["slug"], [0, 0])[0]
        state = result.state
    assert registered == n and store.list_inbox(flood["slug"]) == []


def test_listing_a_drop_zone_stops_at_the_limit(tmp_path):
    store = LocalUploads(str(tmp_path))
    (tmp_path / "acme").mkdir()
    for i in range(50):
        (tmp_path / "acme" / f"{i}.xml").write_bytes(b"<x/>")
    assert len(store.list_inbox("acme", limit=10)) == 10
    assert len(store.list_inbox("acme")) == 50


def _run_cli(path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    completed = subprocess.run(
        [str(SCRIPT), "parse", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,  # only a guard: a hanging command must not hang the suite
        env={**os.environ, **env},
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_cli_refuses_a_file_over_the_limit_without_reading_it(tmp_path):
    big = tmp_path / "big.xml"
    big.write_bytes(own_invoice("CLI-1") + b"<!--" + b" " * 4096 + b"-->")
    code, out, err = _run_cli(big, {"INVOICE_PIPELINES_MAX_UPLOAD_BYTES": "4096"})
    assert code == 1, err
    result = json.loads(out)
    assert result["status"] == "FAILED"
    (message,) = [e["message"] for e in result["errors"]]
    assert message.startswith("the file is ") and message.endswith(
        " KiB; the limit is 4 KiB (INVOICE_PIPELINES_MAX_UPLOAD_BYTES)"
    )
    assert "Traceback" not in err


def test_cli_refuses_a_fifo_instead_of_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "invoice.xml"
    os.mkfifo(fifo)
    code, out, err = _run_cli(fifo, {})
    assert code == 2 and out == ""
    assert "not a regular file" in err and "Traceback" not in err
