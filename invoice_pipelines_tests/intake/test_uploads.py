"""The upload scan: waits for files to settle, deduplicates by content, batches per organization."""

import os
import time

from sqlalchemy import select

from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads


def _age(store, key, seconds):
    path = os.path.join(store.root, key)
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_file_is_registered_only_after_it_stopped_changing(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    key = store.put(org["slug"], "rechnung.xml", b"<Invoice/>")

    fresh = scan_uploads(db.engine, store, ScanState(), system=db.system_engine, settle_seconds=2)
    assert fresh.registered == 0 and fresh.waiting >= 1 and key in fresh.state.pending

    # still growing: a new size on the next look means wait again
    with open(os.path.join(store.root, key), "ab") as handle:
        handle.write(b" ")
    _age(store, key, 5)
    grown = scan_uploads(db.engine, store, fresh.state, system=db.system_engine, settle_seconds=2)
    assert grown.registered == 0

    settled = scan_uploads(db.engine, store, grown.state, system=db.system_engine, settle_seconds=2)
    assert settled.registered == 1
    batches = [b for b in settled.batches if b.organization_slug == org["slug"]]
    assert len(batches) == 1 and len(batches[0].document_ids) == 1
    assert store.list_inbox(org["slug"]) == []  # moved to the archive, not deleted
    with tenant_transaction(db.engine, org["id"]) as conn:
        row = (
            conn.execute(select(uploads).where(uploads.c.organization_id == org["id"]))
            .mappings()
            .one()
        )
    assert row["storage_key"].startswith(f"{org['slug']}/.archive/")
    assert store.read(row["storage_key"]) == b"<Invoice/> "


def test_duplicates_and_batches_and_no_second_dispatch(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    for i in range(5):
        store.put(org["slug"], f"inv-{i}.xml", f"<Invoice n='{i}'/>".encode())
        _age(store, f"{org['slug']}/inv-{i}.xml", 120)
    store.put(org["slug"], "inv-0-again.xml", b"<Invoice n='0'/>")
    _age(store, f"{org['slug']}/inv-0-again.xml", 120)
    store.put(org["slug"], ".hidden.part", b"partial")

    result = scan_uploads(db.engine, store, ScanState(), system=db.system_engine, batch_size=2)
    assert (result.registered, result.duplicates) == (5, 1)
    mine = [b for b in result.batches if b.organization_slug == org["slug"]]
    assert [len(b.document_ids) for b in mine] == [2, 2, 1]
    assert len({b.run_key for b in mine}) == 3
    with tenant_transaction(db.engine, org["id"]) as conn:
        dup = (
            conn.execute(
                select(uploads).where(
                    uploads.c.organization_id == org["id"], uploads.c.status == "duplicate"
                )
            )
            .mappings()
            .one()
        )
        ids = (
            select(incoming_invoices.c.id)
            .where(incoming_invoices.c.organization_id == org["id"])
            .order_by(incoming_invoices.c.id)  # without it, any order (seen under load)
        )
        assert conn.execute(ids).scalars().all() == sorted(i for b in mine for i in b.document_ids)
    assert (
        dup["filename"] == "inv-0-again.xml"
        and dup["incoming_invoice_id"] == mine[0].document_ids[0]
    )

    again = scan_uploads(db.engine, store, result.state, system=db.system_engine, batch_size=2)
    assert [b for b in again.batches if b.organization_slug == org["slug"]] == []
    assert [f.name for f in store.list_inbox(org["slug"])] == []  # .part files are never listed


def test_a_file_that_fails_to_register_does_not_stop_the_others(db, tmp_path):
    org = db.new_organization()

    class FlakyStore(LocalUploads):
        def digest(self, key):
            if key.endswith("bad.xml"):
                raise OSError("I/O error")
            return super().digest(key)

    store = FlakyStore(root=str(tmp_path))
    for name in ("bad.xml", "good.xml"):
        store.put(org["slug"], name, name.encode())
        _age(store, f"{org['slug']}/{name}", 120)
    result = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    assert result.registered == 1
    assert any("bad.xml" in e and "I/O error" in e for e in result.errors)
    # the bad file is still in the drop zone, nothing recorded for it
    assert [f.name for f in store.list_inbox(org["slug"])] == ["bad.xml"]


def test_crash_between_record_and_move_is_completed_not_duplicated(db, tmp_path):
    org = db.new_organization()

    class MoveFails(LocalUploads):
        def __init__(self, root: str, broken: bool = True) -> None:
            super().__init__(root)
            self.broken = broken

        def move(self, key, target_key):
            if self.broken:
                raise OSError("simulated crash before the move")
            super().move(key, target_key)

    store = MoveFails(root=str(tmp_path))
    store.put(org["slug"], "a.xml", b"<a/>")
    _age(store, f"{org['slug']}/a.xml", 120)
    first = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    assert first.registered == 1 and any("not yet archived" in e for e in first.errors)
    assert [f.name for f in store.list_inbox(org["slug"])] == ["a.xml"]

    healed = MoveFails(root=str(tmp_path), broken=False)
    second = scan_uploads(db.engine, healed, first.state, system=db.system_engine)
    assert (second.registered, second.duplicates, second.errors) == (0, 0, [])
    assert store.list_inbox(org["slug"]) == []
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = (
            conn.execute(select(uploads).where(uploads.c.organization_id == org["id"]))
            .mappings()
            .all()
        )
    assert len(rows) == 1 and healed.read(rows[0]["storage_key"]) == b"<a/>"


def test_documents_whose_run_died_are_dispatched_again_once_per_window(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    store.put(org["slug"], "a.xml", b"<a/>")
    _age(store, f"{org['slug']}/a.xml", 120)
    first = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    (batch,) = [b for b in first.batches if b.organization_slug == org["slug"]]

    def keys(result):
        return [b.run_key for b in result.batches if b.organization_slug == org["slug"]]

    # nobody processed it; 20 minutes later it is sent again under a new run key, from a tick half
    # a second before a multiple of the 15 minutes on the clock
    later = (time.time() + 20 * 60) // 900 * 900 + 899.5
    again = scan_uploads(db.engine, store, first.state, system=db.system_engine, now=later)
    (retry,) = [b for b in again.batches if b.organization_slug == org["slug"]]
    assert retry.document_ids == batch.document_ids and retry.run_key != batch.run_key
    # the ticks after it, also the one past the clock's multiple, keep that key for 15 minutes
    state = again.state
    for seconds in (1, 60, 899):
        tick = scan_uploads(
            db.engine,
            store,
            ScanState.from_json(state.to_json()),
            system=db.system_engine,
            now=later + seconds,
        )
        assert keys(tick) == [retry.run_key]
        state = tick.state
    next_window = scan_uploads(db.engine, store, state, system=db.system_engine, now=later + 900)
    assert keys(next_window) != [retry.run_key] and len(keys(next_window)) == 1


def test_registration_stops_at_the_time_budget_and_resumes_next_tick(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    for i in range(3):
        store.put(org["slug"], f"{i}.xml", f"<a n='{i}'/>".encode())
        _age(store, f"{org['slug']}/{i}.xml", 120)
    out_of_time = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, time_budget_s=0
    )
    assert out_of_time.registered == 0 and out_of_time.waiting == 3
    assert len(store.list_inbox(org["slug"])) == 3  # untouched, nothing lost
    later = scan_uploads(db.engine, store, out_of_time.state, system=db.system_engine)
    assert later.registered == 3 and store.list_inbox(org["slug"]) == []
