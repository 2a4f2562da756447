"""The deployment files: deploy/helm/values.yaml against the keys Dagster's Helm chart documents,
deploy/Containerfile against what the project needs at run time, and both against
deploy/dagster.yaml, the instance of a deployment without the chart (the development instance
dagster.yaml but for storage: test_instance.py), so the deployments cannot drift apart.

CHART_KEYS below is our own summary of the chart's values, written from reading the chart's
pydantic models (helm/dagster/schema/schema/charts/**, which generate its values.schema.json) in
dagster-io/dagster for chart 1.13.x, the chart version that matches dagster 1.13.27. It lists only
the sections we use, complete for those sections, so a misspelled or invented key fails here instead
of being silently ignored by `helm install`. Sections we do not use are not listed: using one means
reading the chart's model for it and adding its keys here.
"""

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster import QueuedRunCoordinator
from dagster._core.storage.compute_log_manager import ComputeLogManager
from dagster._serdes import ConfigurableClassData  # how the instance loads configured classes
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

from invoice_pipelines.lib.run_coordinator import (
    BACKFILL_RUN_TAGS,
    BULK_RUN_TAGS,
    LANE_TAG,
    SHARE_TAG,
    SLOT_TAG,
    WAITS_ON_TAG,
)
from invoice_pipelines.settings import SETTINGS
from invoice_pipelines_tests.import_probe import PATH_ONLY, probe

ROOT = Path(__file__).resolve().parents[1]
VALUES = ROOT / "deploy" / "helm" / "values.yaml"
CONTAINERFILE = ROOT / "deploy" / "Containerfile"
INSTANCE_TEMPLATE = ROOT / "deploy" / "dagster.yaml"

PULL_POLICIES = ("Always", "IfNotPresent", "Never")

# Kinds of value: "section" (a mapping whose keys are listed here too), "items" (a list of
# mappings whose keys are listed under "<path>[]"), "str", "str-source" (a string or Dagster's
# {env: NAME}), "int", "bool", "str-list", "k8s" (a
# Kubernetes object passed through as written: resources, securityContext, affinity, ...),
# "k8s-list", "image", "env", "secret-refs", "tick-retention", "tag-limits", or a tuple of the
# allowed values.
_K8S_POD_KEYS = {
    "annotations": "k8s",
    "labels": "k8s",
    "nodeSelector": "k8s",
    "affinity": "k8s",
    "tolerations": "k8s-list",
    "podSecurityContext": "k8s",
    "securityContext": "k8s",
    "resources": "k8s",
    "livenessProbe": "k8s",
    "readinessProbe": "k8s",
    "startupProbe": "k8s",
    "volumes": "k8s-list",
    "volumeMounts": "k8s-list",
    "schedulerName": "str",
    "env": "env",
    "envConfigMaps": "secret-refs",
    "envSecrets": "secret-refs",
    "image": "image",
}


def _under(prefix: str, keys: dict) -> dict:
    return {f"{prefix}.{key}": kind for key, kind in keys.items()}


