"""`invoice-pipelines audit-export` and the `audit_data_carrier` asset write the same carrier of
a year of history from the configured database and stores."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dagster import Definitions, MultiPartitionKey, instance_for_test

from invoice_pipelines.audit.assets import audit_data_carrier
from invoice_pipelines.audit.jobs import audit_export_job
from invoice_pipelines.cli import main
from invoice_pipelines_tests.audit.test_carrier import DTD
from invoice_pipelines_tests.audit.year_of_history import (
    YEAR,
    configure_commands,
    run_resources,
    seed_year,
)


@pytest.fixture(autouse=True)
def _dtd(monkeypatch):
    if not DTD.is_file():
        pytest.skip(f"the GDPdU DTD is not at {DTD}")
    monkeypatch.setenv("INVOICE_PIPELINES_GDPDU_DTD", str(DTD))


def test_audit_export_from_the_command_line(db, tmp_path, monkeypatch, capsys):
    stores = tmp_path / "stores"
    configure_commands(monkeypatch, db, stores)
    history = seed_year(db, stores)
    out = tmp_path / "carrier"
    slug = history.org["slug"]

    assert main(["audit-export", "--org", slug, "--year", str(YEAR), "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tables"]["incoming_invoices"]["rows"] == 13
    assert report["tables"]["sales_invoices"]["sums"]["gross_total"] == "3008.32"
    assert report["missing"] == [] and report["changed"] == []
    assert (out / "index.xml").is_file() and (out / "gdpdu-01-09-2004.dtd").is_file()

    assert main(["audit-export", "--org", slug, "--year", str(YEAR), "--out", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().out


def test_audit_export_onto_a_file_says_so_in_one_sentence(db, tmp_path, monkeypatch, capsys):
    configure_commands(monkeypatch, db, tmp_path / "stores")
    org = db.new_organization()
    plain = tmp_path / "carrier.zip"
    plain.write_bytes(b"not a folder")
    for out, words in ((plain, "is a file, not a folder"), (plain / "carrier", "cannot be made")):
        argv = ["audit-export", "--org", org["slug"], "--year", str(YEAR), "--out", str(out)]
        assert main(argv) == 2
        said = capsys.readouterr()
        [line] = said.out.splitlines()
        assert line.startswith(f"invoice-pipelines audit-export: {out} {words}")
        assert "Traceback" not in said.err
    assert plain.read_bytes() == b"not a folder"


def test_the_asset_writes_the_carrier_into_the_export_store(db, tmp_path):
    history = seed_year(db, tmp_path / "stores")
    slug = history.org["slug"]
    defs = Definitions(
        assets=[audit_data_carrier],
        jobs=[audit_export_job],
        resources=run_resources(db, tmp_path / "stores"),
    )
    key = MultiPartitionKey({"organizations": slug, "fiscal_year": str(YEAR)})
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [slug])
        result = defs.resolve_job_def("audit_export_job").execute_in_process(
            instance=instance, partition_key=key
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    index = Path(metadata["index_xml"].value)
    assert index.is_file() and index.parent.parent.name == str(YEAR)
    assert metadata["missing"].value == 0 and metadata["changed"].value == 0
    assert "| incoming\\_invoices | 13 |" in metadata["tables"].value
    [check] = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert check.asset_check_evaluation_data.passed
