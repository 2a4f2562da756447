"""Issue 85, point 5: a file dropped for a suspended organization waits unread in its drop zone
(nothing registers it until the organization is resumed) and was counted nowhere. Now
`organizations show`, the `organizations` asset, `incoming uploads` and the asset's check
`no_uploads_held` each count it, with the suspension's reason."""

from __future__ import annotations

import json

from dagster import instance_for_test, materialize

from invoice_pipelines.cli import main
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.tenants.assets import organizations_asset
from invoice_pipelines.tenants.domain.lifecycle import suspend_organization


def _suspended_with_a_file(db, tmp_path):
    org = db.new_organization()
    suspend_organization(
        db.system_engine,
        find_organization(db.system_engine, org["slug"]),
        reason="unpaid",
        by="anna",
    )
    LocalUploads(str(tmp_path / "uploads")).put(org["slug"], "rechnung-4711.pdf", b"%PDF-1.4")
    return org


def test_commands_count_a_suspended_organizations_file_with_the_reason(
    db, tmp_path, monkeypatch, capsys
):
    org = _suspended_with_a_file(db, tmp_path)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))

    assert main(["organizations", "show", org["slug"], "--json"]) == 0
    holds = json.loads(capsys.readouterr().out)["holds"]
    assert holds["uploads_waiting"] == 1
    assert holds["uploads_waiting_because"] == "suspended: unpaid"
    assert main(["organizations", "show", org["slug"]]) == 0
    assert "uploads_waiting 1, uploads_waiting_because suspended: unpaid" in capsys.readouterr().out

    assert main(["incoming", "uploads", "--org", org["slug"]]) == 0
    listed = capsys.readouterr().out
    assert "rechnung-4711.pdf  waiting: not read" in listed
    assert "is suspended: unpaid" in listed and f"organizations resume {org['slug']}" in listed


def test_the_organizations_asset_and_its_check_show_the_held_file(db, tmp_path):
    org = _suspended_with_a_file(db, tmp_path)
    resources = {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "upload_store": LocalUploadStore(root=str(tmp_path / "uploads")),
    }
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [org["slug"]])
        result = materialize(
            [organizations_asset], partition_key=org["slug"], resources=resources, instance=instance
        )
    assert result.success
    [shown] = result.asset_materializations_for_node("organizations")
    assert shown.metadata["uploads_waiting"].value == 1
    assert shown.metadata["uploads_waiting_because"].value == "suspended: unpaid"
    held = {e.check_name: e for e in result.get_asset_check_evaluations()}["no_uploads_held"]
    assert not held.passed and held.partition == org["slug"]
    assert "1 upload(s)" in held.description and "suspended: unpaid" in held.description
