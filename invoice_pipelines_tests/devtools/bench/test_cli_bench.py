"""`invoice-pipelines bench cli`: each command a person waits for against the same-run floor (a
Python process that imports SQLAlchemy and runs one query on the same database). No timing is
asserted: the test checks that every command ran, the figures are there and consistent, and the
floor ran on the run's own database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.engine import make_url

from invoice_pipelines.cli import main

COMMANDS = ("floor", "--help", "incoming list", "incoming show", "batch-status")


@pytest.fixture(params=["sqlite", "postgresql"])
def bench_db(request, tmp_path, monkeypatch) -> str:
    """A database of the test's own (the bench seeds an organization into it); its name."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_scratch_factory")()
        name = make_url(url).database
    else:
        name = str(tmp_path / "bench.sqlite3")
        url = f"sqlite:///{name}"
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", url)
    return name


def test_bench_cli_times_each_command_against_the_floor_on_the_same_database(bench_db, capsys):
    assert main(["bench", "cli", "--runs", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert result["scenario"] == "cli" and result["runs"] == 2
    assert set(result["commands"]) == set(COMMANDS)
    for name, figures in result["commands"].items():
        assert 0 < figures["median_s"] <= figures["p95_s"], name
    floor = result["commands"]["floor"]["median_s"]
    for name, ratio in result["ratios"].items():
        assert ratio == result["commands"][name]["ratio_to_floor"]
        assert ratio == pytest.approx(result["commands"][name]["median_s"] / floor, abs=0.02)
    assert result["database_name"] == result["limit_database"] == bench_db
    assert result["per_s"] == result["slowest_read_per_s"]
    assert result["fraction_of_limit"] == round(result["per_s"] / result["limit_per_s"], 3)
    assert len(result["load_average_before"]) == 3
