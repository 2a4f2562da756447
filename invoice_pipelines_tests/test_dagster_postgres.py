"""A deployment's instance, deploy/dagster.yaml copied into DAGSTER_HOME: it records runs in
PostgreSQL (dagster-postgres, psycopg2 scheme). That it equals the development instance, the
repository's dagster.yaml, but for storage: test_instance.py."""

import shutil
from pathlib import Path

import yaml
from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from invoice_pipelines.intake.defs import incoming_invoices, uploads
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.ocr import TesseractOcrEngine
from invoice_pipelines.resources.upload_stores import LocalUploadStore
from invoice_pipelines.tenants.partitions import ORGANIZATIONS_PARTITIONS_NAME

REPO = Path(__file__).resolve().parents[1]


def write_instance(home: Path) -> None:
    """$DAGSTER_HOME/dagster.yaml as a deployment without the Helm chart has it: a copy."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")


def test_pools_are_configured_only_when_an_op_uses_one():
    from invoice_pipelines.definitions import defs

    instance = yaml.safe_load((REPO / "dagster.yaml").read_text())  # deploy's: the same
    used = {
        node.pool
        for job in defs.get_repository_def().get_all_jobs()
        for node in job.graph.node_defs
        if getattr(node, "pool", None)
    }
    assert bool(instance["concurrency"].get("pools")) == bool(used), used


def test_materialization_is_recorded_in_postgres(
    tmp_path, monkeypatch, pg_scratch_factory, pg_database
):
    storage_url = make_url(pg_scratch_factory())
    home = tmp_path / "dagster_home"
    write_instance(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", storage_url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", storage_url.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", storage_url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(storage_url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", storage_url.database)

    org = pg_database.new_organization()
    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
        result = materialize(
            [uploads, incoming_invoices],
            selection=[incoming_invoices],
            instance=instance,
            partition_key=org["slug"],
            resources={
                "database": Database(url=pg_database.url),
                "upload_store": LocalUploadStore(root=str(tmp_path / "uploads")),
                "ocr_engine": TesseractOcrEngine(),
                "document_parser": DocumentParser(workers=1),
            },
        )
        assert result.success
        run_id = result.run_id

    engine = create_engine(storage_url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        status = conn.execute(
            text("SELECT status FROM runs WHERE run_id = :r"), {"r": run_id}
        ).scalar_one()
        events = conn.execute(
            text(
                "SELECT count(*) FROM event_logs WHERE run_id = :r AND dagster_event_type = 'ASSET_MATERIALIZATION'"
            ),
            {"r": run_id},
        ).scalar_one()
        partition = conn.execute(
            text(
                "SELECT partition FROM dynamic_partitions WHERE partitions_def_name = 'organizations'"
            )
        ).scalar_one()
    engine.dispose()
    assert status == "SUCCESS"
    assert events == 1
    assert partition == org["slug"]
