"""Migration 0048 (issue 59): the working sets of incoming invoices without an index on `status`.

`incoming_validated` holds exactly the VALIDATED documents and `intake_status` is the status while
the intake works on a document (NULL once accepted), whoever writes the status: the lifecycle's
door, one statement for many documents, or plain SQL. The readers switched to them find what a
`status =` query finds, and on PostgreSQL the export's VALIDATED -> EXPORTED update is heap-only.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import delete, insert, select, text, update

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_months import validated_outside_months
from invoice_pipelines.db.incoming_status import (
    change_status,
    change_status_where,
    in_intake,
    load_refs,
    validated,
)
from invoice_pipelines.db.tables import incoming_invoices, incoming_validated
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.exports.domain.reads import in_review_in_month, validated_in_month
from invoice_pipelines.intake.domain.listing import list_documents

t = incoming_invoices.c
ACCEPTED = {Status.VALIDATED.value, Status.EXPORTED.value}
INTAKE = [s for s in Status if s.value not in ACCEPTED]


def _documents(conn, organization_id: int, statuses: list[str], day=date(2026, 3, 10)) -> list[int]:
    rows = [
        {
            "organization_id": organization_id,
            "content_hash": uuid.uuid4().hex,
            "status": status,
            "issue_date": day,
        }
        for status in statuses
    ]
    return list(conn.execute(insert(incoming_invoices).returning(t.id), rows).scalars())


def _assert_kept(conn, organization_id: int) -> None:
    """The side table and the column agree with every document's status."""
    rows = conn.execute(
        select(t.id, t.status, t.intake_status).where(t.organization_id == organization_id)
    ).all()
    listed = set(
        conn.execute(
            select(incoming_validated.c.incoming_invoice_id).where(
                incoming_validated.c.organization_id == organization_id
            )
        ).scalars()
    )
    assert listed == {r.id for r in rows if r.status == Status.VALIDATED.value}
    for row in rows:
        assert row.intake_status == (None if row.status in ACCEPTED else row.status), row


def test_every_transition_through_the_door_keeps_the_set_and_the_column(db) -> None:
    org = db.new_organization()
    path = [
        Status.PARSED,
        Status.VALIDATED,
        Status.EXPORTED,
        Status.VALIDATED,  # a correction reopens it
        Status.NEEDS_REVIEW,
        Status.VALIDATED,
        Status.FAILED,
        Status.CREATED,
        Status.PARSED,
        Status.NEEDS_REVIEW,
        Status.FAILED,
    ]
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        (doc,) = _documents(conn, org["id"], [Status.UPLOADED.value])
        _assert_kept(conn, org["id"])
        ref = load_refs(conn, org["id"], [doc])[doc]
        for step in path:
            ref = change_status(conn, ref, step)
            _assert_kept(conn, org["id"])
        # several steps written at once (PARSED then VALIDATED)
        ref = change_status(conn, change_status(conn, ref, Status.CREATED), ["PARSED", "VALIDATED"])
        _assert_kept(conn, org["id"])
        assert ref.status == Status.VALIDATED

    # the export's one statement for many, and a correction back
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        more = _documents(conn, org["id"], ["VALIDATED"] * 5 + ["NEEDS_REVIEW", "EXPORTED"])
        _assert_kept(conn, org["id"])
        moved = change_status_where(
            conn, org["id"], t.id.in_([doc, *more]), Status.VALIDATED, Status.EXPORTED, 6
        )
        assert moved == 6
        _assert_kept(conn, org["id"])
        change_status_where(
            conn, org["id"], t.id.in_(more[:2]), Status.EXPORTED, Status.VALIDATED, 2
        )
        _assert_kept(conn, org["id"])


