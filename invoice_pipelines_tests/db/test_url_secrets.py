"""A database URL's password never reaches an error (message or traceback, which land in run logs
and the terminal): malformed URLs say which part is wrong, the rest show the URL masked."""

from __future__ import annotations

import subprocess
import sys
import traceback

import pytest

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.settings import ConfigError

PASSWORD = "Zebra-7f3c-Secret"


def _failure(url: str, **options) -> tuple[str, str]:
    with pytest.raises(ConfigError) as raised:
        make_engine(url, **options)
    return str(raised.value), "".join(traceback.format_exception(raised.value))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql//app:{PASSWORD}@db.example/invoices", "no scheme"),
        (f"app:{PASSWORD}@db.example/invoices", "no scheme"),
        (f"postgres ql://app:{PASSWORD}@db.example/invoices", "not a scheme"),
        (f"postgresql://app:{PASSWORD}@db.example:5432x/invoices", "port"),
        (f"postgresql://app:{PASSWORD}@[::1/invoices", "port"),
        (f"postgresql+nosuchdriver://app:{PASSWORD}@db.example/invoices", "nosuchdriver"),
        (f"mysql://app:{PASSWORD}@db.example/invoices", "unsupported scheme"),
    ],
)
def test_a_malformed_url_names_the_wrong_part_and_not_the_password(url, says):
    message, whole = _failure(url, check=False)
    assert "INVOICE_PIPELINES_DB_URL" in message and says in message
    assert PASSWORD not in whole


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{PASSWORD}@127.0.0.1:1/invoices",
        f"postgresql://app@127.0.0.1:1/invoices?password={PASSWORD}",
    ],
)
def test_a_server_that_cannot_be_reached_is_named_with_the_password_masked(url):
    message, whole = _failure(url)
    assert "cannot connect to postgresql://app" in message and "127.0.0.1:1" in message
    assert "***" in message
    assert PASSWORD not in whole


def test_the_command_line_prints_no_password(tmp_path):
    """What a user sees in the terminal: one line, no traceback, no password."""
    completed = subprocess.run(
        [sys.executable, "-m", "invoice_pipelines.cli", "migrate"],
        env={
            "PATH": "/usr/bin:/bin",
            "INVOICE_PIPELINES_DB_URL": f"postgresql:/app:{PASSWORD}@db.example/invoices",
            "INVOICE_PIPELINES_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode != 0
    output = completed.stdout + completed.stderr
    assert "INVOICE_PIPELINES_DB_URL" in output and "Traceback" not in output
    assert PASSWORD not in output
