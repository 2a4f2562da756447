"""A deployment's instance, deploy/dagster.yaml copied into DAGSTER_HOME: it records runs in
PostgreSQL (dagster-postgres, psycopg2 scheme). That it equals the development instance, the
repository's dagster.yaml, but for storage: test_instance.py."""

import os
import shutil
from pathlib import Path

import yaml
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    Definitions,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    materialize,
)
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from invoice_pipelines.dagster_internals.planned_events import BATCH_SIZE, BATCH_SIZE_VARIABLE
from invoice_pipelines.intake.assets import incoming_invoices, uploads
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.resources.ocr.engines import TesseractOcrEngine

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


def deployment_instance(tmp_path, monkeypatch, storage_url) -> None:
    """DAGSTER_HOME with deploy/dagster.yaml and the DAGSTER_PG_* variables of storage_url."""
    home = tmp_path / "dagster_home"
    write_instance(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_USERNAME", storage_url.username or "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", storage_url.password or "")
    monkeypatch.setenv("DAGSTER_PG_HOST", storage_url.host or "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(storage_url.port or 5432))
    monkeypatch.setenv("DAGSTER_PG_DB", storage_url.database)


def sessions_opened(storage_url) -> int:
    """PostgreSQL's count of the sessions ever established to the database (what a DBA reads)."""
    engine = create_engine(
        storage_url.set(database="postgres").render_as_string(hide_password=False)
    )
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT sessions FROM pg_stat_database WHERE datname = :d"),
                {"d": storage_url.database},
            ).scalar_one()
    finally:
        engine.dispose()


PARTITIONS = 60


@asset
def months_of_history(context) -> None:
    """Reports one materialization a month, as a backfill run over many partitions does."""
    for n in range(PARTITIONS):
        context.log_event(AssetMaterialization("history_month", partition=f"month-{n}"))


def test_a_run_keeps_one_connection_to_dagsters_storage(tmp_path, monkeypatch, pg_scratch_factory):
    """A run's events do not each open a connection (issue 55): dagster-postgres' NullPool opened
    two a materialization (its row, then its index rows), 120 and more for this run."""
    storage_url = make_url(pg_scratch_factory())
    deployment_instance(tmp_path, monkeypatch, storage_url)
    with DagsterInstance.get() as instance:
        before = sessions_opened(storage_url)
        result = materialize([months_of_history], instance=instance)
        assert result.success
        opened = sessions_opened(storage_url) - before
        materialized = instance.get_materialized_partitions(AssetKey("history_month"))
    assert materialized == {f"month-{n}" for n in range(PARTITIONS)}
    assert opened <= 10, f"{opened} connections for a run of {PARTITIONS} materializations"


def test_materialization_is_recorded_in_postgres(
    tmp_path, monkeypatch, pg_scratch_factory, pg_database
):
    storage_url = make_url(pg_scratch_factory())
    deployment_instance(tmp_path, monkeypatch, storage_url)

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
                "system_database": SystemDatabase(url=pg_database.url),
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


RANGE = [f"org-{n:03d}" for n in range(50)]
range_partitions = StaticPartitionsDefinition(RANGE)


@asset(partitions_def=range_partitions)
def range_exports_a(context) -> None:
    """Stands for an export asset: a run over a range of organizations."""


@asset(partitions_def=range_partitions)
def range_exports_b(context) -> None:
    """The other direction."""


def test_a_run_over_a_range_plans_every_partition_in_one_write(
    tmp_path, monkeypatch, pg_scratch_factory
):
    """Creating a run over 50 partitions of two assets records 100 planned materializations, one
    per asset and partition, so the UI shows each partition materializing while it runs; they
    are written in one INSERT (issue 76: one write each, 20-35 ms apiece, made the monthly
    exports' schedule tick take 34.6 s at 1,000 organizations)."""
    storage_url = make_url(pg_scratch_factory())
    deployment_instance(tmp_path, monkeypatch, storage_url)
    # the storage turns Dagster's event batches on unless the deployment set the variable
    monkeypatch.setenv(BATCH_SIZE_VARIABLE, "unset below")
    monkeypatch.delenv(BATCH_SIZE_VARIABLE)
    job = Definitions(
        assets=[range_exports_a, range_exports_b],
        jobs=[define_asset_job("range_job", selection=[range_exports_a, range_exports_b])],
    ).resolve_job_def("range_job")
    inserts: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO EVENT_LOGS"):
            inserts.append(statement)

    with DagsterInstance.get() as instance:
        event.listen(Engine, "before_cursor_execute", count)
        try:
            run = instance.create_run_for_job(
                job_def=job,
                tags={
                    "dagster/asset_partition_range_start": RANGE[0],
                    "dagster/asset_partition_range_end": RANGE[-1],
                },
            )
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        storage = instance.event_log_storage
        planned = {
            key: storage.get_latest_asset_partition_materialization_attempts_without_materializations(
                AssetKey(key)
            )
            for key in ("range_exports_a", "range_exports_b")
        }
    assert os.environ[BATCH_SIZE_VARIABLE] == str(BATCH_SIZE)
    for attempts in planned.values():
        assert set(attempts) == set(RANGE)
        assert {run_id for run_id, _ in attempts.values()} == {run.run_id}
    assert len(inserts) == 1, f"{len(inserts)} inserts of events for one run's plan"
