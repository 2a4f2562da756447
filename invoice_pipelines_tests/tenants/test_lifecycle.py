"""An organization's lifecycle (issue 75), on SQLite and on PostgreSQL under row-level security:
added from a CSV all or nothing and only once, its partitions there when the add returns;
changed through the same checks, audited; suspended (its upload waits, unread) and resumed (the
upload is read); offboarded with an export that reads back complete, its deletion refused until
the law allows. No step changes a row of another organization."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import uuid
from datetime import date
from decimal import Decimal

import pytest
from dagster import DagsterInstance, SkipReason, build_sensor_context
from sqlalchemy import func, select, update

from invoice_pipelines.db.tables import audit_log, organizations, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.intake.sensors import upload_sensor
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.domain.lifecycle import (
    Refused,
    add_organizations,
    change_organization,
    resume_organization,
    suspend_organization,
)
from invoice_pipelines.tenants.domain.offboarding import (
    NotYet,
    Stores,
    delete_organization,
    export_organization,
    tenant_tables,
)
from invoice_pipelines.tenants.domain.organizations_csv import read_organizations_csv
from invoice_pipelines.tenants.jobs import organizations_add_job
from invoice_pipelines_tests.exports.books import DATEV, customer, incoming, sales_invoice
from invoice_pipelines_tests.intake.test_intake_jobs import _drop, _drop_and_register
from invoice_pipelines_tests.tenants.vat_ids import fresh_vat_id

HEADER = "slug,name,country,vat_id,tax_number,datev_berater_nr,datev_mandant_nr,datev_chart,invoice_number_format"


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def _csv(tmp_path, lines: list[str], name: str = "orgs.csv"):
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def _rows(tmp_path, prefix: str, n: int) -> list[str]:
    # each its own VAT id: two organizations may not share one
    return [
        f"{prefix}-{i:05d},Mandant {i} GmbH,DE,{fresh_vat_id()},201/113/{40000 + i},29098,{i + 1},"
        f"SKR0{3 + i % 2},RE-{{year}}-{{counter:06d}}"
        for i in range(n)
    ]


def _add(db, path, by="anna"):
    rows, problems = read_organizations_csv(path)
    return add_organizations(db.engine, rows, by=by, problems=problems)


def _everything_of(db, org_id: int) -> dict:
    """Every row the organization has, its organizations row included: what no other
    organization's step may change."""
    with tenant_transaction(db.engine, org_id) as conn:
        found = {
            table.name: sorted(
                json.dumps(dict(row), default=str, sort_keys=True)
                for row in conn.execute(
                    select(table).where(table.c.organization_id == org_id)
                ).mappings()
            )
            for table in tenant_tables()
        }
    with system_transaction(db.engine) as conn:
        found["organizations"] = [
            json.dumps(dict(row), default=str, sort_keys=True)
            for row in conn.execute(
                select(organizations).where(organizations.c.id == org_id)
            ).mappings()
        ]
    return found


def _bystander(db) -> tuple[dict, dict]:
    org = db.new_organization(**DATEV)
    customer_id = customer(db.engine, org["id"], "K-9", "Bystander AG")
    sales_invoice(db.engine, org["id"], customer_id)
    incoming(db.engine, org["id"], "B-1")
    return org, _everything_of(db, org["id"])


def _count(db, prefix: str) -> int:
    with system_transaction(db.engine) as conn:
        return conn.execute(
            select(func.count()).where(organizations.c.slug.like(f"{prefix}%"))
        ).scalar_one()


