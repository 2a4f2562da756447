"""Documents in the database: one status function, optimistic locking, duplicates, stats, stuck."""

import threading
from datetime import timedelta

import pytest

from invoice_pipelines.core.lifecycle import InvalidTransition, Status
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.intake.incoming_invoices import (
    ErrorRecord,
    StaleDocument,
    change_status,
    errors_of,
    load_refs,
    organization_stats,
    register_upload,
    stuck_documents,
)


def _register(db, org, name="a.xml", content_hash="h1"):
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        return register_upload(
            conn,
            organization_id=org["id"],
            filename=name,
            storage_key=f"{org['slug']}/{name}",
            content_hash=content_hash,
            size_bytes=10,
        )


def _ref(db, org, doc_id):
    with tenant_transaction(db.engine, org["id"]) as conn:
        return load_refs(conn, org["id"], [doc_id])[doc_id]


def test_same_content_twice_is_one_document_and_a_duplicate_upload(db):
    org = db.new_organization()
    first = _register(db, org, "a.xml", "same")
    second = _register(db, org, "copy-of-a.xml", "same")
    assert not first.duplicate and second.duplicate
    assert second.document_id == first.document_id
    assert second.upload_id != first.upload_id
    # another organization may upload the same bytes: its own document
    other = _register(db, db.new_organization(), "a.xml", "same")
    assert not other.duplicate and other.document_id != first.document_id


def test_status_changes_bump_version_and_record_errors(db):
    org = db.new_organization()
    doc = _register(db, org).document_id
    ref = _ref(db, org, doc)
    assert (ref.status, ref.processing_version) == (Status.UPLOADED, 0)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ref = change_status(conn, ref, Status.PARSED, fields={"invoice_number": "R-1"})
        ref = change_status(
            conn,
            ref,
            Status.FAILED,
            errors=[ErrorRecord("rules", "net + VAT != gross", "BR-CO-15")],
        )
    assert (ref.status, ref.processing_version) == (Status.FAILED, 2)
    with tenant_transaction(db.engine, org["id"]) as conn:
        errors = errors_of(conn, doc)
        stored = load_refs(conn, org["id"], [doc])[doc]
    assert stored == ref
    assert [(e["stage"], e["rule_id"], e["processing_version"]) for e in errors] == [
        ("rules", "BR-CO-15", 2)
    ]


def test_invalid_transition_is_refused_and_changes_nothing(db):
    org = db.new_organization()
    doc = _register(db, org).document_id
    ref = _ref(db, org, doc)
    with pytest.raises(InvalidTransition, match="from UPLOADED to EXPORTED"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            change_status(conn, ref, Status.EXPORTED)
    assert _ref(db, org, doc) == ref


def test_concurrent_writer_loses_cleanly(db):
    org = db.new_organization()
    doc = _register(db, org).document_id
    seen = _ref(db, org, doc)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        change_status(conn, seen, Status.PARSED)
    # a second worker that read the same version must not overwrite the first one's change
    with pytest.raises(StaleDocument, match="expected UPLOADED v0, found PARSED v1"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            change_status(conn, seen, Status.FAILED)
    assert _ref(db, org, doc).status == Status.PARSED


def test_racing_threads_exactly_one_wins(db):
    org = db.new_organization()
    doc = _register(db, org).document_id
    seen = _ref(db, org, doc)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def worker(target):
        barrier.wait()
        try:
            with tenant_transaction(db.engine, org["id"], write=True) as conn:
                change_status(conn, seen, target)
            outcomes.append("won")
        except StaleDocument:
            outcomes.append("stale")

    threads = [
        threading.Thread(target=worker, args=(t,)) for t in (Status.PARSED, Status.FAILED) * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["stale", "stale", "stale", "won"]
    assert _ref(db, org, doc).processing_version == 1


def test_stats_and_stuck_documents(db):
    org = db.new_organization()
    docs = [_register(db, org, f"{i}.xml", f"h{i}").document_id for i in range(4)]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        refs = load_refs(conn, org["id"], docs)
        r = change_status(conn, refs[docs[0]], Status.PARSED, fields={"processing_seconds": 0.5})
        r = change_status(conn, r, Status.VALIDATED)
        change_status(conn, r, Status.EXPORTED)
        change_status(conn, refs[docs[1]], Status.FAILED, fields={"processing_seconds": 1.5})
    with tenant_transaction(db.engine, org["id"]) as conn:
        stats = organization_stats(conn, org["id"])
    assert stats["total"] == 4
    assert stats["by_status"]["EXPORTED"] == 1 and stats["by_status"]["UPLOADED"] == 2
    assert stats["exported_rate"] == 25.0 and stats["failed_rate"] == 25.0
    assert stats["avg_processing_seconds"] == 1.0

    with system_transaction(db.engine) as conn:
        assert [
            d
            for d in stuck_documents(conn, older_than=timedelta(minutes=5))
            if d["slug"] == org["slug"]
        ] == []
        later = stuck_documents(conn, older_than=timedelta(minutes=5), now=_in_minutes(6))
    assert sorted(d["id"] for d in later if d["slug"] == org["slug"]) == sorted(docs[2:])


def _in_minutes(n):
    from invoice_pipelines.db.types import utcnow

    return utcnow() + timedelta(minutes=n)


def test_a_path_of_statuses_is_checked_step_by_step_and_written_once(db):
    org = db.new_organization()
    doc = _register(db, org).document_id
    ref = _ref(db, org, doc)
    with pytest.raises(InvalidTransition, match="from PARSED to EXPORTED"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            change_status(conn, ref, [Status.PARSED, Status.EXPORTED])
    assert _ref(db, org, doc) == ref  # nothing written
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        done = change_status(conn, ref, [Status.PARSED, Status.VALIDATED])
    assert (done.status, done.processing_version) == (Status.VALIDATED, 2)
    assert _ref(db, org, doc) == done
