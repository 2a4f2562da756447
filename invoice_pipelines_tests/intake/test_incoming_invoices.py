"""Documents in the database: one status function, optimistic locking, duplicates, stats, stuck."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from invoice_pipelines.core.lifecycle import InvalidTransition, Status
from invoice_pipelines.db.incoming_status import (
    ErrorRecord,
    StaleDocument,
    change_status,
    load_refs,
)
from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.intake.domain.incoming_invoices import (
    NewUpload,
    StatusChange,
    change_statuses,
    errors_of,
    organization_stats,
    register_upload,
    register_uploads,
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


def test_uploads_registered_together_are_what_one_after_another_makes(db):
    """New bytes, the same bytes again in the same call, bytes registered before: one document
    per content, the others duplicate uploads of it, in the order given."""
    org = db.new_organization()
    before = _register(db, org, "old.xml", "known")
    files = [
        NewUpload("a.xml", f"{org['slug']}/a.xml", "new", 10),
        NewUpload("b.xml", f"{org['slug']}/b.xml", "known", 10),
        NewUpload("a-again.xml", f"{org['slug']}/a-again.xml", "new", 10),
        NewUpload("c.xml", f"{org['slug']}/c.xml", "other", 10),
    ]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        a, b, a_again, c = register_uploads(conn, organization_id=org["id"], files=files)
        rows = {
            r.id: r
            for r in conn.execute(
                select(uploads).where(uploads.c.organization_id == org["id"])
            ).all()
        }
    assert [x.duplicate for x in (a, b, a_again, c)] == [False, True, True, False]
    assert b.document_id == before.document_id
    assert a_again.document_id == a.document_id != c.document_id
    assert len({a.upload_id, b.upload_id, a_again.upload_id, c.upload_id}) == 4
    assert rows[b.upload_id].duplicate_of_upload_id == before.upload_id
    assert rows[a_again.upload_id].duplicate_of_upload_id == a.upload_id
    assert rows[a_again.upload_id].status == "duplicate" == rows[b.upload_id].status
    for registration in (a, b, a_again, c):
        assert rows[registration.upload_id].incoming_invoice_id == registration.document_id
    assert rows[a.upload_id].duplicate_of_upload_id is None
    assert _ref(db, org, a.document_id).status == Status.UPLOADED


def test_status_changes_together_store_values_as_one_update_each_would(db):
    """change_statuses (one UPDATE ... FROM unnest for many documents on PostgreSQL) stores every
    kind of value as an UPDATE of one document does: JSON as JSON, dates, amounts rounded to
    cents, NULLs; and a value too long for its column is refused, never cut short."""
    from datetime import date
    from decimal import Decimal

    from sqlalchemy.exc import DBAPIError

    org = db.new_organization()
    docs = [_register(db, org, f"{n}.xml", f"w{n}").document_id for n in range(3)]
    seen = [_ref(db, org, d) for d in docs]
    fields = [
        {
            "invoice_number": f"R-{n}",
            "raw_json": {"syntax": "cii", "n": n, "nested": [1, None]},
            "issue_date": date(2026, 10, n + 1),
            "due_date": None,
            "net_total": Decimal("10.005") + n,
            "seller_name": "Lieferant ÄÖÜ & Co. KG",
        }
        for n in range(3)
    ]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        moved, stale = change_statuses(
            conn,
            [StatusChange(seen[n], [Status.PARSED, Status.VALIDATED], fields[n]) for n in range(3)],
        )
    assert stale == {} and set(moved) == set(docs)
    t = incoming_invoices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(
                t.invoice_number, t.raw_json, t.issue_date, t.due_date, t.net_total, t.seller_name
            )
            .where(t.id.in_(docs))
            .order_by(t.id)
        ).all()
    for n, row in enumerate(rows):
        assert row.invoice_number == f"R-{n}"
        assert row.raw_json == {"syntax": "cii", "n": n, "nested": [1, None]}
        assert (row.issue_date, row.due_date) == (date(2026, 10, n + 1), None)
        assert row.seller_name == "Lieferant ÄÖÜ & Co. KG"
        if db.engine.dialect.name == "postgresql":
            assert row.net_total == Decimal("10.01") + n  # NUMERIC(18, 2) rounds as ever
    if db.engine.dialect.name != "postgresql":
        return  # SQLite keeps any length
    more = [_register(db, org, f"long{n}.xml", f"long{n}").document_id for n in range(2)]
    refs = [_ref(db, org, d) for d in more]
    with pytest.raises(DBAPIError, match="too long"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            change_statuses(
                conn,
                [
                    StatusChange(refs[0], Status.FAILED, {"seller_name": "x" * 300}),
                    StatusChange(refs[1], Status.FAILED, {"seller_name": "short"}),
                ],
            )
    assert [_ref(db, org, d).status for d in more] == [Status.UPLOADED, Status.UPLOADED]


def test_status_changes_together_keep_each_documents_optimistic_lock(db):
    """change_statuses: a document someone changed since it was read is left alone with the
    reason; the others move, each one version per step, with their own fields and findings."""
    org = db.new_organization()
    docs = [_register(db, org, f"{n}.xml", f"h{n}").document_id for n in range(3)]
    seen = [_ref(db, org, d) for d in docs]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        change_status(conn, seen[1], Status.FAILED)  # a concurrent writer got there first
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        moved, stale = change_statuses(
            conn,
            [
                StatusChange(seen[0], [Status.PARSED, Status.VALIDATED], {"invoice_number": "R-0"}),
                StatusChange(seen[1], Status.FAILED, errors=[ErrorRecord("parse", "lost")]),
                StatusChange(
                    seen[2], Status.FAILED, {"format": "xml"}, [ErrorRecord("parse", "bad")]
                ),
            ],
        )
    assert set(moved) == {docs[0], docs[2]}
    assert stale == {
        docs[1]: f"incoming invoice {docs[1]} changed meanwhile: expected "
        "UPLOADED v0, found FAILED v1"
    }
    assert (moved[docs[0]].status, moved[docs[0]].processing_version) == (Status.VALIDATED, 2)
    assert _ref(db, org, docs[0]) == moved[docs[0]]
    assert _ref(db, org, docs[2]) == moved[docs[2]]
    assert _ref(db, org, docs[1]).processing_version == 1  # left as the other writer left it
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert [e["message"] for e in errors_of(conn, docs[2])] == ["bad"]
        assert errors_of(conn, docs[1]) == []
        number = conn.execute(
            select(incoming_invoices.c.invoice_number).where(incoming_invoices.c.id == docs[0])
        ).scalar_one()
    assert number == "R-0"
    # an impossible move is refused before anything is written
    with pytest.raises(InvalidTransition):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            change_statuses(conn, [StatusChange(moved[docs[0]], Status.UPLOADED)])