def test_a_file_with_any_error_writes_nothing_and_names_each_line(db, tmp_path):
    prefix = _prefix()
    bystander, before = _bystander(db)
    path = _csv(
        tmp_path,
        [
            *_rows(tmp_path, prefix, 3),
            f"{prefix}-bad,Bad GmbH,DE,DE811907981,,29098,1,SKR03,RE-{{counter}}",
            f"{prefix.upper()} X,Upper GmbH,DE,,,,,SKR05,",
            f"{prefix}-00001,Twice GmbH,DE,,,,,,",
        ],
    )
    report = _add(db, path)
    text = "\n".join(report.problems)
    assert "orgs.csv:5: the VAT id 'DE811907981' has a wrong check digit" in text
    assert "orgs.csv:6: the slug" in text and "orgs.csv:6: the DATEV chart 'SKR05'" in text
    assert f"orgs.csv:7: the slug '{prefix}-00001' is on orgs.csv:3 already" in text
    assert report.added == [] and report.summary().endswith("nothing was written")
    assert _count(db, prefix) == 0
    assert _everything_of(db, bystander["id"]) == before


def test_the_same_file_twice_changes_nothing_and_the_partitions_exist_when_it_returns(db, tmp_path):
    prefix = _prefix()
    bystander, before = _bystander(db)
    path = _csv(tmp_path, _rows(tmp_path, prefix, 40))
    instance = DagsterInstance.ephemeral()
    config = {"ops": {"add_organizations_op": {"config": {"csv": str(path)}}}}
    first = organizations_add_job.execute_in_process(
        run_config=config,
        instance=instance,
        resources={
            "database": db.engine,
            "system_database": db.system_engine,
            "upload_store": LocalUploads(str(tmp_path / "uploads")),
        },
    )
    assert first.output_for_node("add_organizations_op") == {"added": 40, "unchanged": 0}
    keys = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    assert {f"{prefix}-{i:05d}" for i in range(40)} <= keys
    with system_transaction(db.engine) as conn:
        rows = conn.execute(
            select(organizations).where(organizations.c.slug.like(f"{prefix}%"))
        ).all()
        audits = conn.execute(
            select(func.count()).where(audit_log.c.entity_id.like(f"{prefix}%"))
        ).scalar_one()
    assert audits == 40
    assert {r.datev_chart for r in rows} == {"SKR03", "SKR04"}

    again = _add(db, path)
    assert (again.added, len(again.unchanged)) == ([], 40)
    assert again.summary().startswith("nothing changed")
    with system_transaction(db.engine) as conn:
        assert (
            conn.execute(select(organizations).where(organizations.c.slug.like(f"{prefix}%"))).all()
            == rows
        )
        assert (
            conn.execute(
                select(func.count()).where(audit_log.c.entity_id.like(f"{prefix}%"))
            ).scalar_one()
            == 40
        )
    # the same slug with another value is a change, refused by `add`
    changed = _csv(tmp_path, [_rows(tmp_path, prefix, 1)[0].replace("Mandant 0", "Other")], "b.csv")
    report = _add(db, changed)
    assert "exists with other values: name 'Mandant 0 GmbH'" in report.problems[0]
    assert _everything_of(db, bystander["id"]) == before


