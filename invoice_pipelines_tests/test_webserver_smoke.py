"""Start the real Dagster webserver on a free loopback port and ask GraphQL what it loaded."""

import json
import os
import urllib.request
from pathlib import Path

import pytest

from invoice_pipelines_devtools.browser import local_ui
from invoice_pipelines_tests.test_definitions import (
    EXPECTED_ASSETS,
    EXPECTED_SCHEDULES,
    EXPECTED_SENSORS,
)

REPO = Path(__file__).resolve().parents[1]
QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        locationOrLoadError {
          __typename
          ... on PythonError { message }
          ... on RepositoryLocation {
            repositories {
              name
              assetNodes { assetKey { path } }
              sensors { name sensorState { status } }
              schedules { name scheduleState { status } }
            }
          }
        }
      }
    }
  }
}
"""


def _post(url: str, query: str) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, sqlite_database):
    # one webserver for the module (starting one is most of each test's time): the first test
    # only reads the workspace, the second adds a partition and queues a run of its own
    # organization. The instance `make run` uses: SQLite storage, our run coordinator, the limits
    home = tmp_path_factory.mktemp("webserver")
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": sqlite_database.url}
    local_ui.write_instance(home)
    with local_ui.webserver(home, env, home / "webserver.log") as server:
        try:
            server.wait_until_up(120)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server.base


def test_webserver_loads_code_location_without_errors(webserver):
    data = _post(f"{webserver}/graphql", QUERY)
    assert "errors" not in data, data.get("errors")
    entries = data["data"]["workspaceOrError"]["locationEntries"]
    assert [e["name"] for e in entries] == ["invoice_pipelines"]
    location = entries[0]["locationOrLoadError"]
    assert location["__typename"] == "RepositoryLocation", location
    repo = location["repositories"][0]
    assets = {"/".join(node["assetKey"]["path"]) for node in repo["assetNodes"]}
    sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
    schedules = {s["name"]: s["scheduleState"]["status"] for s in repo["schedules"]}
    assert set(EXPECTED_ASSETS) == assets
    assert EXPECTED_SENSORS <= set(sensors)
    assert EXPECTED_SCHEDULES <= set(schedules)
    # default_status RUNNING: a newcomer sees work flow without clicking anything
    assert all(sensors[name] == "RUNNING" for name in EXPECTED_SENSORS)


LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status tags { key value } } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""


ADD_PARTITION = """
mutation Add($repo: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $repo, partitionsDefName: $name, partitionKey: $key) {
    __typename
  }
}
"""

REPOSITORY = {"repositoryLocationName": "invoice_pipelines", "repositoryName": "__repository__"}


def _graphql(webserver: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{webserver}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)
    assert "errors" not in data, data.get("errors")
    return data["data"]


def test_a_launchpad_run_is_tagged_with_its_organization(webserver, sqlite_database):
    """Materializing one organization's partition from the UI: the run gets the organization tag."""
    org = sqlite_database.new_organization()
    # what organizations_sensor (or "Add partition" in the UI) does
    added = _graphql(
        webserver, ADD_PARTITION, {"repo": REPOSITORY, "name": "organizations", "key": org["slug"]}
    )
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess", added
    launched = _graphql(
        webserver,
        LAUNCH,
        {
            "executionParams": {
                "selector": {**REPOSITORY, "pipelineName": "intake_job"},
                "runConfigData": {"ops": {"incoming_invoices": {"config": {"document_ids": [1]}}}},
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": org["slug"]}]},
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    tags = {t["key"]: t["value"] for t in launched["run"]["tags"]}
    assert tags["invoice_pipelines/organization"] == org["slug"]
    assert launched["run"]["status"] == "QUEUED"  # no daemon here: it waits in the queue
