"""A month exported again after its files are gone (archive retention, or removed by hand), on
SQLite and PostgreSQL: the files are written again, and no export row claims files that are gone
without saying so."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from sqlalchemy import select, update

from invoice_pipelines.db.tables import exports
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.housekeeping.domain.archive import purge_archives
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.datev_reader import read_extf
from invoice_pipelines_tests.housekeeping.helpers import LAST_EXPIRED, at


def _versions(db, org_id: int) -> list[dict]:
    with db.owner_engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(exports.c.version, exports.c.purged_at, exports.c.purge_result)
                .where(exports.c.organization_id == org_id)
                .order_by(exports.c.version)
            ).mappings()
        ]


def _month(db, tmp_path, period_day: date):
    org = db.new_organization(**DATEV, settings={"exports": {}})
    incoming(db.engine, org["id"], "A-1", day=period_day, due=None)
    incoming(db.engine, org["id"], "A-2", day=period_day, due=None, taxes=[("S", "7", "10", "0.7")])
    store = LocalFiles(str(tmp_path / "exports"))
    period = period_day.strftime("%Y-%m")
    first = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), period, "incoming"
    )
    assert first.version == 1 and all(Path(p).exists() for p in first.files.values())
    return org, store, period, first


def test_a_month_whose_files_retention_removed_is_written_again(db, tmp_path):
    org, store, period, first = _month(db, tmp_path, date(LAST_EXPIRED - 1, 11, 5))
    # the bookings (the header line carries the time the file was written)
    bookings = read_extf(Path(first.files["datev"]).read_bytes())[1:]
    assert len(bookings) == 3  # the column names and two bookings
    # written long ago: past the legal 10 years, housekeeping removes the files
    with db.owner_engine.begin() as conn:
        conn.execute(
            update(exports)
            .where(exports.c.organization_id == org["id"])
            .values(created_at=at(LAST_EXPIRED - 1, 12, 3))
        )
    uploads_root = str(tmp_path / "uploads")
    [purged] = purge_archives(
        db.engine,
        db.system_engine,
        LocalUploads(uploads_root),
        store,
        [find_organization(db.system_engine, org["slug"])],
    )
    assert purged.exports_removed == 1
    assert not any(Path(p).exists() for p in first.files.values())

    # nothing in the month changed, but handing out version 1's files would be handing out nothing
    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), period, "incoming"
    )
    assert not again.unchanged and again.version == 2
    assert again.files and all(Path(p).exists() for p in again.files.values())
    assert read_extf(Path(again.files["datev"]).read_bytes())[1:] == bookings
    assert again.notes["rewrites_version"] == 1
    assert "removed by archive retention" in again.notes["rewritten_because"]
    assert "corrected" not in again.notes and "newly_booked" not in again.notes
    assert "only where version 1 was never imported" in again.notes["warning"]
    [v1, v2] = _versions(db, org["id"])
    assert v1["purge_result"] == "removed" and v2["purged_at"] is None

    # and now it is the unchanged month it was before
    third = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), period, "incoming"
    )
    assert third.unchanged and third.version == 2 and third.files == again.files


def test_files_removed_by_hand_are_written_again_and_the_old_row_says_so(db, tmp_path):
    org, store, period, first = _month(db, tmp_path, date(2026, 11, 5))
    Path(first.files["csv"]).unlink()

    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), period, "incoming"
    )
    assert not again.unchanged and again.version == 2
    assert all(Path(p).exists() for p in again.files.values())
    assert "(csv)" in again.rewritten and "missing" in again.notes["rewritten_because"]
    [v1, v2] = _versions(db, org["id"])
    assert v1["purge_result"] == "missing" and v1["purged_at"] is not None
    assert v2["purged_at"] is None