def test_plain_sql_inserts_updates_and_deletes_keep_the_set_and_the_column(db) -> None:
    org, other = db.new_organization(), db.new_organization()
    with tenant_transaction(db.engine, other["id"], write=True) as conn:
        theirs = _documents(conn, other["id"], ["VALIDATED"] * 3)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ids = _documents(conn, org["id"], ["VALIDATED"] * 4 + ["UPLOADED"] * 2 + ["EXPORTED"])
        _assert_kept(conn, org["id"])
        conn.execute(
            text("UPDATE incoming_invoices SET status = 'EXPORTED' WHERE id IN (:a, :b)"),
            {"a": ids[0], "b": ids[1]},
        )
        _assert_kept(conn, org["id"])
        conn.execute(
            text("UPDATE incoming_invoices SET status = 'VALIDATED' WHERE id IN (:a, :b)"),
            {"a": ids[4], "b": ids[6]},
        )
        _assert_kept(conn, org["id"])
        # an update that leaves the status alone leaves the set alone
        conn.execute(update(incoming_invoices).where(t.id.in_(ids)).values(seller_name="Renamed"))
        _assert_kept(conn, org["id"])
        conn.execute(delete(incoming_invoices).where(t.id.in_([ids[2], ids[5]])))
        _assert_kept(conn, org["id"])
    with tenant_transaction(db.engine, other["id"]) as conn:
        _assert_kept(conn, other["id"])
        assert len(theirs) == 3
        assert set(
            conn.execute(
                select(incoming_validated.c.incoming_invoice_id).where(
                    incoming_validated.c.organization_id == other["id"]
                )
            ).scalars()
        ) == set(theirs)


def _one_of_each(conn, organization_id: int) -> dict[str, set[int]]:
    """Three documents in each status, two months apart for the ones outside the export months."""
    found: dict[str, set[int]] = {}
    for status in Status:
        found[status.value] = set(_documents(conn, organization_id, [status.value] * 3))
    found["VALIDATED"] |= set(_documents(conn, organization_id, ["VALIDATED"], date(2025, 1, 5)))
    return found


def test_the_switched_readers_find_what_a_status_query_finds(db) -> None:
    org, other = db.new_organization(), db.new_organization()
    with tenant_transaction(db.engine, other["id"], write=True) as conn:
        _one_of_each(conn, other["id"])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        expected = _one_of_each(conn, org["id"])
    with tenant_transaction(db.engine, org["id"]) as conn:

        def ids(condition) -> set[int]:
            return set(
                conn.execute(
                    select(t.id).where(t.organization_id == org["id"], condition)
                ).scalars()
            )

        assert ids(validated(organization_id=org["id"])) == expected["VALIDATED"]
        assert ids(validated()) == expected["VALIDATED"]
        for status in INTAKE:
            assert ids(in_intake([status])) == expected[status.value], status
        assert ids(in_intake([Status.UPLOADED, Status.CREATED])) == (
            expected["UPLOADED"] | expected["CREATED"]
        )
        month = set(conn.execute(validated_in_month(org["id"], "2026-03")).scalars())
        assert month == expected["VALIDATED"] - {max(expected["VALIDATED"])}
        assert in_review_in_month(conn, org["id"], "2026-03") == 3
        count, outside = validated_outside_months(
            conn, "2026-01", "2026-12", organization_id=org["id"]
        )
        assert count == 1 and [d["id"] for d in outside] == [max(expected["VALIDATED"])]
    with pytest.raises(ValueError):
        in_intake([Status.EXPORTED])
    for status in Status:
        listed = list_documents(
            db.engine, find_organization(db.engine, org["id"]), status=status.value, limit=100
        )
        assert {d["id"] for d in listed} == expected[status.value], status
        assert [d["id"] for d in listed] == sorted(expected[status.value], reverse=True)
    with system_transaction(db.engine) as conn:
        count, _ = validated_outside_months(conn, "2026-01", "2026-12")
        assert count >= 2  # both organizations' (and what other tests left)


def test_the_exports_status_update_is_heap_only(pg_database) -> None:
    """On PostgreSQL the export's VALIDATED -> EXPORTED update changes no indexed value, so each
    new version stays on its page without new index entries (the month's rows sharing pages with
    other organizations' documents, as they arrive over a month). Before 0048 `status` was indexed
    and none was heap-only."""
    db = pg_database
    org = db.new_organization()
    others = [db.new_organization() for _ in range(3)]
    ours: list[int] = []
    with system_transaction(db.owner_engine, write=True) as conn:
        for _ in range(100):
            ours += _documents(conn, org["id"], ["VALIDATED"])
            for other in others:
                _documents(conn, other["id"], ["EXPORTED"])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:

        def hot() -> int:
            return conn.execute(
                text("SELECT pg_stat_get_xact_tuples_hot_updated('incoming_invoices'::regclass)")
            ).scalar_one()

        before = hot()
        moved = change_status_where(
            conn, org["id"], t.id.in_(ours), Status.VALIDATED, Status.EXPORTED, len(ours)
        )
        assert moved == 100
        assert hot() - before == 100
        assert (
            conn.execute(
                select(incoming_validated.c.incoming_invoice_id).where(
                    incoming_validated.c.organization_id == org["id"]
                )
            ).all()
            == []
        )
