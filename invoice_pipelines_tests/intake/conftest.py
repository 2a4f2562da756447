"""Fixtures of the intake tests."""

import shutil
import tempfile

import pytest

from invoice_pipelines.resources.workers.parse_server import stop_servers


@pytest.fixture
def server_dir():
    """A parse server's folder of the test's own, stopped and removed at its end. Short, under the
    system's temporary folder: a Unix socket path has at most 107 bytes, and pytest's tmp_path of a
    long test name under a worker of `pytest -n` (.../popen-gw1/...) is longer than that."""
    folder = tempfile.mkdtemp(prefix="ips-")
    try:
        yield folder
    finally:
        stop_servers(folder)
        shutil.rmtree(folder, ignore_errors=True)
