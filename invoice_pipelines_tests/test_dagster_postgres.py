"""The production dagster.yaml records runs in PostgreSQL (dagster-postgres, psycopg2 scheme)."""

import shutil
from pathlib import Path

from dagster import DagsterInstance, materialize
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from invoice_pipelines.resources.database import Database
from invoice_pipelines.tenants.defs import organization_overview
from invoice_pipelines.tenants.partitions import ORGANIZATIONS_PARTITIONS_NAME

REPO = Path(__file__).resolve().parents[1]


def test_materialization_is_recorded_in_postgres(
    tmp_path, monkeypatch, pg_scratch_factory, pg_database
):
    storage_url = make_url(pg_scratch_factory())
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
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
            [organization_overview],
            instance=instance,
            partition_key=org["slug"],
            resources={"database": Database(url=pg_database.url)},
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
