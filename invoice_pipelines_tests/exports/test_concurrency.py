"""An export and a concurrent change of one of its documents (PostgreSQL): the export never books
a state that is no longer true; it notices, starts again and books what is now there."""

from __future__ import annotations

import csv
import threading
from datetime import date
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import change_status, load_refs
from invoice_pipelines.db.tables import (
    export_items,
    exports,
    incoming_invoice_lines,
    incoming_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain import beside, lines_beside, pipeline, writing
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.datev_reader import read_extf


def test_a_document_changed_while_the_month_is_exported(pg_database, tmp_path, monkeypatch):
    db = pg_database
    org = db.new_organization(**DATEV)
    keep = incoming(db.engine, org["id"], "KEEP-1")
    moved = incoming(db.engine, org["id"], "MOVED-2")
    read_done, change_done = threading.Event(), threading.Event()
    real_snapshot, real_records = lines_beside.export_snapshot, beside.invoice_records
    calls = []

    def snapshot_then_wait(conn):
        snapshot = real_snapshot(conn)
        if not read_done.is_set():
            # the first attempt has its snapshot (the month is read in it); let the other writer
            # in before the export records anything
            read_done.set()
            assert change_done.wait(30)
        return snapshot

    def records(rows):
        found = real_records(rows)
        calls.append(len(found))
        return found

    monkeypatch.setattr(lines_beside, "export_snapshot", snapshot_then_wait)
    monkeypatch.setattr(beside, "invoice_records", records)
    outcome = {}
    exporter = threading.Thread(
        target=lambda: outcome.update(
            result=pipeline.run_export(
                db.engine,
                LocalFiles(str(tmp_path)),
                find_organization(db.engine, org["slug"]),
                "2026-11",
                "incoming",
            )
        )
    )
    exporter.start()
    assert read_done.wait(30)
    # meanwhile someone fails the second document (e.g. a late duplicate finding)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ref = load_refs(conn, org["id"], [moved])[moved]
        change_status(conn, ref, Status.FAILED)
    change_done.set()
    exporter.join(60)
    result = outcome["result"]

    assert calls == [2, 1]  # the first attempt saw both, the second only what is still VALIDATED
    assert result.version == 1 and result.invoice_count == 1
    rows = read_extf(Path(result.files["datev"]).read_bytes())[2:]
    assert [r[10].value for r in rows] == ["KEEP-1"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        statuses = dict(
            conn.execute(
                select(incoming_invoices.c.id, incoming_invoices.c.status).where(
                    incoming_invoices.c.id.in_([keep, moved])
                )
            ).all()
        )
        assert statuses == {keep: "EXPORTED", moved: "FAILED"}
        assert conn.execute(select(func.count()).select_from(exports)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(export_items)).scalar() == 1
    # the first attempt's files of version 1 were replaced, not left beside the real ones
    assert sorted(p.name for p in (tmp_path / org["slug"] / "2026-11").iterdir()) == sorted(
        Path(p).name for p in result.files.values()
    )


def test_the_lines_file_shows_the_month_as_the_export_read_it(pg_database, tmp_path, monkeypatch):
    """The lines file is written on a second connection beside the export's transaction, in that
    transaction's snapshot: a line committed by someone else after the export read the month is
    not in it, and neither are the lines of an invoice the export skipped."""
    db = pg_database
    org = db.new_organization(**DATEV)
    booked = incoming(
        db.engine,
        org["id"],
        "LINES-1",
        lines=[("Schrauben", "2", "10.00", "19"), ("Muttern", "3", "5.00", "19")],
    )
    skipped = incoming(
        db.engine,
        org["id"],
        "ODD-13",
        taxes=[("S", "13", "100.00", "13.00")],
        lines=[("Ungebucht", "1", "100.00", "13")],
    )
    real_snapshot = lines_beside.export_snapshot

    def snapshot_then_add_a_line(conn):
        snapshot = real_snapshot(conn)
        with tenant_transaction(db.engine, org["id"], write=True) as other:
            other.execute(
                incoming_invoice_lines.insert().values(
                    organization_id=org["id"],
                    incoming_invoice_id=booked,
                    line_no=3,
                    description="Nachgetragen",
                    quantity=1,
                    unit_code="C62",
                    unit_price=1,
                    net_amount=1,
                    vat_category="S",
                    vat_rate=19,
                )
            )
        return snapshot

    monkeypatch.setattr(lines_beside, "export_snapshot", snapshot_then_add_a_line)
    result = pipeline.run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    assert [invoice_id for invoice_id, _, _ in result.skipped] == [skipped]
    with open(result.files["csv_lines"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["invoice_number"], r["line_no"], r["description"]) for r in rows] == [
        ("LINES-1", "1", "Schrauben"),
        ("LINES-1", "2", "Muttern"),
    ]


def test_without_a_second_connection_the_lines_file_is_written_after_all(
    pg_database, tmp_path, monkeypatch
):
    db = pg_database
    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "LINES-2", lines=[("Schrauben", "2", "10.00", "19")])

    def no_connection(*args, **kwargs):
        raise OperationalError("connect", {}, Exception("too many clients already"))

    monkeypatch.setattr(lines_beside, "write_lines_beside", no_connection)
    result = pipeline.run_export(
        db.engine,
        LocalFiles(str(tmp_path)),
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
    )
    with open(result.files["csv_lines"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["invoice_number"], r["description"]) for r in rows] == [("LINES-2", "Schrauben")]


def test_two_months_of_one_organization_exported_at_once_share_its_partner_accounts(
    pg_database, tmp_path, monkeypatch
):
    """Issue 55: two runs exporting two months of one organization, each with a supplier new to
    the organization, met on the partner accounts' unique key (UniqueViolation, the run's whole
    chunk failed). The second export now waits for the first before its snapshot begins, sees the
    account the first gave, and books the supplier on it."""
    db = pg_database
    org = db.new_organization(**DATEV)
    store = LocalFiles(str(tmp_path))
    for number, day in (("OCT-1", "2026-10-05"), ("NOV-1", "2026-11-05")):
        incoming(db.engine, org["id"], number, day=date.fromisoformat(day), seller="Zeta GmbH",
                 vat_id="DE999999999")  # fmt: skip
    first_assigned, let_first_finish = threading.Event(), threading.Event()
    real_write = writing.write_accounts

    def write_then_wait(conn, rows):
        real_write(conn, rows)
        if rows and not first_assigned.is_set():
            # the first export holds its new account, uncommitted
            first_assigned.set()
            assert let_first_finish.wait(30)

    monkeypatch.setattr(writing, "write_accounts", write_then_wait)
    results: dict[str, object] = {}

    def export(month: str) -> None:
        try:
            results[month] = pipeline.run_export(
                db.engine, store, find_organization(db.engine, org["slug"]), month, "incoming"
            )
        except Exception as exc:  # noqa: BLE001 - the test says what the run raised
            results[month] = exc

    october = threading.Thread(target=export, args=("2026-10",))
    october.start()
    assert first_assigned.wait(30)
    november = threading.Thread(target=export, args=("2026-11",))
    november.start()
    # the second export waits for the organization's export lock, then the first commits
    with db.engine.connect() as conn:
        for _ in range(300):
            waiting = conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    "AND classid = 7302 AND objid = :org"
                ),
                {"org": org["id"]},
            ).scalar()
            conn.rollback()
            if waiting:
                break
            threading.Event().wait(0.1)
    assert waiting == 1
    let_first_finish.set()
    october.join(60)
    november.join(60)
    for month in ("2026-10", "2026-11"):
        assert not isinstance(results[month], Exception), results[month]
    accounts = {
        month: {r[10].value: r[6].value for r in read_extf(Path(result.files["datev"]).read_bytes())[2:]}
        for month, result in results.items()
    }  # fmt: skip
    assert accounts == {"2026-10": {"OCT-1": "70000"}, "2026-11": {"NOV-1": "70000"}}