def test_a_change_is_checked_and_audited_with_who_and_why(db):
    bystander, before = _bystander(db)
    org = db.new_organization(**DATEV)
    with pytest.raises(Refused) as refused:
        change_organization(
            db.engine,
            find_organization(db.engine, org["slug"]),
            {"vat_id": "DE811907981"},
            by="anna",
            why="x",
        )
    assert refused.value.problems == ["the VAT id 'DE811907981' has a wrong check digit"]
    vat_id = fresh_vat_id()
    with pytest.raises(Refused):
        change_organization(
            db.engine, find_organization(db.engine, org["slug"]), {"name": "N"}, by="anna", why=" "
        )
    changes = change_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        {"vat_id": " ".join((vat_id[:5], vat_id[5:8], vat_id[8:])), "datev_chart": "skr04"},
        by="anna",
        why="new advisor",
    )
    assert changes == {"vat_id": [None, vat_id], "datev_chart": ["SKR03", "SKR04"]}
    assert (
        change_organization(
            db.engine,
            find_organization(db.engine, org["slug"]),
            {"datev_chart": "SKR04"},
            by="a",
            why="b",
        )
        == {}
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        [row] = conn.execute(
            select(audit_log).where(
                audit_log.c.organization_id == org["id"],
                audit_log.c.action == "organization_changed",
            )
        ).mappings()
    assert row["created_by"] == "anna" and row["details"]["why"] == "new advisor"
    assert _everything_of(db, bystander["id"]) == before


def test_a_number_format_that_would_write_an_imported_historys_numbers_again_is_refused(db):
    org = db.new_organization(invoice_number_format="AR-{counter:05d}")
    invoice_id = sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "K"))
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(sales_invoices)
            .where(sales_invoices.c.id == invoice_id)
            .values(invoice_number="RE-2024-000123", history=True)
        )
    with pytest.raises(Refused) as refused:
        change_organization(
            db.engine,
            find_organization(db.engine, org["slug"]),
            {"invoice_number_format": "RE-{year}-{counter:06d}"},
            by="anna",
            why="the old system's format",
        )
    [problem] = refused.value.problems
    assert "would write numbers the imported history already holds (RE-2024-000123" in problem
    assert change_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        {"invoice_number_format": "RG-{year}-{counter:06d}"},
        by="a",
        why="b",
    )


def _tick(db, store, instance):
    with build_sensor_context(
        instance=instance,
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": store,
        },
    ) as context:
        return upload_sensor(context)