CHART_KEYS: dict[str, object] = {
    "global": "section",
    "global.postgresqlSecretName": "str",
    "global.dagsterHome": "str",
    "global.serviceAccountName": "str",
    "global.celeryConfigSecretName": "str",
    "global.dagsterInstanceConfigMap": "str",
    "generatePostgresqlPasswordSecret": "bool",
    "imagePullSecrets": "secret-refs",
    # PostgreSQL for Dagster's storage (enabled: false -> an external server)
    "postgresql": "section",
    "postgresql.enabled": "bool",
    "postgresql.image": "image",
    "postgresql.postgresqlHost": "str",
    "postgresql.postgresqlUsername": "str",
    "postgresql.postgresqlPassword": "str",
    "postgresql.postgresqlDatabase": "str",
    "postgresql.postgresqlParams": "k8s",
    "postgresql.postgresqlScheme": "str",
    "postgresql.service": "section",
    "postgresql.service.port": "int",
    # the webserver
    "dagsterWebserver": "section",
    **_under("dagsterWebserver", _K8S_POD_KEYS),
    "dagsterWebserver.replicaCount": "int",
    "dagsterWebserver.nameOverride": "str",
    "dagsterWebserver.pathPrefix": "str",
    "dagsterWebserver.service": "k8s",
    "dagsterWebserver.workspace": "k8s",
    "dagsterWebserver.deploymentLabels": "k8s",
    "dagsterWebserver.enableReadOnly": "bool",
    "dagsterWebserver.dbStatementTimeout": "int",
    "dagsterWebserver.dbPoolRecycle": "int",
    "dagsterWebserver.logLevel": "str",
    # the user-code deployments (the dagster-user-deployments subchart)
    "dagster-user-deployments": "section",
    "dagster-user-deployments.enabled": "bool",
    "dagster-user-deployments.enableSubchart": "bool",
    "dagster-user-deployments.imagePullSecrets": "secret-refs",
    "dagster-user-deployments.deployments": "items",
    **_under("dagster-user-deployments.deployments[]", _K8S_POD_KEYS),
    "dagster-user-deployments.deployments[].name": "str",
    "dagster-user-deployments.deployments[].port": "int",
    "dagster-user-deployments.deployments[].replicaCount": "int",
    "dagster-user-deployments.deployments[].dagsterApiGrpcArgs": "str-list",
    "dagster-user-deployments.deployments[].codeServerArgs": "str-list",
    "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns": "section",
    "dagster-user-deployments.deployments[].includeConfigInLaunchedRuns.enabled": "bool",
    "dagster-user-deployments.deployments[].deploymentNamespace": "str",
    "dagster-user-deployments.deployments[].initContainers": "k8s-list",
    "dagster-user-deployments.deployments[].sidecarContainers": "k8s-list",
    "dagster-user-deployments.deployments[].deploymentStrategy": "k8s",
    "dagster-user-deployments.deployments[].service": "k8s",
    # the run launcher: one Kubernetes Job per run
    "runLauncher": "section",
    "runLauncher.type": ("CeleryK8sRunLauncher", "K8sRunLauncher", "CustomRunLauncher"),
    "runLauncher.config": "section",
    "runLauncher.config.k8sRunLauncher": "section",
    **_under(
        "runLauncher.config.k8sRunLauncher",
        {
            "image": "image",
            "imagePullPolicy": PULL_POLICIES,
            "jobNamespace": "str",
            "loadInclusterConfig": "bool",
            "kubeconfigFile": "str",
            "envConfigMaps": "secret-refs",
            "envSecrets": "secret-refs",
            "envVars": "str-list",
            "volumeMounts": "k8s-list",
            "volumes": "k8s-list",
            "labels": "k8s",
            "failPodOnRunFailure": "bool",
            "resources": "k8s",
            "schedulerName": "str",
            "securityContext": "k8s",
            "runK8sConfig": "section",
        },
    ),
    **_under(
        "runLauncher.config.k8sRunLauncher.runK8sConfig",
        {
            "containerConfig": "k8s",
            "podSpecConfig": "k8s",
            "podTemplateSpecMetadata": "k8s",
            "jobSpecConfig": "k8s",
            "jobMetadata": "k8s",
        },
    ),
    # the daemon: run queue, run monitoring, run retries, sensors and schedules
    "dagsterDaemon": "section",
    **_under("dagsterDaemon", _K8S_POD_KEYS),
    "dagsterDaemon.enabled": "bool",
    "dagsterDaemon.heartbeatTolerance": "int",
    "dagsterDaemon.deploymentLabels": "k8s",
    "dagsterDaemon.checkDbReadyInitContainer": "bool",
    "dagsterDaemon.logFormat": "str",
    "dagsterDaemon.runCoordinator": "section",
    "dagsterDaemon.runCoordinator.enabled": "bool",
    "dagsterDaemon.runCoordinator.type": ("QueuedRunCoordinator", "CustomRunCoordinator"),
    "dagsterDaemon.runCoordinator.config": "section",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator": "section",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator.module": "str",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator.class": "str",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator.config": "k8s",
    "dagsterDaemon.runMonitoring": "section",
    **_under(
        "dagsterDaemon.runMonitoring",
        {
            "enabled": "bool",
            "startTimeoutSeconds": "int",
            "cancelTimeoutSeconds": "int",
            "maxResumeRunAttempts": "int",
            "pollIntervalSeconds": "int",
            "freeSlotsAfterRunEndSeconds": "int",
        },
    ),
    "dagsterDaemon.runRetries": "section",
    "dagsterDaemon.runRetries.enabled": "bool",
    "dagsterDaemon.runRetries.maxRetries": "int",
    "dagsterDaemon.runRetries.retryOnAssetOrOpFailure": "bool",
    **{
        f"dagsterDaemon.{loop}{key}": kind
        for loop in ("sensors", "schedules", "backfills")
        for key, kind in {
            "": "section",
            ".useThreads": "bool",
            ".numWorkers": "int",
            ".numSubmitWorkers": "int",
        }.items()
    },
    # instance-wide concurrency: run limits and pools
    "concurrency": "section",
    "concurrency.enabled": "bool",
    "concurrency.pools": "section",
    "concurrency.pools.defaultLimit": "int",
    "concurrency.pools.granularity": ("run", "op"),
    "concurrency.pools.opGranularityRunBuffer": "int",
    "concurrency.runs": "section",
    "concurrency.runs.maxConcurrentRuns": "int",
    "concurrency.runs.tagConcurrencyLimits": "tag-limits",
    # tick retention
    "retention": "section",
    "retention.enabled": "bool",
    "retention.schedule": "section",
    "retention.schedule.purgeAfterDays": "tick-retention",
    "retention.sensor": "section",
    "retention.sensor.purgeAfterDays": "tick-retention",
    "retention.autoMaterialize": "section",
    "retention.autoMaterialize.purgeAfterDays": "tick-retention",
    # compute logs (captured stdout/stderr): the S3 manager only (compute_log_manager.py's models)
    "computeLogManager": "section",
    "computeLogManager.type": (
        "NoOpComputeLogManager",
        "AzureBlobComputeLogManager",
        "GCSComputeLogManager",
        "S3ComputeLogManager",
        "CustomComputeLogManager",
    ),
    "computeLogManager.config": "section",
    "computeLogManager.config.s3ComputeLogManager": "section",
    **_under(
        "computeLogManager.config.s3ComputeLogManager",
        {
            "bucket": "str-source",
            "localDir": "str-source",
            "prefix": "str-source",
            "useSsl": "bool",
            "verify": "bool",
            "verifyCertPath": "str-source",
            "endpointUrl": "str-source",
            "skipEmptyFiles": "bool",
            "uploadInterval": "int",
            "uploadExtraArgs": "k8s",
            "showUrlOnly": "bool",
            "region": "str-source",
        },
    ),
    "telemetry": "section",
    "telemetry.enabled": "bool",
    "migrate": "section",
    "migrate.enabled": "bool",
}

