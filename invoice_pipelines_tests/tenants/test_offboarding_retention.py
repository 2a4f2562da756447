"""An offboarded organization is deleted only as the law and its own settings allow (issue 83),
on SQLite and on PostgreSQL: its longer periods wait, a hold keeps everything, a hold that is no
boolean is refused in one sentence (as housekeeping refuses it), the audit trail of the years
still kept survives the deletion with the organization's row, read-only, and each deletion is
recorded outside the organization. Its export goes only into a real folder that no store of ours
reads, checked before anything changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, update
from sqlalchemy.engine import make_url

from invoice_pipelines.audit.domain.seal_keys import keyring_from
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.cli import main
from invoice_pipelines.db.engine import make_system_engine
from invoice_pipelines.db.tables import audit_log, customers, exports, organizations, uploads
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.housekeeping.domain import archive
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.domain import offboarding
from invoice_pipelines.tenants.domain.lifecycle import Refused
from invoice_pipelines.tenants.domain.offboarding import (
    NotYet,
    Stores,
    delete_organization,
    export_organization,
)
from invoice_pipelines_tests.audit.year_of_history import seed_year
from invoice_pipelines_tests.db.test_system_scope import login  # noqa: F401 - the fixture
from invoice_pipelines_tests.exports.books import DATEV, customer, sales_invoice
from invoice_pipelines_tests.housekeeping.helpers import LAST_EXPIRED, at, old_export, old_upload

LATER = datetime.now(UTC) + timedelta(hours=1)  # every row old enough to be sealed
KEYS = keyring_from("22" * 32, "k-offboarding")


def _offboard(db, org: dict, folder, stores: Stores | None = None) -> dict:
    return export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        folder,
        system=db.system_engine,
        by="anna",
        stores=stores,
    )


def _delete(db, org: dict, today: date, stores: Stores | None = None):
    return delete_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        system=db.system_engine,
        by="anna",
        today=today,
        stores=stores,
    )


def _offboarded_with_an_invoice_of_2026(db, tmp_path) -> dict:
    org = db.new_organization(**DATEV)
    sales_invoice(
        db.engine,
        org["id"],
        customer(db.engine, org["id"], "K-1", "Kunde AG"),
        day=date(2026, 1, 5),
    )
    _offboard(db, org, tmp_path / "handover")
    return org


def _count(db, table, org_id: int) -> int:
    with system_transaction(db.engine) as conn:
        column = table.c.id if table is organizations else table.c.organization_id
        return conn.execute(select(func.count()).where(column == org_id)).scalar_one()


def _settle(db, org_id: int, settings: dict) -> None:
    """Settings written by hand after the offboarding (as the owner: nothing of ours writes an
    offboarded organization's row), the way the issue found them."""
    with db.owner_engine.begin() as conn:
        conn.execute(
            update(organizations).where(organizations.c.id == org_id).values(settings=settings)
        )


def _deletions(db, slug: str) -> list[dict]:
    with system_transaction(db.engine) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(audit_log)
                .where(audit_log.c.entity_id == slug, audit_log.c.action == "organization_deleted")
                .order_by(audit_log.c.id)
            ).mappings()
        ]


def test_books_kept_15_years_by_the_organization_are_not_deleted_before_them(db, tmp_path):
    org = db.new_organization(**DATEV, settings={"retention": {"exports_years": 15}})
    store = LocalFiles(str(tmp_path / "exports"))
    old_export(db, store, org, period="2026-01", written=at(2026, 2, 1))
    manifest = _offboard(db, org, tmp_path / "handover", Stores(exports=store))
    assert manifest["deletable_from"] == "2042-01-01"

    # the law's 10 years are over on 1 January 2037, the organization's 15 are not
    with pytest.raises(NotYet) as not_yet:
        _delete(db, org, date(2037, 1, 1), Stores(exports=store))
    said = str(not_yet.value)
    assert "kept until 2041-12-31" in said and "books 15 years" in said
    assert "may be deleted from 2042-01-01" in said
    assert _count(db, exports, org["id"]) == 1 and _deletions(db, org["slug"]) == []


