"""The Dagster instance: the repository's dagster.yaml is the one `make run` loads (DAGSTER_HOME is
the repository root), with Dagster's own files under the data folder, none in the repository, and
no warning about its configuration; deploy/dagster.yaml, a deployment's copy, differs from it only
in storage and where Dagster's files go. (test_make_run.py checks the same on a real `make run`.)
"""

import logging
import warnings
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance, asset, materialize

from invoice_pipelines.lib.run_coordinator import OrganizationRunCoordinator

REPO = Path(__file__).resolve().parents[1]
DEVELOPMENT = REPO / "dagster.yaml"
DEPLOYMENT = REPO / "deploy" / "dagster.yaml"

# the settings both instances must have alike (the chart's values too: test_deploy.py)
SHARED = {
    "run_coordinator",
    "concurrency",
    "run_monitoring",
    "run_retries",
    "sensors",
    "schedules",
    "retention",
    "telemetry",
}
# development only: Dagster's files under the data folder, not in DAGSTER_HOME (the repository
# root); no community dialog, which would write .nux/ there
DEVELOPMENT_ONLY = {"local_artifact_storage", "compute_logs", "nux"}
# what Dagster writes into DAGSTER_HOME when the instance leaves it the defaults
DAGSTER_HOME_FOLDERS = (
    "history",
    "schedules",
    "storage",
    ".nux",
    ".telemetry",
    "logs",
    ".logs_queue",
)


def test_the_deployment_differs_from_the_development_instance_only_in_storage_and_files():
    development = yaml.safe_load(DEVELOPMENT.read_text())
    deployment = yaml.safe_load(DEPLOYMENT.read_text())
    assert set(development) == SHARED | DEVELOPMENT_ONLY | {"storage"}
    assert set(deployment) == SHARED | {"storage"}
    assert {key: development[key] for key in SHARED} == {key: deployment[key] for key in SHARED}
    assert development["storage"] == {
        "sqlite": {"base_dir": {"env": "INVOICE_PIPELINES_DAGSTER_DIR"}}
    }
    storage = deployment["storage"]["custom"]
    assert storage["module"] == "invoice_pipelines.resources.dagster_instance.instance_storage"
    postgres = storage["config"]["postgres_db"]
    assert postgres["scheme"] == "postgresql+psycopg2"
    assert postgres["hostname"] == {"env": "DAGSTER_PG_HOST"}


@pytest.fixture
def make_run_environment(tmp_path, monkeypatch) -> Path:
    """The environment scripts/run-dagster.sh gives Dagster, with the data folder in tmp_path."""
    data_dir = tmp_path / "data"
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("DAGSTER_HOME", str(REPO))
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_DIR", str(data_dir / "dagster"))
    monkeypatch.setenv(
        "INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR", str(data_dir / "dagster" / "compute_logs")
    )
    return data_dir


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@asset
def greeting() -> None:
    print("hello from a run of the development instance")


def test_make_run_loads_the_repositorys_dagster_yaml_and_keeps_dagsters_files_in_the_data_folder(
    make_run_environment: Path,
):
    assert DEVELOPMENT.is_file(), "the design card's top level has a dagster.yaml"
    data_dir = make_run_environment
    before = {name for name in DAGSTER_HOME_FOLDERS if (REPO / name).exists()}
    logged = _Records()
    logging.getLogger().addHandler(logged)
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            with DagsterInstance.get() as instance:
                assert isinstance(instance.run_coordinator, OrganizationRunCoordinator)
                assert not instance.nux_enabled and not instance.telemetry_enabled
                result = materialize([greeting], instance=instance)
                assert result.success
    finally:
        logging.getLogger().removeHandler(logged)
    # no warning about the instance's configuration (e.g. Dagster's "No dagster instance
    # configuration file (dagster.yaml) found at ...")
    assert [r.getMessage() for r in logged.records] == []
    assert [str(w.message) for w in warned] == []
    # the run, its events and its captured output are under the data folder
    dagster_dir = data_dir / "dagster"
    assert (dagster_dir / "history" / "runs.db").is_file()
    assert (dagster_dir / "history" / "runs" / f"{result.run_id}.db").is_file()
    assert (dagster_dir / "schedules" / "schedules.db").is_file()
    (stdout,) = (dagster_dir / "compute_logs" / result.run_id).rglob("*.out")  # the run page's
    assert "hello from a run of the development instance" in stdout.read_text()
    # and nothing of Dagster's in the repository root, which is DAGSTER_HOME
    after = {name for name in DAGSTER_HOME_FOLDERS if (REPO / name).exists()}
    assert after == before == set()