def test_a_suspended_organizations_upload_waits_and_is_read_after_resume(db, tmp_path, monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_SETTLE_SECONDS", "0.1")
    bystander, before = _bystander(db)
    org = db.new_organization()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    store = LocalUploads(str(tmp_path))

    assert suspend_organization(
        db.engine, find_organization(db.engine, org["slug"]), reason="unpaid since March", by="anna"
    )
    _drop(store, org, {"invoice.xml": b"<Invoice/>"})
    result = _tick(db, store, instance)
    assert isinstance(result, SkipReason)
    assert f"{org['slug']} (unpaid since March)" in result.skip_message
    assert [f.key for f in store.list_inbox(org["slug"])] == [f"{org['slug']}/invoice.xml"]

    resumed = resume_organization(db.engine, find_organization(db.engine, org["slug"]), by="anna")
    assert resumed["reason"] == "unpaid since March"
    result = _tick(db, store, instance)
    [request] = [
        r for r in result.run_requests if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    assert request.partition_key == org["slug"]
    assert _everything_of(db, bystander["id"]) == before


def _read_back(folder) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], entry["path"]
    tables = {}
    for table in tenant_tables():
        with (folder / "tables" / f"{table.name}.csv").open(encoding="utf-8") as handle:
            tables[table.name] = list(csv.DictReader(handle))
    return {"manifest": manifest, "tables": tables}


def test_the_offboarding_export_reads_back_complete_and_the_deletion_waits_for_the_law(
    db, tmp_path
):
    bystander, before = _bystander(db)
    org = db.new_organization(**DATEV)
    customer_id = customer(db.engine, org["id"], "K-1", "Kunde AG")
    for day in (date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10)):
        sales_invoice(db.engine, org["id"], customer_id, day=day)
    incoming(db.engine, org["id"], "E-1")
    incoming(db.engine, org["id"], "E-2", taxes=(("S", "7", "50.00", "3.50"),))
    store = LocalUploads(str(tmp_path / "uploads"))
    _drop_and_register(db, store, org, {"scan.pdf": b"%PDF-1.4 the original"})

    folder = tmp_path / "handover"
    manifest = export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        folder,
        system=db.system_engine,
        by="anna",
        stores=Stores(uploads=store),
    )
    back = _read_back(folder)
    [upload] = back["tables"]["uploads"]
    original = folder / "originals" / upload["storage_key"]
    assert original.read_bytes() == b"%PDF-1.4 the original"
    assert hashlib.sha256(original.read_bytes()).hexdigest() == upload["content_hash"]
    assert manifest["not_copied"] == []
    assert manifest["deletable_from"] == "2035-01-01"  # invoices of 2026: 8 years after its end
    with tenant_transaction(db.engine, org["id"]) as conn:
        for table in tenant_tables():
            rows = [
                row
                for row in conn.execute(select(table).where(table.c.organization_id == org["id"]))
                .mappings()
                .all()
                # the audit rows of the export itself and of the thinning are written after it
                if row.get("action") not in ("organization_exported", "organization_thinned")
            ]
            assert len(back["tables"][table.name]) == len(rows), table.name
            for column in ("gross_total", "tax_total"):
                if column in table.c:
                    database = sum((r[column] or Decimal(0) for r in rows), Decimal(0))
                    exported = sum(
                        (Decimal(r[column] or "0") for r in back["tables"][table.name]), Decimal(0)
                    )
                    assert exported == database, (table.name, column)
    assert len(back["tables"]["sales_invoices"]) == 3
    assert len(back["tables"]["incoming_invoices"]) == 3  # two booked, the scan waiting
    organization = json.loads((folder / "organization.json").read_text())
    # suspended while the export is written, offboarded only once it is
    assert organization["datev_berater_nr"] == 29098 and organization["suspended_at"]
    assert organization["suspension_reason"] == "offboarding"
    assert find_organization(db.engine, org["slug"]).offboarded

    with pytest.raises(NotYet) as not_yet:
        delete_organization(
            db.engine,
            find_organization(db.engine, org["slug"]),
            system=db.system_engine,
            by="anna",
            today=date(2034, 12, 31),
        )
    assert "may be deleted from 2035-01-01" in str(not_yet.value)
    deleted = delete_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        system=db.system_engine,
        by="anna",
        today=date(2035, 1, 1),
        stores=Stores(uploads=store),
    )
    assert deleted.rows["sales_invoices"] == 3
    assert not (tmp_path / "uploads" / upload["storage_key"]).exists()
    # the audit trail of this year is books (10 years): kept, and the organization's row with it
    assert not deleted.gone and "audit_log" not in deleted.rows
    assert deleted.kept["audit_log"]["kept_through"] == "2036-12-31"
    with system_transaction(db.engine) as conn:
        assert (
            conn.execute(select(func.count()).where(organizations.c.id == org["id"])).scalar_one()
            == 1
        )
    gone = delete_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        system=db.system_engine,
        by="anna",
        today=date(2037, 1, 1),
    )
    assert gone.gone and set(gone.rows) <= {"audit_log", "audit_seals"} and gone.kept == {}
    with system_transaction(db.engine) as conn:
        assert (
            conn.execute(select(func.count()).where(organizations.c.id == org["id"])).scalar_one()
            == 0
        )
        records = conn.execute(
            select(audit_log)
            .where(
                audit_log.c.entity_id == org["slug"], audit_log.c.action == "organization_deleted"
            )
            .order_by(audit_log.c.id)
        ).mappings()
        first, last = list(records)
    assert first["created_by"] == "anna" and first["organization_id"] is None
    assert first["details"]["rows"]["sales_invoices"] == 3
    assert last["details"]["organization_row"] == "deleted"
    assert _everything_of(db, bystander["id"]) == before


