"""The suite's guard for `../shared`: under CI a missing part stops the run before any test, with
what is missing; otherwise the tests needing it skip and the summary says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from invoice_pipelines_tests.conftest import REPOSITORY, SHARED_DIR

SMALL_FILE = "invoice_pipelines_tests/test_shared_beside.py"


def collect(shared: Path, ci: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["INVOICE_PIPELINES_TEST_SHARED_DIR"] = str(shared)
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-n", "0", "--co", "-q", SMALL_FILE],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ci_stops_when_shared_is_missing(tmp_path):
    done = collect(tmp_path / "no-shared", ci=True)
    assert done.returncode == 3, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "../shared is incomplete" in output
    assert "the OpenPEPPOL rules" in output and "the sample e-invoices" in output


def test_outside_ci_a_missing_shared_is_named_in_the_summary(tmp_path):
    done = collect(tmp_path / "no-shared", ci=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "the tests needing it were skipped" in done.stdout


def test_ci_runs_when_shared_is_there():
    done = collect(SHARED_DIR, ci=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "incomplete" not in done.stdout