def test_two_writers_without_the_lock_give_a_new_supplier_one_account(
    pg_database, tmp_path, monkeypatch
):
    """Issue 55: should two exports of one organization meet without its export lock (two
    deployments on one database, a run that outlived its lock), the partner accounts are
    insert-or-get: the later writer does not fail on the accounts' unique key, it exports again
    in a new snapshot and books the supplier on the account the other writer gave."""
    db = pg_database
    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "OCT-1", day=date(2026, 10, 5), seller="Neu GmbH", vat_id=None)
    incoming(db.engine, org["id"], "NOV-1", day=date(2026, 11, 5), seller="Neu GmbH", vat_id=None)
    store = LocalFiles(str(tmp_path))
    monkeypatch.setattr(pipeline, "session_lock", lambda *args, **kwargs: _no_lock())
    read_done, other_done = threading.Event(), threading.Event()
    real_snapshot = lines_beside.export_snapshot
    calls = []

    def snapshot_then_wait(conn):
        snapshot = real_snapshot(conn)
        if threading.current_thread().name == "late":
            calls.append(snapshot)
            if len(calls) == 1:  # the late writer has its snapshot; the other one gives accounts
                read_done.set()
                assert other_done.wait(30)
        return snapshot

    monkeypatch.setattr(lines_beside, "export_snapshot", snapshot_then_wait)
    outcome = {}

    def late():
        try:
            outcome["late"] = pipeline.run_export(
                db.engine, store, find_organization(db.engine, org["slug"]), "2026-10", "incoming"
            )
        except Exception as exc:  # the test reads it below
            outcome["error"] = exc

    writer = threading.Thread(target=late, name="late")
    writer.start()
    assert read_done.wait(30)
    other = pipeline.run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    other_done.set()
    writer.join(60)

    assert "error" not in outcome, outcome.get("error")
    assert len(calls) == 2  # the late writer started again once, in a new snapshot
    accounts = {
        month: {r[6].value for r in read_extf(Path(result.files["datev"]).read_bytes())[2:]}
        for month, result in (("2026-10", outcome["late"]), ("2026-11", other))
    }
    assert accounts["2026-10"] == accounts["2026-11"] and len(accounts["2026-10"]) == 1
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert conn.execute(text("SELECT count(*) FROM partner_accounts")).scalar() == 1


class _no_lock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
