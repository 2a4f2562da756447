"""Archive retention on both databases: what is past its period goes, everything else stays."""

from __future__ import annotations

from datetime import date

import pytest

from invoice_pipelines.db.tenancy import find_organizations
from invoice_pipelines.housekeeping.domain import archive
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.housekeeping.helpers import (
    LAST_EXPIRED,
    THIS_YEAR,
    at,
    audit_rows,
    export_row,
    old_export,
    old_upload,
    upload_row,
)


def purge_archives(engine, system, upload_store, export_store, names, **options):
    """Archive retention for the organizations of `names`, found as its entry points find them."""
    found, unknown = find_organizations(system, names)
    return archive.purge_archives(
        engine, system, upload_store, export_store, found, unknown=unknown, **options
    )


@pytest.fixture
def stores(tmp_path):
    return LocalUploads(str(tmp_path / "uploads")), LocalFiles(str(tmp_path / "exports"))


def _exists(store, key: str) -> bool:
    try:
        store.read(key)
    except FileNotFoundError:
        return False
    return True


def test_files_past_retention_go_the_rest_stays_and_a_second_run_does_nothing(db, stores):
    upload_store, export_store = stores
    # the uploads kept 10 years like the exports here (the law's 8 for booking documents, or
    # longer, as the organization sets): the periods per class are the test below
    org = db.new_organization(settings={"retention": {"uploads_years": 10}})
    booked = old_upload(
        db, upload_store, org, uploaded=at(LAST_EXPIRED - 1), changed=at(LAST_EXPIRED)
    )
    # the same bytes uploaded again: a duplicate upload follows the invoice it duplicates
    duplicate = old_upload(
        db, upload_store, org, uploaded=at(LAST_EXPIRED - 1, 8), data=booked["data"]
    )
    in_work = old_upload(db, upload_store, org, uploaded=at(LAST_EXPIRED - 2), status="VALIDATED")
    booked_lately = old_upload(
        db, upload_store, org, uploaded=at(LAST_EXPIRED - 1), changed=at(THIS_YEAR - 1)
    )
    dated_later = old_upload(
        db, upload_store, org, uploaded=at(LAST_EXPIRED), issued=date(LAST_EXPIRED + 1, 1, 2)
    )
    # 23:30 UTC on 31 December is already the next year in Berlin: not yet
    new_year_berlin = old_upload(db, upload_store, org, uploaded=at(LAST_EXPIRED, 12, 31, 23, 30))
    last_evening = old_upload(db, upload_store, org, uploaded=at(LAST_EXPIRED, 12, 31, 22, 30))
    # never booked and waiting for a retry, which reads the original again: kept whatever its age
    failed = old_upload(db, upload_store, org, uploaded=at(LAST_EXPIRED - 3), status="FAILED")
    lost = old_upload(db, upload_store, org, uploaded=at(LAST_EXPIRED - 1), file=False)
    recent = old_upload(db, upload_store, org, uploaded=at(THIS_YEAR - 2))

    old_month = old_export(
        db, export_store, org, period=f"{LAST_EXPIRED - 1}-12", written=at(LAST_EXPIRED, 1, 10)
    )
    written_next_year = old_export(
        db, export_store, org, period=f"{LAST_EXPIRED}-12", written=at(LAST_EXPIRED + 1, 1, 10)
    )
    lost_export = old_export(
        db,
        export_store,
        org,
        period=f"{LAST_EXPIRED - 2}-05",
        written=at(LAST_EXPIRED - 2),
        files=False,
    )

    # a dry run counts and touches nothing
    [dry] = purge_archives(
        db.engine, db.system_engine, upload_store, export_store, [org["slug"]], dry_run=True
    )
    assert (dry.uploads_removed, dry.exports_removed) == (4, 2)
    assert (
        _exists(upload_store, booked["key"])
        and upload_row(db, booked["upload_id"]).purged_at is None
    )
    assert audit_rows(db, org["id"]) == []

    [outcome] = purge_archives(
        db.engine, db.system_engine, upload_store, export_store, [org["slug"]], run_id="run-1"
    )
    assert outcome.refused is None and outcome.errors == []
    gone = [booked, duplicate, last_evening]
    kept = [in_work, failed, booked_lately, dated_later, new_year_berlin, recent]
    for upload in gone:
        assert not _exists(upload_store, upload["key"])
        row = upload_row(db, upload["upload_id"])
        # the row and its hash stay for the audit trail
        assert row.purge_result == "removed" and row.purged_at is not None
        assert row.content_hash == upload["hash"]
    for upload in kept:
        assert _exists(upload_store, upload["key"])
        assert upload_row(db, upload["upload_id"]).purged_at is None
    assert upload_row(db, lost["upload_id"]).purge_result == "missing"
    assert (outcome.uploads_removed, outcome.uploads_missing) == (3, 1)
    assert (outcome.uploads_kept_in_work, outcome.uploads_kept_failed) == (2, 1)

    assert not any(_exists(export_store, key) for key in old_month["keys"])
    assert export_row(db, old_month["export_id"]).purge_result == "removed"
    assert all(_exists(export_store, key) for key in written_next_year["keys"])
    assert export_row(db, written_next_year["export_id"]).purged_at is None
    assert export_row(db, lost_export["export_id"]).purge_result == "missing"
    # files: the 3 uploads and the old month's 5 (both DATEV files, both CSVs, the document package)
    assert (outcome.exports_removed, outcome.exports_missing) == (1, 1)
    assert outcome.files_removed == 3 + len(old_month["keys"]) == 8

    [audit] = audit_rows(db, org["id"])
    assert audit.details["uploads_removed"] == 3 and audit.details["exports_removed"] == 1
    assert audit.details["run_id"] == "run-1" and audit.details["uploads_years"] == 10

    # idempotent: nothing more is removed, marked or logged
    [again] = purge_archives(db.engine, db.system_engine, upload_store, export_store, [org["slug"]])
    assert again.changed == 0 and again.errors == []
    assert len(audit_rows(db, org["id"])) == 1
    for upload in kept:
        assert _exists(upload_store, upload["key"])


