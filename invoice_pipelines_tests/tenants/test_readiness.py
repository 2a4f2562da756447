"""Issue 85, point 1: an organization added without its DATEV numbers (docs/organizations.md
makes them optional) is a state the product knows: `organizations add` and `show` name what is
missing and what it holds back, and the `organizations` asset's check `organizations_ready`
warns for that organization's partition and passes for one that has them."""

from __future__ import annotations

import json
import uuid

from dagster import AssetCheckKey, AssetKey, instance_for_test, materialize

from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.tenants.assets import organizations_asset
from invoice_pipelines_tests.exports.books import DATEV


def test_add_and_show_name_the_missing_datev_numbers_and_what_they_hold(
    db, tmp_path, monkeypatch, capsys
):
    from invoice_pipelines.cli import main

    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", "")
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    slug = f"ready-{uuid.uuid4().hex[:8]}"
    assert main(["organizations", "add", "--slug", slug, "--name", "Ready GmbH"]) == 0
    said = capsys.readouterr().out
    # its drop zone is there, and named (issue 85: add made none)
    assert (tmp_path / "uploads" / slug).is_dir()
    assert f"drop invoices into {tmp_path / 'uploads' / slug}" in said
    assert f"note: {slug} has no DATEV Beraternummer/Mandantennummer" in said
    assert "held from the DATEV exports" in said
    assert f"organizations change {slug} --datev-berater-nr N --datev-mandant-nr N" in said

    assert main(["organizations", "show", slug]) == 0
    shown = capsys.readouterr().out
    assert "missing" in shown and "has no DATEV Beraternummer/Mandantennummer" in shown
    assert main(["organizations", "show", slug, "--json"]) == 0
    [sentence] = json.loads(capsys.readouterr().out)["missing"]
    assert "held from the DATEV exports" in sentence

    complete = f"ready-{uuid.uuid4().hex[:8]}"
    given = ["--datev-berater-nr", "29098", "--datev-mandant-nr", "55003"]
    assert main(["organizations", "add", "--slug", complete, "--name", "C", *given]) == 0
    assert "note:" not in capsys.readouterr().out


def test_the_organizations_ready_check_warns_for_each_organization_lacking_a_setting(db, tmp_path):
    lacking = db.new_organization()
    ready = db.new_organization(**DATEV)
    resources = {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "upload_store": LocalUploadStore(root=str(tmp_path)),
    }
    check = AssetCheckKey(AssetKey("organizations"), "organizations_ready")
    found = {}
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [lacking["slug"], ready["slug"]])
        for org in (lacking, ready):
            result = materialize(
                [organizations_asset], partition_key=org["slug"], resources=resources,
                instance=instance,
            )  # fmt: skip
            assert result.success
            [evaluation] = [
                e for e in result.get_asset_check_evaluations() if e.asset_check_key == check
            ]
            assert evaluation.partition == org["slug"]
            found[org["slug"]] = evaluation
    assert not found[lacking["slug"]].passed
    assert found[lacking["slug"]].severity.value == "WARN"
    assert "has no DATEV Beraternummer/Mandantennummer" in found[lacking["slug"]].description
    assert found[ready["slug"]].passed


def test_an_organization_that_exports_nothing_needs_no_datev_numbers(db):
    """The demo's US company books in QuickBooks (exports.directions []): nothing waits for DATEV
    numbers, so nothing is missing."""
    from invoice_pipelines.core.readiness import gaps
    from invoice_pipelines.db.tenancy import find_organization

    booking_elsewhere = db.new_organization(settings={"exports": {"directions": []}})
    assert gaps(find_organization(db.system_engine, booking_elsewhere["slug"])) == []
    assert gaps(find_organization(db.system_engine, db.new_organization()["slug"])) != []