# What our deployment relies on being set (a chart default would be wrong for us).
REQUIRED = (
    "global.postgresqlSecretName",
    "generatePostgresqlPasswordSecret",
    "postgresql.enabled",
    "postgresql.postgresqlHost",
    "postgresql.postgresqlScheme",
    "dagsterWebserver.image",
    "dagster-user-deployments.enabled",
    "dagster-user-deployments.deployments",
    "runLauncher.type",
    "dagsterDaemon.image",
    "dagsterDaemon.runCoordinator.type",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator.module",
    "dagsterDaemon.runCoordinator.config.customRunCoordinator.class",
    "dagsterDaemon.runMonitoring.enabled",
    "dagsterDaemon.runRetries.enabled",
    "concurrency.enabled",
    "concurrency.runs.tagConcurrencyLimits",
    "concurrency.pools.defaultLimit",
    "retention.enabled",
    "computeLogManager.type",
    "computeLogManager.config.s3ComputeLogManager.bucket",
)


def _kind_errors(value, kind, path: str) -> list[str]:
    """Why `value` is not of `kind` (empty: it is); sections and items are walked by the caller."""

    def is_str_list(v):
        return isinstance(v, list) and all(isinstance(x, str) for x in v)

    if isinstance(kind, tuple):
        return [] if value in kind else [f"{path}: {value!r} is not one of {', '.join(kind)}"]
    ok = {
        "section": lambda v: isinstance(v, dict),
        "items": lambda v: isinstance(v, list) and all(isinstance(x, dict) for x in v),
        "str": lambda v: isinstance(v, str),
        "str-source": lambda v: (
            isinstance(v, str)
            or (isinstance(v, dict) and list(v) == ["env"] and isinstance(v["env"], str))
        ),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "str-list": is_str_list,
        "k8s": lambda v: isinstance(v, dict),
        "k8s-list": lambda v: isinstance(v, list),
        "image": lambda v: (
            isinstance(v, dict)
            and set(v) <= {"repository", "tag", "pullPolicy"}
            and isinstance(v.get("repository"), str)
            and isinstance(v.get("tag", ""), str)
            and v.get("pullPolicy", "Always") in PULL_POLICIES
        ),
        "env": lambda v: (
            (isinstance(v, dict) and all(isinstance(x, str) for x in v.values()))
            or (isinstance(v, list) and all(isinstance(x, dict) and "name" in x for x in v))
        ),
        "secret-refs": lambda v: (
            isinstance(v, list) and all(isinstance(x, dict) and set(x) == {"name"} for x in v)
        ),
        "tick-retention": lambda v: (
            (isinstance(v, int) and not isinstance(v, bool))
            or (
                isinstance(v, dict)
                and set(v) <= {"skipped", "success", "failure", "started"}
                and all(isinstance(x, int) for x in v.values())
            )
        ),
        "tag-limits": lambda v: (
            isinstance(v, list)
            and all(
                isinstance(x, dict)
                and set(x) <= {"key", "value", "limit"}
                and isinstance(x.get("key"), str)
                and isinstance(x.get("limit"), int)
                and (
                    isinstance(x.get("value", ""), str)
                    or x.get("value") == {"applyLimitPerUniqueValue": True}
                    or x.get("value") == {"applyLimitPerUniqueValue": False}
                )
                for x in v
            )
        ),
    }[kind]
    return [] if ok(value) else [f"{path}: expected {kind}, found {value!r}"]