def test_a_provisional_version_past_retention_is_removed_by_its_own_names(db, stores):
    """A running month exported on request (`export --provisional`) writes files named
    `..._provisional`: retention removes those, it does not look for the final names and report
    the version missing while its files stay."""
    upload_store, export_store = stores
    org = db.new_organization()
    provisional = old_export(
        db, export_store, org, period=f"{LAST_EXPIRED - 1}-11", written=at(LAST_EXPIRED - 1, 11, 20),
        provisional=True,
    )  # fmt: skip
    assert all("_provisional" in key for key in provisional["keys"])
    [outcome] = purge_archives(
        db.engine, db.system_engine, upload_store, export_store, [org["slug"]]
    )
    assert not any(_exists(export_store, key) for key in provisional["keys"])
    assert export_row(db, provisional["export_id"]).purge_result == "removed"
    assert (outcome.exports_removed, outcome.exports_missing) == (1, 0)


def test_a_refused_setting_stops_only_its_organization(db, stores):
    upload_store, export_store = stores
    short = db.new_organization(settings={"retention": {"uploads_years": 6}})
    longer = db.new_organization(settings={"retention": {"exports_years": 12}})
    # nothing old enough to look at, but the setting is still checked
    idle = db.new_organization(settings={"retention": {"exports_years": 3}})
    short_upload = old_upload(db, upload_store, short, uploaded=at(LAST_EXPIRED - 5))
    long_upload = old_upload(db, upload_store, longer, uploaded=at(LAST_EXPIRED - 1))
    long_export = old_export(
        db, export_store, longer, period=f"{LAST_EXPIRED - 1}-03", written=at(LAST_EXPIRED - 1)
    )

    outcomes = purge_archives(
        db.engine,
        db.system_engine,
        upload_store,
        export_store,
        [short["slug"], longer["slug"], idle["slug"], "no-such-org"],
    )
    by_slug = {o.slug: o for o in outcomes}
    refusal = by_slug[short["slug"]].refused
    assert refusal == (
        f"Organization {short['slug']!r}: settings retention.uploads_years is 6 years, below the "
        "legal minimum of 8 years for booking documents (GoBD, §147 AO); nothing of it was "
        "removed."
    )
    assert _exists(upload_store, short_upload["key"])  # never silently used
    assert audit_rows(db, short["id"])[0].details["refused"] == refusal
    assert by_slug["no-such-org"].refused == "There is no organization 'no-such-org'."
    assert "settings retention.exports_years is 3 years" in by_slug[idle["slug"]].refused

    # the other organization went on: its upload is past 10 years, its export not past 12
    assert not _exists(upload_store, long_upload["key"])
    assert all(_exists(export_store, key) for key in long_export["keys"])
    assert by_slug[longer["slug"]].exports_years == 12


def test_each_class_keeps_its_period_and_a_legal_hold_keeps_everything(db, stores):
    """Booking documents (the originals) 8 years, books (the export files) 10, each from the end
    of the calendar year; the outcome says per class what went and what was kept and why."""
    upload_store, export_store = stores
    org = db.new_organization()
    held = db.new_organization(settings={"retention": {"legal_hold": True}})
    nine_years = THIS_YEAR - 9  # past 8 years, not past 10
    originals = [
        old_upload(db, upload_store, o, uploaded=at(nine_years), changed=at(nine_years))
        for o in (org, held)
    ]
    exports_ = [
        old_export(db, export_store, o, period=f"{nine_years}-03", written=at(nine_years, 4))
        for o in (org, held)
    ]

    outcomes = purge_archives(
        db.engine, db.system_engine, upload_store, export_store, [org["slug"], held["slug"]]
    )
    by_slug = {o.slug: o for o in outcomes}

    assert not _exists(upload_store, originals[0]["key"])  # a booking document of 9 years: gone
    assert all(_exists(export_store, key) for key in exports_[0]["keys"])  # a book: kept
    classes = by_slug[org["slug"]].as_dict()["classes"]
    assert classes["booking_document"]["years"] == 8
    assert classes["booking_document"]["removed"] == 1
    assert classes["book"]["years"] == 10 and classes["book"]["removed"] == 0
    assert classes["book"]["kept"].startswith(
        f"everything of {THIS_YEAR - 10} and later (10 years from the end of the calendar year: "
        f"the records of {THIS_YEAR - 10} are kept through {THIS_YEAR}-12-31)"
    )

    # under a legal hold nothing goes, and the outcome says so per class
    assert _exists(upload_store, originals[1]["key"])
    assert all(_exists(export_store, key) for key in exports_[1]["keys"])
    report = by_slug[held["slug"]].as_dict()
    assert report["legal_hold"] is True and report["uploads_removed"] == 0
    assert {c["kept"] for c in report["classes"].values()} == {
        "everything: the organization is under a legal hold"
    }