def test_the_command_adds_a_file_with_its_partitions_and_a_second_time_says_nothing_changed(
    db, tmp_path, monkeypatch, capsys
):
    from invoice_pipelines.cli import main

    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    prefix = _prefix()
    path = _csv(tmp_path, _rows(tmp_path, prefix, 5))

    assert main(["organizations", "add", "--csv", str(path), "--by", "anna"]) == 0
    said = capsys.readouterr().out
    assert "added 5" in said and "partitions: 5 added (one call)" in said
    with DagsterInstance.get() as instance:
        keys = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    assert {f"{prefix}-{i:05d}" for i in range(5)} <= keys

    assert main(["organizations", "add", "--csv", str(path), "--by", "anna"]) == 0
    assert "nothing changed: all 5 organization(s) are there as given" in capsys.readouterr().out

    slug = f"{prefix}-00002"
    assert main(["organizations", "suspend", slug, "--reason", "unpaid", "--by", "anna"]) == 0
    capsys.readouterr()
    assert main(["organizations", "list", "--state", "suspended"]) == 0
    listed = capsys.readouterr().out
    assert slug in listed and "(unpaid)" in listed

    bad = _csv(tmp_path, [f"{prefix}-x,X,DE,DE1,,,,,"], "bad.csv")
    assert main(["organizations", "add", "--csv", str(bad)]) == 1
    assert "refused: bad.csv:2: the VAT id 'DE1' is not of the form" in capsys.readouterr().out


def test_list_and_show_import_no_dagster(db):
    """Reading the organizations answers at the speed of its query (test_cli_lazy.py's rule)."""
    org = db.new_organization()
    probe = (
        "import sys; from invoice_pipelines.cli import main; "
        f"codes = [main(['organizations', 'list']), main(['organizations', 'show', {org['slug']!r}])]; "
        "print('CODES', codes, 'DAGSTER', any(m == 'dagster' or m.startswith('dagster.') for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "INVOICE_PIPELINES_DB_URL": db.url},
        timeout=120,
        check=True,
    )
    assert "CODES [0, 0] DAGSTER False" in done.stdout, done.stdout[-500:] + done.stderr[-500:]
    assert org["slug"] in done.stdout


def test_the_launchpad_offboards_in_two_steps_and_refuses_the_deletion_before_its_date(
    db, tmp_path
):
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.tenants.jobs import organizations_offboard_job

    org = db.new_organization(**DATEV)
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde AG"))
    resources = {
        "database": db.engine,
        "system_database": db.system_engine,
        "upload_store": LocalUploads(str(tmp_path / "u")),
        "document_store": LocalFiles(tmp_path / "d", "documents"),
        "export_store": LocalFiles(tmp_path / "e", "exports"),
    }
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])

    def run(**config):
        return organizations_offboard_job.execute_in_process(
            run_config={
                "ops": {
                    "offboard_organization_op": {
                        "config": {"organization": org["slug"], "requested_by": "anna", **config}
                    }
                }
            },
            instance=instance,
            resources=resources,
            raise_on_error=False,
        )

    exported = run(export_dir=str(tmp_path / "out"))
    assert exported.success
    assert exported.output_for_node("offboard_organization_op")["deletable_from"] == "2035-01-01"
    assert (tmp_path / "out" / "tables" / "sales_invoices.csv").is_file()
    refused = run(delete=True)
    assert not refused.success
    failure = next(e for e in refused.all_events if e.is_step_failure)
    assert "may be deleted from 2035-01-01" in failure.step_failure_data.error.message
    assert org["slug"] in instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)


def test_an_organization_under_a_legal_hold_is_not_deleted_whatever_the_date(db, tmp_path):
    """settings retention.legal_hold (an audit, a lawsuit; core/retention.py) stops the deletion
    of an offboarded organization even after every retention period is over."""
    org = db.new_organization(**DATEV, settings={"retention": {"legal_hold": True}})
    customer_id = customer(db.engine, org["id"], "K-1", "Kunde AG")
    sales_invoice(db.engine, org["id"], customer_id, day=date(2026, 1, 10))
    export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        tmp_path / "handover",
        system=db.system_engine,
        by="anna",
    )
    with pytest.raises(NotYet) as held:
        delete_organization(
            db.engine,
            find_organization(db.engine, org["slug"]),
            system=db.system_engine,
            by="anna",
            today=date(2050, 1, 1),
        )
    assert "legal hold" in str(held.value)
    with system_transaction(db.engine) as conn:
        still = conn.execute(select(func.count()).where(organizations.c.id == org["id"]))
        assert still.scalar_one() == 1