def chart_key_errors(values: dict, path: str = "") -> list[str]:
    """Every key of `values` that the chart does not document, or whose value has the wrong type."""
    errors: list[str] = []
    for key, value in values.items():
        here = f"{path}.{key}" if path else str(key)
        kind = CHART_KEYS.get(here)
        if kind is None:
            errors.append(f"{here}: not a key of the dagster Helm chart")
            continue
        found = _kind_errors(value, kind, here)
        errors.extend(found)
        if found:
            continue
        if kind == "section":
            errors.extend(chart_key_errors(value, here))
        elif kind == "items":
            for item in value:
                errors.extend(chart_key_errors(item, f"{here}[]"))
    return errors


def _lookup(values: dict, dotted: str):
    node = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


@pytest.fixture(scope="module")
def instance_template() -> dict:
    return yaml.safe_load(INSTANCE_TEMPLATE.read_text())


def test_every_key_of_values_is_a_documented_chart_key(values):
    assert chart_key_errors(values) == []
    missing = [path for path in REQUIRED if _lookup(values, path) is None]
    assert missing == []


def test_the_key_check_finds_unknown_keys_and_wrong_types(values):
    broken = yaml.safe_load(VALUES.read_text())
    broken["dagsterDaemon"]["runMonitoring"]["startTimeoutSecs"] = 180  # misspelled
    broken["runLauncher"]["type"] = "KubernetesRunLauncher"  # no such launcher
    broken["dagster-user-deployments"]["deployments"][0]["port"] = "3030"  # a string
    broken["concurrency"]["pools"]["ocr"] = 2  # per-pool limits are not chart values
    s3_logs = broken["computeLogManager"]["config"]["s3ComputeLogManager"]
    s3_logs["uploadIntervalSeconds"] = 30  # the chart's key is uploadInterval
    s3_logs["bucket"] = {"secret": "logs"}  # a StringSource is a string or {env: NAME}
    assert chart_key_errors(broken) == [
        "dagster-user-deployments.deployments[].port: expected int, found '3030'",
        "runLauncher.type: 'KubernetesRunLauncher' is not one of CeleryK8sRunLauncher, "
        "K8sRunLauncher, CustomRunLauncher",
        "dagsterDaemon.runMonitoring.startTimeoutSecs: not a key of the dagster Helm chart",
        "concurrency.pools.ocr: not a key of the dagster Helm chart",
        "computeLogManager.config.s3ComputeLogManager.bucket: expected str-source, "
        "found {'secret': 'logs'}",
        "computeLogManager.config.s3ComputeLogManager.uploadIntervalSeconds: "
        "not a key of the dagster Helm chart",
    ]


def test_the_run_coordinator_is_ours_and_importable(values):
    custom = values["dagsterDaemon"]["runCoordinator"]["config"]["customRunCoordinator"]
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "CustomRunCoordinator"
    coordinator = getattr(importlib.import_module(custom["module"]), custom["class"])
    assert issubclass(coordinator, QueuedRunCoordinator)
    # loaded the way the daemon loads it, with the config the chart writes for it
    data = ConfigurableClassData(
        custom["module"], custom["class"], yaml.safe_dump(custom["config"])
    )
    assert type(data.rehydrate(as_type=QueuedRunCoordinator)) is coordinator
    # the same class as deploy/dagster.yaml (and so dagster.yaml, which `make run` uses) names
    template = yaml.safe_load(INSTANCE_TEMPLATE.read_text())["run_coordinator"]
    assert (custom["module"], custom["class"]) == (template["module"], template["class"])


