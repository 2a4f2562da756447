"""Compute logs in S3 (deploy/helm/values.yaml computeLogManager, deploy/dagster.yaml compute_logs):
a real Dagster run on an instance with deploy/dagster.yaml's S3ComputeLogManager block, pointed at
an S3-compatible server on loopback (moto in server mode, its own process). What the run printed
is an object in the bucket once the run is over, and another instance that never saw the run (the
webserver's pod, not the run's) reads it back from there."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import boto3
import pytest
from dagster import DagsterEventType, in_process_executor, job, op
from dagster._core.storage.compute_log_manager import ComputeIOType
from dagster._core.test_utils import instance_for_test

from invoice_pipelines_tests.test_deploy import INSTANCE_TEMPLATE, commented_compute_logs

pytest.importorskip("moto", reason="moto[server] is a dev dependency")

from invoice_pipelines_tests.resources.test_s3 import s3_endpoint  # noqa: E402, F401

REGION = "eu-central-1"
MARKER = uuid.uuid4().hex  # a line no other run prints


@op
def say_hello() -> None:
    print(f"hello from the run pod {MARKER}")
    print(f"and on stderr {MARKER}", file=sys.stderr)


@job(executor_def=in_process_executor)
def hello_job() -> None:
    say_hello()


def _instance_config(endpoint: str, local_dir: Path) -> dict:
    """deploy/dagster.yaml's compute_logs block as a deployment uncomments it, plus the endpoint
    (the block's documented addition for an S3-compatible server) and a staging folder per
    instance, so the reading instance cannot find the writer's local copy."""
    block = commented_compute_logs(INSTANCE_TEMPLATE.read_text())
    block["config"] = {**block["config"], "endpoint_url": endpoint, "local_dir": str(local_dir)}
    return {"compute_logs": block}


def test_a_runs_stdout_and_stderr_land_in_s3(s3_endpoint, monkeypatch, tmp_path):  # noqa: F811
    bucket = f"logs-{uuid.uuid4().hex[:12]}"
    # what the pods get: credentials and region for boto3, the bucket as the project's setting
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("INVOICE_PIPELINES_S3_BUCKET", bucket)
    monkeypatch.setenv("INVOICE_PIPELINES_S3_REGION", REGION)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})

    writer_config = _instance_config(s3_endpoint, tmp_path / "run-pod")
    with instance_for_test(overrides=writer_config) as instance:
        assert type(instance.compute_log_manager).__name__ == "S3ComputeLogManager"
        result = hello_job.execute_in_process(instance=instance)
        assert result.success
        (captured,) = [
            event
            for event in result.all_events
            if event.event_type == DagsterEventType.LOGS_CAPTURED
        ]
        file_key = captured.logs_captured_data.file_key

    # the object the run page reads: <prefix>/storage/<run id>/compute_logs/<file>.out / .err
    prefix = writer_config["compute_logs"]["config"]["prefix"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/storage/{result.run_id}/")
    keys = sorted(obj["Key"] for obj in listed.get("Contents", []))
    base = f"{prefix}/storage/{result.run_id}/compute_logs/{file_key}"
    assert keys == [f"{base}.err", f"{base}.out"]
    stdout = s3.get_object(Bucket=bucket, Key=f"{base}.out")["Body"].read().decode()
    stderr = s3.get_object(Bucket=bucket, Key=f"{base}.err")["Body"].read().decode()
    assert f"hello from the run pod {MARKER}" in stdout
    assert f"and on stderr {MARKER}" in stderr
    assert "and on stderr" not in stdout
    # nothing stays behind on the run's disk: the upload is the only copy
    assert not list((tmp_path / "run-pod").rglob("*.out"))

    # another instance with its own empty staging folder (the webserver's pod) shows the run's stdout from S3
    with instance_for_test(overrides=_instance_config(s3_endpoint, tmp_path / "web")) as reader:
        manager = reader.compute_log_manager
        log_key = manager.build_log_key_for_run(result.run_id, file_key)
        assert manager.is_capture_complete(log_key)
        data, _ = manager.get_log_data_for_type(log_key, ComputeIOType.STDOUT, 0, None)
        assert f"hello from the run pod {MARKER}".encode() in data