def test_a_hold_that_is_no_boolean_is_refused_by_the_deletion_and_housekeeping_alike(db, tmp_path):
    org = db.new_organization(**DATEV)
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde AG"))
    _offboard(db, org, tmp_path / "handover")
    _settle(db, org["id"], {"retention": {"legal_hold": "true"}})

    with pytest.raises(Refused) as refused:
        _delete(db, org, date(2060, 1, 1))
    [sentence] = refused.value.problems
    assert sentence == (
        f"Organization {org['slug']!r}: settings retention.legal_hold is 'true', not true or "
        "false; nothing of it was removed."
    )
    [outcome] = archive.purge_archives(
        db.engine,
        db.system_engine,
        LocalUploads(str(tmp_path / "u")),
        LocalFiles(str(tmp_path / "e")),
        [find_organization(db.engine, org["slug"])],
    )
    assert outcome.refused == sentence
    assert _count(db, organizations, org["id"]) == 1 and _deletions(db, org["slug"]) == []


def test_the_command_refuses_a_hold_that_is_no_boolean_in_one_sentence(
    db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(**DATEV)
    _offboard(db, org, tmp_path / "handover")
    _settle(db, org["id"], {"retention": {"legal_hold": "true", "exports_years": 12}})
    capsys.readouterr()

    assert main(["organizations", "offboard", org["slug"], "--delete", "--by", "anna"]) == 1
    said = capsys.readouterr()
    assert said.out.splitlines() == [
        f"refused: Organization {org['slug']!r}: settings retention.legal_hold is 'true', not "
        "true or false; nothing of it was removed."
    ]
    assert "Traceback" not in said.err
    assert _count(db, organizations, org["id"]) == 1


def test_a_true_hold_keeps_everything(db, tmp_path):
    org = db.new_organization(**DATEV, settings={"retention": {"legal_hold": True}})
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde AG"))
    _offboard(db, org, tmp_path / "handover")
    audited = _count(db, audit_log, org["id"])

    with pytest.raises(NotYet, match="legal hold"):
        _delete(db, org, date(2080, 1, 1))
    assert _count(db, customers, org["id"]) == 1
    assert _count(db, audit_log, org["id"]) == audited
    assert _count(db, organizations, org["id"]) == 1 and _deletions(db, org["slug"]) == []


def test_the_deletion_keeps_the_audit_trail_of_its_years_read_only_and_is_recorded_outside(
    db, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = _offboarded_with_an_invoice_of_2026(db, tmp_path)
    with system_transaction(db.engine) as conn:
        trail = conn.execute(
            select(audit_log.c.id, audit_log.c.action).where(
                audit_log.c.organization_id == org["id"]
            )
        ).all()
    assert {"organization_offboarding", "organization_exported"} <= {row.action for row in trail}

    deleted = _delete(db, org, date(2035, 1, 1))
    assert deleted.rows["customers"] == 1 and deleted.rows["sales_invoices"] == 1
    assert _count(db, customers, org["id"]) == 0
    # this year's audit rows are books, kept 10 years from its end: every one survives
    with system_transaction(db.engine) as conn:
        after = conn.execute(
            select(audit_log.c.id, audit_log.c.action).where(
                audit_log.c.organization_id == org["id"]
            )
        ).all()
    assert sorted(after) == sorted(trail)
    assert not deleted.gone and _count(db, organizations, org["id"]) == 1
    assert deleted.kept["audit_log"] == {"rows": len(trail), "kept_through": "2036-12-31"}
    # what is kept stays read-only: the deletion's own step is not left set
    with pytest.raises(Exception, match="offboarded"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                insert(customers).values(
                    organization_id=org["id"], customer_number="K-2", name="Neu AG"
                )
            )
    [record] = _deletions(db, org["slug"])
    assert record["organization_id"] is None and record["created_by"] == "anna"
    assert record["details"]["rows"]["sales_invoices"] == 1
    assert record["details"]["kept"]["audit_log"]["kept_through"] == "2036-12-31"
    assert record["details"]["organization_row"] == "kept, offboarded and read-only"

    # the command says what is kept and until when, and deletes nothing more before it
    assert main(["organizations", "offboard", org["slug"], "--delete", "--by", "anna"]) == 0
    said = capsys.readouterr().out
    assert f"{org['slug']}: nothing more to delete" in said
    assert f"kept {len(trail)} audit_log rows through 2036-12-31" in said
    assert len(_deletions(db, org["slug"])) == 1


@pytest.mark.parametrize("kind", ["dangling link", "another organization's upload folder"])
def test_an_export_into_a_link_or_a_store_is_refused_before_anything_changes(db, tmp_path, kind):
    org = db.new_organization(**DATEV)
    other = db.new_organization(**DATEV)
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde AG"))
    uploads = LocalUploads(str(tmp_path / "uploads"))
    uploads.put(other["slug"], "waiting.xml", b"<Invoice/>")
    drop_zone = tmp_path / "uploads" / other["slug"]
    if kind == "dangling link":
        target = tmp_path / "handover"
        target.symlink_to(tmp_path / "nowhere")
        words = "is a symbolic link"
    else:
        target = drop_zone / "handover"
        words = "inside the upload folder"
    audited = _count(db, audit_log, org["id"])

    with pytest.raises(Refused) as refused:
        _offboard(db, org, target, Stores(uploads=uploads))
    [sentence] = refused.value.problems
    assert words in sentence and "nothing was changed" in sentence
    assert not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in drop_zone.iterdir()) == ["waiting.xml"]
    found = find_organization(db.engine, org["slug"])
    assert not found.offboarded and not found.suspended
    assert _count(db, audit_log, org["id"]) == audited


def test_the_organization_is_offboarded_only_once_its_export_is_written(db, tmp_path, monkeypatch):
    org = db.new_organization(**DATEV)
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde AG"))

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as disk:
        disk.setattr(offboarding, "_write", full)  # the disk, not our database, fails
        with pytest.raises(Refused) as refused:
            _offboard(db, org, tmp_path / "full")
    [sentence] = refused.value.problems
    assert "No space left on device" in sentence
    assert "is suspended for its offboarding, not offboarded" in sentence
    found = find_organization(db.engine, org["slug"])
    assert found.suspended and not found.offboarded
    manifest = _offboard(db, org, tmp_path / "handover")
    assert manifest["files"] > 1 and find_organization(db.engine, org["slug"]).offboarded


def test_an_export_onto_a_file_is_refused_before_anything_changes(db, tmp_path):
    org = db.new_organization(**DATEV)
    plain = tmp_path / "plain.txt"
    plain.write_text("a file")
    for target, words in ((plain, "is not a folder"), (plain / "handover", "cannot be made")):
        with pytest.raises(Refused) as refused:
            _offboard(db, org, target)
        [sentence] = refused.value.problems
        assert words in sentence
    found = find_organization(db.engine, org["slug"])
    assert not found.offboarded and not found.suspended


def test_the_deletion_and_archive_retention_run_wholly_as_the_system_login(
    pg_database,
    login,  # noqa: F811 - the fixture
    tmp_path,
):
    """With the deployment's logins (a runtime login, a system login) the deletion and archive
    retention do all their work on the system login's engine: handed a runtime engine that
    cannot even connect, they still delete and purge what is due."""
    db = pg_database
    org = _offboarded_with_an_invoice_of_2026(db, tmp_path)
    aging = db.new_organization(**DATEV)
    uploads = LocalUploads(str(tmp_path / "uploads"))
    upload = old_upload(db, uploads, aging, uploaded=at(LAST_EXPIRED - 1), changed=at(LAST_EXPIRED))

    runtime_url, system_url = login("invoice_app"), login("invoice_app_system")
    system = make_system_engine(runtime_url, system_url=system_url)
    nowhere = create_engine(make_url(runtime_url).set(host="127.0.0.1", port=9))
    try:
        deleted = delete_organization(
            nowhere,
            find_organization(db.engine, org["slug"]),
            system=system,
            by="anna",
            today=date(2035, 1, 1),
        )
        [outcome] = archive.purge_archives(
            nowhere,
            system,
            uploads,
            LocalFiles(str(tmp_path / "exports")),
            [find_organization(db.engine, aging["slug"])],
        )
    finally:
        system.dispose()
        nowhere.dispose()
    assert deleted.rows["sales_invoices"] == 1 and _count(db, customers, org["id"]) == 0
    assert outcome.errors == [] and outcome.uploads_removed == 1
    assert not (tmp_path / "uploads" / upload["key"]).exists()


def test_an_export_with_a_retention_setting_it_cannot_read_is_refused_before_anything_changes(
    db, tmp_path
):
    org = db.new_organization(**DATEV, settings={"retention": {"exports_years": "15"}})
    with pytest.raises(Refused) as refused:
        _offboard(db, org, tmp_path / "handover")
    [sentence] = refused.value.problems
    assert "settings retention.exports_years is '15', not a whole number of years" in sentence
    found = find_organization(db.engine, org["slug"])
    assert not found.offboarded and not found.suspended
    assert _count(db, audit_log, org["id"]) == 0


def test_the_launchpad_deletion_says_what_it_keeps_and_keeps_the_partition_with_the_row(
    db, tmp_path
):
    from dagster import DagsterInstance

    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
    from invoice_pipelines.tenants.jobs import organizations_offboard_job

    org = db.new_organization(**DATEV)  # no invoice, no export: only its audit trail is kept
    customer(db.engine, org["id"], "K-1", "Kunde AG")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    resources = {
        "database": db.engine,
        "system_database": db.system_engine,
        "upload_store": LocalUploads(str(tmp_path / "u")),
        "document_store": LocalFiles(tmp_path / "d", "documents"),
        "export_store": LocalFiles(tmp_path / "e", "exports"),
    }

    def run(**config):
        op = {"config": {"organization": org["slug"], "requested_by": "anna", **config}}
        return organizations_offboard_job.execute_in_process(
            run_config={"ops": {"offboard_organization_op": op}},
            instance=instance,
            resources=resources,
        )

    run(export_dir=str(tmp_path / "out"))
    deleted = run(delete=True).output_for_node("offboard_organization_op")
    assert deleted["deleted_rows"] == 1 and set(deleted["kept"]) == {"audit_log", "audit_seals"}
    assert _count(db, customers, org["id"]) == 0 and _count(db, organizations, org["id"]) == 1
    assert org["slug"] in instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)


def test_what_the_deletion_removes_of_the_sealed_records_is_recorded_and_the_kept_chain_verifies(
    db, tmp_path
):
    """The audit trail a deletion keeps still verifies: each sealed row it removed (the original,
    the register's history, the documents) is recorded as the retention path's deletion, which
    the chain accepts; without that record `audit-verify` would name every one removed."""
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    assert verify_archive(db.engine, history.stores, org, now=LATER, keyring=KEYS).passed
    with system_transaction(db.engine) as conn:
        sealed_uploads = conn.execute(
            select(func.count()).where(uploads.c.organization_id == org.id)
        ).scalar_one()
    assert sealed_uploads > 0

    _offboard(db, history.org, tmp_path / "handover")
    deleted = _delete(db, history.org, date(2036, 1, 1))
    assert deleted.rows["uploads"] == sealed_uploads and not deleted.gone

    after = verify_archive(
        db.engine, history.stores, find_organization(db.engine, org.id), keyring=KEYS, seal=False
    )
    assert after.chain.problems == []
    assert after.chain.retention_deleted >= sealed_uploads
