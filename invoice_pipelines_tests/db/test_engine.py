"""Bad configuration gives one clear line naming the variable, never a stack trace."""

import os
import subprocess
import sys

import pytest

from invoice_pipelines.db.engine import database_url, make_engine
from invoice_pipelines.settings import ConfigError


def test_unknown_scheme_names_the_variable():
    with pytest.raises(
        ConfigError, match="INVOICE_PIPELINES_DB_URL uses unsupported scheme 'mysql'"
    ):
        database_url("mysql://user@host/db")


def test_unreachable_database_names_the_variable():
    with pytest.raises(
        ConfigError, match=r"cannot connect to .*127\.0\.0\.1:1.*INVOICE_PIPELINES_DB_URL"
    ):
        make_engine("postgresql+psycopg2://postgres@127.0.0.1:1/nothing")


def test_postgres_alias_and_relative_sqlite_paths_are_normalized():
    assert database_url("postgres://u@h/d") == "postgresql://u@h/d"
    assert database_url("sqlite:///.data/x.sqlite3").startswith("sqlite:////")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("mysql://user@host/db", "unsupported scheme"),
        ("postgresql+psycopg2://postgres@127.0.0.1:1/nothing", "cannot connect"),
        ("not a url at all", "not a database URL"),
    ],
)
def test_cli_prints_one_line_and_exits_2(url, expected):
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": url}
    proc = subprocess.run(
        [sys.executable, "-m", "invoice_pipelines.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "INVOICE_PIPELINES_DB_URL" in lines[0]
