"""Issue 85, points 2 and 3: a command from a second shell finds the Dagster of `make run` with
nothing set (make run writes where its UI and instance are into the data dir), a UI that does not
answer is named with the variable to set, and a command run with DAGSTER_HOME set as
getting-started says writes the partitions instead of ending in a traceback after its write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from invoice_pipelines.settings import PROJECT_ROOT


class _Webserver(BaseHTTPRequestHandler):
    """A stand-in for Dagster's webserver's report endpoints: records each POST's path."""

    posted: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).posted.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def stand_in_ui():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Webserver)
    _Webserver.posted = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Webserver.posted
    server.shutdown()
    server.server_close()


def _command(db, data_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """`invoice-pipelines` in a shell of its own: only what a newcomer's shell holds."""
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DAGSTER_", "INVOICE_PIPELINES_DAGSTER"))
    }
    environ.update(INVOICE_PIPELINES_DB_URL=db.url, INVOICE_PIPELINES_DATA_DIR=str(data_dir))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "invoice_pipelines.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=300,
        cwd=PROJECT_ROOT,
    )


def _written_by_make_run(data_dir: Path, url: str) -> None:
    """What scripts/run-dagster.sh writes once its UI answers."""
    dagster = data_dir / "dagster"
    (data_dir / "local-dagster.json").write_text(
        json.dumps(
            {
                "url": url,
                "dagster_home": str(PROJECT_ROOT),
                "dagster_dir": str(dagster),
                "compute_logs_dir": str(dagster / "compute_logs"),
            }
        )
    )


def test_a_command_tells_the_ui_make_run_wrote_with_nothing_set(db, tmp_path, stand_in_ui):
    url, posted = stand_in_ui
    _written_by_make_run(tmp_path, url)
    slug = f"second-{uuid.uuid4().hex[:8]}"
    done = _command(db, tmp_path, "organizations", "add", "--slug", slug, "--name", "Second")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "not told" not in done.stderr
    assert "/report_asset_materialization/organizations" in posted
    assert "/report_asset_check/organizations" in posted
    # the partitions went into the instance make run named, with no DAGSTER_HOME set
    assert "partitions: 1 added (one call)" in done.stdout
    assert (tmp_path / "dagster").is_dir()


def test_a_ui_that_does_not_answer_is_named_with_the_variable_to_set(db, tmp_path):
    _written_by_make_run(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    slug = f"second-{uuid.uuid4().hex[:8]}"
    done = _command(db, tmp_path, "organizations", "add", "--slug", slug, "--name", "Second")
    assert done.returncode == 0, done.stderr
    assert "Dagster not told of this change (http://127.0.0.1:9 did not answer" in done.stderr
    assert "set INVOICE_PIPELINES_DAGSTER_URL to the address of the Dagster UI" in done.stderr
    assert "Traceback" not in done.stderr


def test_dagster_home_set_as_getting_started_says_writes_the_partitions(db, tmp_path):
    """Issue 85, point 3: DAGSTER_HOME=$PWD and nothing else (no make run here) ended
    `organizations add` in a traceback naming INVOICE_PIPELINES_DAGSTER_DIR, after its write."""
    slug = f"home-{uuid.uuid4().hex[:8]}"
    done = _command(
        db, tmp_path, "organizations", "add", "--slug", slug, "--name", "Home",
        DAGSTER_HOME=str(PROJECT_ROOT), INVOICE_PIPELINES_DAGSTER_URL="",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "partitions: 1 added (one call)" in done.stdout
    # make run's default place for Dagster's files under the data dir
    assert (tmp_path / "dagster").is_dir()
