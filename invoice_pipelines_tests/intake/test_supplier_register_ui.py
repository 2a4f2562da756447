"""The supplier register where a person meets it (issue 54): the `suppliers` command, the
launchpad job and the `supplier_register` asset with its checks; on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from dagster import DagsterEventType, DagsterInstance, RunConfig, materialize

from invoice_pipelines.cli import main
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.assets import supplier_register
from invoice_pipelines.intake.jobs import SupplierChangeConfig, change_supplier_register_job
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import supplier_history, supplier_rows
from invoice_pipelines_tests.checked_latest import assert_checked_latest
from invoice_pipelines_tests.intake.test_duplicates import _intake
from invoice_pipelines_tests.intake.test_supplier_register import IBAN, SELLER, VAT_ID, _invoice


def _cli(db, monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    code = main(["suppliers", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_person_keeps_the_register_from_the_command_line(db, monkeypatch, capsys):
    org = db.new_organization()
    slug = org["slug"]
    code, out, _ = _cli(
        db, monkeypatch, capsys, "add", "--org", slug, "--name", SELLER, "--vat-id", VAT_ID,
        "--iban", f"{IBAN}:COBADEFFXXX", "--by", "Anna", "--reason", "contract 2026",
    )  # fmt: skip
    assert code == 0
    supplier_id = json.loads(out)["id"]
    code, out, _ = _cli(db, monkeypatch, capsys, "list", "--org", slug)
    assert code == 0 and SELLER in out and VAT_ID in out and IBAN in out

    # refused, one line, nothing written: no reason; a bad IBAN; the VAT id of another supplier
    code, _, err = _cli(
        db, monkeypatch, capsys, "change", "--org", slug, "--id", str(supplier_id),
        "--notice-email", "ap@lieferant.example", "--version", "1", "--by", "Anna",
        "--reason", " ",
    )  # fmt: skip
    assert code == 2 and "says why" in err
    code, _, err = _cli(
        db, monkeypatch, capsys, "change", "--org", slug, "--id", str(supplier_id),
        "--iban", "DE00000000000000000000", "--version", "1", "--by", "Anna",
        "--reason", "new bank",
    )  # fmt: skip
    assert code == 2 and "is not an IBAN" in err
    code, _, err = _cli(
        db, monkeypatch, capsys, "add", "--org", slug, "--name", "Someone Else",
        "--vat-id", VAT_ID.lower(), "--by", "Anna", "--reason", "typo",
    )  # fmt: skip
    assert code == 2 and f"belongs to supplier {supplier_id}" in err

    code, _, _ = _cli(
        db, monkeypatch, capsys, "change", "--org", slug, "--id", str(supplier_id),
        "--notice-email", "ap@lieferant.example", "--version", "1", "--by", "Anna",
        "--reason", "the supplier's letter of 2026-11-02",
    )  # fmt: skip
    assert code == 0
    code, _, _ = _cli(
        db, monkeypatch, capsys, "link-vendor", "--org", slug, "--id", str(supplier_id),
        "--vendor", "58", "--by", "Anna", "--reason", "the vendor in QuickBooks",
    )  # fmt: skip
    assert code == 0
    code, out, _ = _cli(db, monkeypatch, capsys, "show", "--org", slug, "--id", str(supplier_id))
    shown = json.loads(out)
    assert (shown["notice_email"], shown["qbo_vendor_id"], shown["version"]) == (
        "ap@lieferant.example",
        "58",
        3,
    )
    assert [(h["action"], h["changed_by"]) for h in shown["history"]] == [
        ("add", "Anna"),
        ("change", "Anna"),
        ("change", "Anna"),
    ]
    assert shown["history"][1]["reason"] == "the supplier's letter of 2026-11-02"
    assert shown["history"][1]["before"]["notice_email"] is None

    code, out, _ = _cli(db, monkeypatch, capsys, "policy", "--org", slug)
    assert json.loads(out) == {"supplier_policy": "first_invoice"}
    code, out, _ = _cli(
        db, monkeypatch, capsys, "policy", "--org", slug, "--set", "review",
        "--by", "Anna", "--reason", "every new supplier is confirmed by a person",
    )  # fmt: skip
    assert json.loads(out) == {"supplier_policy": "review"}
    code, _, err = _cli(db, monkeypatch, capsys, "list", "--org", "no-such-organization")
    assert code == 2 and "no-such-organization" in err


def test_learn_history_registers_the_sellers_of_accepted_documents(
    db, tmp_path, monkeypatch, capsys
):
    """Documents accepted before the register (a migration): a person registers their sellers
    at once; what the register knows already is left alone."""
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        from invoice_pipelines.supplier_register import set_supplier_policy

        set_supplier_policy(conn, org["id"], "review", changed_by="test", reason="the test's setup")
    _intake(db, store, org, {"a.xml": _invoice(iban=IBAN)})
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        from sqlalchemy import update

        from invoice_pipelines.db.tables import incoming_invoices

        # as the intake accepted documents before this revision: VALIDATED without a register
        conn.execute(update(incoming_invoices).values(status="VALIDATED"))
    code, out, _ = _cli(
        db, monkeypatch, capsys, "learn-history", "--org", org["slug"], "--by", "Migration Team",
        "--reason", "suppliers of the books taken over",
    )  # fmt: skip
    assert code == 0 and json.loads(out) == {"registered": 1, "skipped": []}
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        (change,) = supplier_history(conn, org["id"], supplier["id"])
    assert (supplier["name"], supplier["vat_id"], supplier["origin"]) == (SELLER, VAT_ID, "person")
    assert change["changed_by"] == "Migration Team"
    code, out, _ = _cli(
        db, monkeypatch, capsys, "learn-history", "--org", org["slug"], "--by", "Migration Team",
        "--reason", "again",
    )  # fmt: skip
    assert json.loads(out) == {"registered": 0, "skipped": []}


def test_the_launchpad_job_changes_the_register_and_the_asset_shows_it(db):
    org = db.new_organization()
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    resources = {"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)}

    def change(**config):
        return change_supplier_register_job.execute_in_process(
            run_config=RunConfig(ops={"change_supplier_register": SupplierChangeConfig(**config)}),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )

    done = change(
        organization=org["slug"], name=SELLER, vat_id=VAT_ID, changed_by="Anna",
        reason="new supplier",
    )  # fmt: skip
    assert done.success
    [shown] = done.asset_materializations_for_node("change_supplier_register")
    assert shown.partition == org["slug"] and shown.metadata["suppliers"].value == 1
    refused = change(
        organization=org["slug"], name="Look Alike", vat_id=VAT_ID, changed_by="Anna",
        reason="again",
    )  # fmt: skip
    assert not refused.success
    assert "belongs to supplier" in str(refused.failure_data_for_node("change_supplier_register"))
    # a second supplier whose name looks like the first (Cyrillic e): refused unless the person
    # says it is another company; then the check says so
    look_alike = dict(
        organization=org["slug"], name="Li\u0435ferant GmbH", vat_id="DE111111111",
        changed_by="Anna", reason="another supplier",
    )  # fmt: skip
    refused = change(**look_alike)
    assert not refused.success
    assert "reads like the registered" in str(
        refused.failure_data_for_node("change_supplier_register")
    )
    look_alike = change(**look_alike, despite_lookalike=True)
    assert look_alike.success
    # the change's run evaluates the register's checks on the materialization it logs (issue 73:
    # the UI showed them never evaluated)
    logged = {
        e.check_name: (e.passed, e.partition)
        for e in (
            event.dagster_event.event_specific_data
            for event in instance.all_logs(look_alike.run_id)
            if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }
    assert logged == {
        "suppliers_told_apart": (False, org["slug"]),
        "booked_documents_from_registered_suppliers": (True, org["slug"]),
    }
    assert_checked_latest(instance, "supplier_register", sorted(logged), org["slug"])
    result = materialize(
        [supplier_register], instance=instance, partition_key=org["slug"], resources=resources
    )
    [event] = result.asset_materializations_for_node("supplier_register")
    assert event.metadata["suppliers"].value == 2
    assert SELLER in event.metadata["suppliers_table"].value
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["suppliers_told_apart"].passed
    assert checks["booked_documents_from_registered_suppliers"].passed