def test_concurrency_limits_equal_the_instance_template(values, instance_template):
    runs = values["concurrency"]["runs"]
    template = instance_template["concurrency"]["runs"]
    # one run per organization slot; bulk runs leave 2 runs free for intake, and a backfill's
    # runs take at most half of the bulk share, on either instance
    for limits, most in (
        (runs["tagConcurrencyLimits"], runs["maxConcurrentRuns"]),
        (template["tag_concurrency_limits"], template["max_concurrent_runs"]),
    ):
        assert limits == [
            {"key": SLOT_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
            {"key": SHARE_TAG, "value": BULK_RUN_TAGS[SHARE_TAG], "limit": most - 2},
            {
                "key": LANE_TAG,
                "value": BACKFILL_RUN_TAGS[LANE_TAG],
                "limit": (most - 2) // 2,
            },
            # each outside service's runs (issue 56) at most half of the bulk share too
            {
                "key": WAITS_ON_TAG,
                "value": {"applyLimitPerUniqueValue": True},
                "limit": (most - 2) // 2,
            },
        ]
    pools = values["concurrency"]["pools"]
    assert values["concurrency"]["enabled"] is True
    assert (pools["defaultLimit"], pools["granularity"]) == (
        instance_template["concurrency"]["pools"]["default_limit"],
        instance_template["concurrency"]["pools"]["granularity"],
    )


def test_recovery_settings_equal_the_instance_template(values, instance_template):
    daemon = values["dagsterDaemon"]
    monitoring = instance_template["run_monitoring"]
    assert daemon["runMonitoring"] == {
        "enabled": monitoring["enabled"],
        "startTimeoutSeconds": monitoring["start_timeout_seconds"],
        "cancelTimeoutSeconds": monitoring["cancel_timeout_seconds"],
        "maxResumeRunAttempts": monitoring["max_resume_run_attempts"],
        "pollIntervalSeconds": monitoring["poll_interval_seconds"],
    }
    # README "Recovery": the areas recover from the database; Dagster's retries stay off
    assert daemon["runRetries"] == {"enabled": False} == instance_template["run_retries"]
    assert daemon["runMonitoring"]["maxResumeRunAttempts"] == 0


def test_tick_retention_equals_the_instance_template(values, instance_template):
    template = instance_template["retention"]
    assert values["retention"]["enabled"] is True
    assert (
        values["retention"]["schedule"]["purgeAfterDays"]
        == template["schedule"]["purge_after_days"]
    )
    sensor = dict(values["retention"]["sensor"]["purgeAfterDays"])
    assert sensor.pop("started") == -1  # required by the chart, Dagster's default
    assert sensor == template["sensor"]["purge_after_days"]


def test_user_code_deployment_serves_the_code_location_with_known_settings(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["codeServerArgs"]
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]
    assert args[args.index("--module-name") + 1] == module["module_name"]
    assert args[args.index("--location-name") + 1] == module["location_name"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    # one image for every process: the webserver and the daemon load our run coordinator
    images = {
        (part["image"]["repository"], part["image"]["tag"])
        for part in (deployment, values["dagsterWebserver"], values["dagsterDaemon"])
    }
    assert len(images) == 1
    # every variable set is one the project reads (a misspelling would be silently ignored)
    known = {setting.name for setting in SETTINGS} | {"OMP_THREAD_LIMIT", "AWS_DEFAULT_REGION"}
    names = {item["name"] for item in deployment["env"]}
    assert names <= known, names - known
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert env["INVOICE_PIPELINES_STORAGE"] == "s3" and env["INVOICE_PIPELINES_S3_BUCKET"]
    assert "INVOICE_PIPELINES_DB_URL" not in env  # from the secret, never in values
    assert deployment["envSecrets"] == values["dagsterDaemon"]["envSecrets"]
    assert deployment["podSecurityContext"]["runAsNonRoot"] is True
    assert str(deployment["port"]) in _containerfile_instructions("EXPOSE")[-1]


def _containerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Containerfile line, continuation lines joined."""
    text = re.sub(r"\\\n", " ", CONTAINERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


def _containerfile_instructions(name: str) -> list[str]:
    return [args for instruction, args in _containerfile() if instruction == name]


def _runtime_stage() -> list[tuple[str, str]]:
    steps = _containerfile()
    last_from = max(i for i, (instruction, _) in enumerate(steps) if instruction == "FROM")
    return steps[last_from:]


def test_containerfile_installs_the_lock_with_hashes_then_the_project_without_dependencies():
    runs = " ".join(_containerfile_instructions("RUN"))
    assert re.search(r"pip install --require-hashes [^&]*-r /src/requirements\.lock", runs)
    assert re.search(r"pip install --no-deps /src", runs)
    copies = _containerfile_instructions("COPY")
    assert any(c.split()[0] == "requirements.lock" for c in copies)
    # multi-stage, both stages on a pinned base (an exact tag or a digest, never "latest")
    froms = _containerfile_instructions("FROM")
    assert len(froms) >= 2 and all(f.startswith("${BASE_IMAGE}") for f in froms)
    (base,) = [a for a in _containerfile_instructions("ARG") if a.startswith("BASE_IMAGE=")]
    assert re.search(r"(:\d+(\.\d+)+[\w.-]*|@sha256:[0-9a-f]{64})$", base), base
    # whatever the image copies in is not excluded by .dockerignore
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for copy in copies:
        if copy.startswith("--from"):
            continue
        for source in shlex.split(copy)[:-1]:
            assert f"!{source}" in ignore or f"!{source}/" in ignore, source


def test_containerfile_runtime_stage_runs_as_non_root_with_the_system_packages():
    stage = _runtime_stage()
    users = [args for instruction, args in stage if instruction == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    # the packages scripts/ensure-system-packages.sh installs for development
    script = (ROOT / "scripts" / "ensure-system-packages.sh").read_text()
    packages = re.search(r'^PACKAGES="([^"]+)"', script, re.MULTILINE).group(1).split()
    assert set(packages) >= {"tesseract-ocr", "tesseract-ocr-deu", "poppler-utils"}
    installs = " ".join(args for instruction, args in stage if instruction == "RUN")
    assert "apt-get install" in installs
    assert set(packages) <= set(installs.split()), set(packages) - set(installs.split())
    env = " ".join(args for instruction, args in stage if instruction == "ENV")
    assert "OMP_THREAD_LIMIT=1" in env.split()
    cmd = " ".join(args for instruction, args in stage if instruction == "CMD")
    assert '"code-server"' in cmd and '"invoice_pipelines.definitions"' in cmd


def test_the_image_carries_every_rule_set_a_setting_names_and_stops_without_one():
    """Each `*_RULES_DIR` setting (CEN's, KoSIT's, OpenPEPPOL's) is set by the image to its folder
    under /opt/invoice-pipelines/rules/, the build stops when a rule file that setting's help
    names (its `meaning`) is missing there, and deploy/rules/README.md says where that folder's files come from:
    an image without OpenPEPPOL's rules would build no Peppol BIS document at all."""
    stage = _runtime_stage()
    env = dict(
        pair.split("=", 1)
        for instruction, args in stage
        if instruction == "ENV"
        for pair in shlex.split(args.replace("\\\n", " "))
    )
    checked = set(
        re.findall(r"[\w./-]+", " ".join(a for instruction, a in stage if instruction == "RUN"))
    )
    readme = (ROOT / "deploy" / "rules" / "README.md").read_text()
    rule_settings = [s for s in SETTINGS if s.name.endswith("_RULES_DIR")]
    assert {s.name for s in rule_settings} >= {
        "INVOICE_PIPELINES_EN16931_RULES_DIR",
        "INVOICE_PIPELINES_XRECHNUNG_RULES_DIR",
        "INVOICE_PIPELINES_PEPPOL_RULES_DIR",
    }
    for setting in rule_settings:
        folder = env.get(setting.name, "")
        assert folder.startswith("/opt/invoice-pipelines/rules/"), (setting.name, folder)
        name = folder.rsplit("/", 1)[1]
        assert f"| `{name}/` |" in readme, name
        files = re.findall(r"[\w.-]+\.xslt?\b", setting.meaning)
        assert files, setting.name
        for file in files:
            assert f"{name}/{file}" in checked, (setting.name, file)


# what the image must not carry: the development tooling (invoice_pipelines_devtools) and the
# places it had before it moved there
DEV_TOOLING = (
    "devtools",
    "quickbooks/simulator",
    "quickbooks/demo.py",
    "standins",
    "bench",
    "demo",
)
DEVTOOLS_COMMANDS = ("seed-demo", "qbo-simulator", "bench")
CLI = PATH_ONLY + "; from invoice_pipelines.cli import main; sys.exit(main(sys.argv[1:]))"


def _dockerignore_pattern(pattern: str) -> re.Pattern:
    """A .dockerignore pattern as Docker reads it: Go's filepath.Match (`*` and `?` stay within a
    folder), `**` for any number of folders, surrounding slashes dropped."""
    regex, i, pattern = "", 0, pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            regex, i = regex + ".*", i + 2
        else:
            regex += {"*": "[^/]*", "?": "[^/]"}.get(pattern[i], re.escape(pattern[i]))
            i += 1
    return re.compile(regex)


def _in_build_context(path: str, rules: list[tuple[bool, re.Pattern]]) -> bool:
    """Whether .dockerignore lets `path` (relative to the repository) into the build context: the
    last rule that matches the path or one of its folders decides, `!` letting it in."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:n]) for n in range(1, len(parts) + 1)]
    included = True
    for negated, pattern in rules:
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            included = negated
    return included


def _image_build_tree(into: Path) -> Path:
    """The /src that the build stage's `pip install --no-deps /src` installs, made without docker:
    the COPY instructions' sources as .dockerignore lets them into the build context, less what
    the install step removes first. Returns `into`/src."""
    rules = [
        (line.startswith("!"), _dockerignore_pattern(line.removeprefix("!")))
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for copy in _containerfile_instructions("COPY"):
        if copy.startswith("--from"):
            continue
        *sources, target = shlex.split(copy)
        for source in sources:
            top = ROOT / source
            for path in sorted(top.rglob("*")) if top.is_dir() else [top]:
                if not path.is_file() or not _in_build_context(
                    path.relative_to(ROOT).as_posix(), rules
                ):
                    continue
                if top.is_dir():
                    destination = Path(target) / path.relative_to(top)
                elif target.endswith("/"):
                    destination = Path(target) / path.name
                else:
                    destination = Path(target)
                destination = into / destination.relative_to("/")
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, destination)
    (install,) = [
        run for run in _containerfile_instructions("RUN") if "pip install --no-deps /src" in run
    ]
    before_install = install.split("pip install --no-deps /src")[0]
    for removed in re.findall(r"rm -rf ((?:/\S+ ?)+)", before_install):
        for path in removed.split():
            shutil.rmtree(into / path.lstrip("/"), ignore_errors=True)
    return into / "src"


def test_the_image_installs_the_product_without_its_development_tooling(tmp_path):
    src = _image_build_tree(tmp_path)
    package = src / "invoice_pipelines"
    assert (package / "definitions.py").is_file() and (src / "pyproject.toml").is_file()
    assert (package / "db" / "migrations" / "versions").is_dir()  # the product's data files came
    assert [path for path in DEV_TOOLING if (package / path).exists()] == []
    # and the build itself fails should devtools get in by another way
    (install,) = [
        run for run in _containerfile_instructions("RUN") if "pip install --no-deps /src" in run
    ]
    assert "find_spec('invoice_pipelines_devtools') is None" in install


def test_the_image_loads_its_code_location_and_its_devtools_commands_are_one_sentence(tmp_path):
    """The files the image installs, on a fresh interpreter's path ahead of the checkout: every
    module imports and the definitions load; seed-demo, qbo-simulator and bench say that they are
    development tooling, with no traceback, and the other commands are there."""
    src = _image_build_tree(tmp_path)

    result = probe(tmp_path, pythonpath=src)
    assert result["package"] == str(src / "invoice_pipelines")
    assert len(result["modules"]) > 100
    assert result["failed"] == {}
    assert result["definitions"] == "loadable"

    env = {
        **os.environ,
        "PYTHONPATH": str(src),
        "INVOICE_PIPELINES_DATA_DIR": str(tmp_path / "data"),
        "INVOICE_PIPELINES_DB_URL": f"sqlite:///{tmp_path / 'app.sqlite3'}",
    }

    def cli(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-P", "-c", CLI, *argv],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    for argv in (["seed-demo"], ["qbo-simulator", "--help"], ["bench", "intake", "--n", "5"]):
        completed = cli(*argv)
        name = argv[0]
        assert (completed.returncode, completed.stdout, completed.stderr) == (
            2,
            "",
            f"invoice-pipelines {name}: {name} is development tooling, not installed here; "
            "it comes with a checkout of the repository: run `make install` there\n",
        ), argv
    listing = cli("--help")
    assert listing.returncode == 0, listing.stderr
    assert all(name in listing.stdout for name in DEVTOOLS_COMMANDS)
    assert cli("parse", "--help").returncode == 0


def test_migration_job_runs_migrate_with_the_deployed_image(values):
    job = yaml.safe_load((ROOT / "deploy" / "helm" / "migrate-job.yaml").read_text())
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["invoice-pipelines", "migrate"]
    image = values["dagster-user-deployments"]["deployments"][0]["image"]
    assert container["image"] == f"{image['repository']}:{image['tag']}"
    # the runtime secret, then the owner's URL that overrides it: only migrations log in as the owner
    assert container["envFrom"] == [
        {"secretRef": {"name": "invoice-pipelines"}},
        {"secretRef": {"name": "invoice-pipelines-migrate"}},
    ]


def test_only_the_migrate_job_logs_in_as_the_owner(values):
    """Three logins (docs/postgresql-and-scale-out.md): the webserver, the daemon, the code server
    and the run pods take the runtime role's secret and the system login's (the work over every
    organization: sensors, schedules, cleanup, the run coordinator's lookup); the owner's is the
    migrate Job's alone, which needs no system login."""
    deployment = values["dagster-user-deployments"]["deployments"][0]
    runtime = [{"name": "invoice-pipelines"}, {"name": "invoice-pipelines-system"}]
    assert values["dagsterWebserver"]["envSecrets"] == runtime
    assert values["dagsterDaemon"]["envSecrets"] == runtime
    assert deployment["envSecrets"] == runtime
    assert values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == runtime
    assert VALUES.read_text().count("invoice-pipelines-migrate") == 1  # named in a comment only
    for part in (values["dagsterWebserver"], values["dagsterDaemon"], deployment):
        assert not any(
            item["name"] == "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME"
            for item in part.get("env") or []
        )


def test_the_ocr_asset_is_in_the_ocr_pool_and_quickbooks_assets_in_theirs():
    from invoice_pipelines.definitions import defs

    assert defs.resolve_assets_def("incoming_invoices").op.pool == "ocr"
    for name in ("qbo_customers", "qbo_items", "qbo_invoices", "qbo_payments"):
        assert defs.resolve_assets_def(name).op.pool == "quickbooks", name
    # the providers' rate limits: each a lane of its own (lib/run_coordinator.py)
    assert defs.resolve_assets_def("invoice_emails").op.pool == "mail"
    assert defs.resolve_assets_def("invoice_text_messages").op.pool == "text_messages"


# The chart's S3ComputeLogManager keys and the dagster-aws config fields its template writes them as
# (helm/dagster/templates/helpers/instance/_compute-log-manager.tpl).
_S3_LOG_FIELDS = {
    "bucket": "bucket",
    "localDir": "local_dir",
    "prefix": "prefix",
    "useSsl": "use_ssl",
    "verify": "verify",
    "verifyCertPath": "verify_cert_path",
    "endpointUrl": "endpoint_url",
    "skipEmptyFiles": "skip_empty_files",
    "uploadInterval": "upload_interval",
    "uploadExtraArgs": "upload_extra_args",
    "showUrlOnly": "show_url_only",
    "region": "region",
}


def commented_compute_logs(text: str) -> dict:
    """deploy/dagster.yaml's `compute_logs:` block, which is commented out (make run keeps the
    logs on its own disk): the block as a deployment gets it by uncommenting."""
    lines = text.splitlines()
    start = lines.index("# compute_logs:")
    block = [lines[start][2:]]
    for line in lines[start + 1 :]:
        if not line.startswith("#   "):
            break
        block.append(line[2:])
    return yaml.safe_load("\n".join(block))["compute_logs"]


def test_compute_logs_go_to_the_files_bucket_in_both_deployments(values, instance_template):
    chart = values["computeLogManager"]
    assert chart["type"] == "S3ComputeLogManager"
    s3_logs = chart["config"]["s3ComputeLogManager"]
    # rendered the way the chart renders it, the instance loads dagster-aws's manager with it
    rendered = {_S3_LOG_FIELDS[key]: value for key, value in s3_logs.items()}
    data = ConfigurableClassData(
        "dagster_aws.s3.compute_log_manager", "S3ComputeLogManager", yaml.safe_dump(rendered)
    )
    manager = data.rehydrate(as_type=ComputeLogManager)
    assert type(manager) is S3ComputeLogManager
    assert manager.upload_interval == s3_logs["uploadInterval"] > 0  # the UI sees a step's progress
    # the bucket and region of the files (the user deployment's env); boto3 gets its region from
    # AWS_DEFAULT_REGION in the pods that write (run pods, code server) and read (webserver)
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = {item["name"]: item["value"] for item in deployment["env"]}
    webserver_env = {item["name"]: item["value"] for item in values["dagsterWebserver"]["env"]}
    assert s3_logs["bucket"] == env["INVOICE_PIPELINES_S3_BUCKET"]
    assert (
        s3_logs["region"]
        == env["INVOICE_PIPELINES_S3_REGION"]
        == env["AWS_DEFAULT_REGION"]
        == webserver_env["AWS_DEFAULT_REGION"]
    )
    # a prefix of its own, beside the stores' uploads/ exports/ documents/
    assert s3_logs["prefix"].strip("/") not in ("", "uploads", "exports", "documents")
    # the chart drops a false useSsl and skipEmptyFiles would hide a finished step's empty stderr
    assert "useSsl" not in s3_logs and "skipEmptyFiles" not in s3_logs
    # deploy/dagster.yaml: the same block, the bucket and region from the project's settings;
    # commented out, so `make run` and the instance tests keep their logs locally
    assert "compute_logs" not in instance_template
    template = commented_compute_logs(INSTANCE_TEMPLATE.read_text())
    assert (template["module"], template["class"]) == (data.module_name, data.class_name)
    assert template["config"] == {
        **rendered,
        "bucket": {"env": "INVOICE_PIPELINES_S3_BUCKET"},
        "region": {"env": "INVOICE_PIPELINES_S3_REGION"},
    }
