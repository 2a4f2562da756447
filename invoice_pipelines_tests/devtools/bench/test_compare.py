"""`scripts/bench-compare.sh` (bench/compare.py): headlines read from new and old results, the
per-pair ratios and each side's fraction of its limit, and one real run A B on fresh databases."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from invoice_pipelines_devtools.bench import SCENARIOS
from invoice_pipelines_devtools.bench.compare import (
    OLD_HEADLINES,
    Scenario,
    Side,
    _pins,
    build_parser,
    compare,
    compile_sources,
    database_url,
    headline,
    rounds_summary,
    summarize,
    table,
)
from invoice_pipelines_tests.conftest import require_programs

REPO = Path(__file__).resolve().parents[3]


def test_the_headline_is_per_s_when_a_result_names_one():
    assert headline("export", {"per_s": 12.5, "invoices_per_s": 3.0}) == 12.5


@pytest.mark.parametrize(
    ("scenario", "old", "expected"),
    [
        ("batch-invoicing", {"orders_per_s": 8604.1}, 8604.1),
        ("intake", {"docs_per_s": 71.0}, 71.0),
        ("export", {"invoices_per_s": 9679.0}, 9679.0),
        ("documents", {"documents_per_s": 37.9, "emails_per_s": 237.0}, 37.9),
        ("overdue", {"invoices_per_s": 200000.0}, 200000.0),
        ("housekeeping", {"uploads_removed_per_second": 1023.0}, 1023.0),
        ("ocr", {"ocr_pages_per_s": 2.07}, 2.07),
        ("qbo-push", {"invoices": 500, "seconds": 2.5}, 200.0),
        (
            "tenants",
            {
                "organizations": 100,
                "sensor_tick_seconds": {"a": [0.5, 0.5], "b": 1.0},
                "schedule_tick_seconds": {"c": 2.0},
            },
            25.0,
        ),
        ("hostile", {"inputs": 40, "seconds_by_stage": {"intake": 10.0}}, 3.0),
        ("field-accuracy", {"documents": 9}, None),
    ],
)
def test_a_base_from_before_the_headline_keys_is_read_by_its_old_key(scenario, old, expected):
    assert headline(scenario, old) == expected


def test_every_scenario_with_a_rate_before_issue_26_has_an_old_headline():
    # field-accuracy printed no time at all before; cli and latency came after issue 26 (47),
    # backfill after issue 55, month-end after issue 76, audit-verify after issue 83, mailbox
    # after issue 86
    after = {"field-accuracy", "cli", "latency", "backfill", "month-end", "audit-verify", "mailbox"}
    assert set(OLD_HEADLINES) == set(SCENARIOS) - after


def test_scenarios_carry_their_own_arguments():
    scenario = Scenario("export --n 20000")
    assert (scenario.name, scenario.args) == ("export", ["--n", "20000"])
    args = build_parser().parse_args(["--pairs", "5", "HEAD~20", "export --n 20000", "ocr"])
    assert args.base == "HEAD~20" and args.pairs == 5
    assert args.scenarios == ["export --n 20000", "ocr"]


def test_ratios_are_per_pair_and_fractions_per_side():
    runs = [
        {"pair": 1, "side": "base", "per_s": 100.0, "fraction": None, "figures": {"e": 10.0}},
        {"pair": 1, "side": "head", "per_s": 150.0, "fraction": 0.5, "figures": {"e": 10.0}},
        {"pair": 2, "side": "base", "per_s": 200.0, "fraction": None, "figures": {"e": 10.0}},
        {"pair": 2, "side": "head", "per_s": 220.0, "fraction": 0.7, "figures": {"e": 12.0}},
        {"pair": 3, "side": "base", "per_s": 100.0, "fraction": None, "figures": {}},
        {"pair": 3, "side": "head", "per_s": 300.0, "fraction": 0.9, "figures": {}},
        # a failed run leaves its pair out of the ratios
        {"pair": 4, "side": "base", "error": "exit 1"},
        {"pair": 4, "side": "head", "per_s": 1.0, "fraction": 0.1},
    ]
    summary = summarize(runs)
    assert summary["ratios"] == [1.5, 1.1, 3.0] and summary["pairs"] == 3
    assert (summary["ratio_median"], summary["ratio_min"], summary["ratio_max"]) == (1.5, 1.1, 3.0)
    assert summary["base"]["median_fraction_of_limit"] is None
    assert summary["base"]["failed"] == 1
    assert summary["head"]["median_fraction_of_limit"] == 0.6
    assert summary["secondary"]["e"] == {"ratio_median": 1.1, "ratio_min": 1.0, "ratio_max": 1.2}


def _round(median: float, emails: float) -> dict:
    return {"ratio_median": median, "secondary": {"emails_per_s": {"ratio_median": emails}}}


def test_repeated_rounds_report_the_spread_of_their_medians_against_the_floor():
    # documents: floor 2.0 (2.2 with the 10 % margin); its e-mails: 0.95 (1.045)
    rounds = [_round(2.5, 1.05), _round(2.1, 0.97), _round(2.3, 0.80), _round(1.9, 1.10)]
    summary = rounds_summary("documents", rounds)
    assert summary["rounds"] == 4
    assert summary["round_medians"] == [2.5, 2.1, 2.3, 1.9]
    assert summary["spread"] == {"min": 1.9, "median": 2.2, "max": 2.5}
    assert (summary["floor"], summary["rounds_holding"], summary["rounds_with_margin"]) == (
        2.0,
        3,
        2,
    )
    assert summary["every_round_with_margin"] is False
    emails = summary["secondary"]["emails_per_s"]
    assert (emails["floor"], emails["rounds_holding"], emails["rounds_with_margin"]) == (0.95, 3, 2)
    # a scenario without a floor reports its spread only
    assert "floor" not in rounds_summary("overdue", [_round(1.0, 1.0), _round(1.2, 1.0)])
    # a failed round (no median) is no round with margin
    assert not rounds_summary("export", [_round(1.8, 1), _round(None, 1)])[
        "every_round_with_margin"
    ]


def test_lock_pins_are_read_with_normalized_names(tmp_path):
    lock = tmp_path / "requirements-dev.lock"
    lock.write_text(
        "# comment\nDagster==1.13.27 \\\n    --hash=sha256:00\nzope.interface==7.2 \\\n"
        "typing_extensions==4.12.2\n"
    )
    assert _pins(lock) == {
        "dagster": "1.13.27",
        "zope-interface": "7.2",
        "typing-extensions": "4.12.2",
    }


def test_each_run_gets_a_database_on_the_server_given():
    url = database_url("postgresql://bench@db.example:5433/postgres?sslmode=require", "bench_x")
    assert url == "postgresql+psycopg2://bench@db.example:5433/bench_x?sslmode=require"


def test_one_warm_up_pair_goes_before_the_first_round_and_each_round_has_its_median(
    monkeypatch,
):
    """The order of the runs and what the figures keep, the runs themselves stood in for (the
    real runs are the next test's): each scenario's warm-up pair first, in the first round only,
    left out of the ratios; then its pairs, round after round, each round with its median."""
    import invoice_pipelines_devtools.bench.compare as bench_compare

    def side(label: str, rev: str, workdir: Path, in_place: bool) -> Side:
        return Side(label, rev, "0" * 40, REPO)  # in place: no worktree to make or remove

    monkeypatch.setattr(bench_compare, "_side", side)
    monkeypatch.setattr(bench_compare, "interpreter", lambda side, workdir, log: None)
    monkeypatch.setattr(bench_compare, "compile_sources", lambda side, log: None)
    calls: list[tuple[str, int, str]] = []

    def run(self, side: Side, scenario: Scenario, pair: int) -> dict:
        calls.append((scenario.name, pair, side.label))
        # head/base: 9.0 in the warm-up pair, 1.5 in the first round, 2.0 in the second
        head = {0: 900.0, 1: 150.0, 2: 200.0}[pair]
        per_s = 100.0 if side.label == "base" else head
        return {"pair": pair, "side": side.label, "per_s": per_s, "fraction": 0.5, "figures": {}}

    monkeypatch.setattr(bench_compare.Runner, "run", run)
    args = argparse.Namespace(
        base="HEAD",
        head="HEAD",
        working_tree=False,
        scenarios=["overdue --invoices 1000", "export --n 10"],
        pairs=1,
        repeat=2,
        warm_up=1,
        server="postgresql://nowhere/postgres",
        keep=False,
    )
    messages: list[str] = []
    report = compare(args, messages.append)
    order = [(name, pair) for name, pair, _ in calls[::2]]
    assert [label for _, _, label in calls] == ["base", "head"] * 6  # base first in every pair
    assert order == [
        ("overdue", 0), ("overdue", 1), ("export", 0), ("export", 1),
        ("overdue", 2), ("export", 2),
    ]  # fmt: skip
    said = "\n".join(messages)
    for spec in args.scenarios:
        assert said.count(f"{spec} warm-up 1 base:") == 1, said
        assert said.count(f"{spec} warm-up 1 head:") == 1, said
        row = report["scenarios"][spec]
        # 2 rounds of 1 pair; the warm-up pair's 9.0 is in neither
        assert row["pairs"] == 2 and row["ratios"] == [1.5, 2.0], row
        assert row["repeat"]["rounds"] == 2 and row["repeat"]["round_medians"] == [1.5, 2.0]
    assert "warm-up 2" not in said and report["warm_up_pairs"] == 1
    assert "rounds' medians" in table(report)


@pytest.mark.slow
def test_head_against_itself_on_fresh_databases(pg_admin_url):
    """One pair of HEAD against HEAD: two worktrees, the project's venv, a database per run that
    is gone afterwards; the ratio is a number, the fractions come from the new keys. (The warm-up
    and the rounds, which only repeat these runs, are the test above's.)"""
    require_programs("psql", "git")
    server = make_url(pg_admin_url).set(drivername="postgresql").render_as_string(False)
    args = argparse.Namespace(
        base="HEAD",
        head="HEAD",
        working_tree=False,
        scenarios=["overdue --invoices 1000"],
        pairs=1,
        repeat=1,
        warm_up=0,
        server=server,
        keep=False,
    )
    messages: list[str] = []
    report = compare(args, messages.append)
    row = report["scenarios"]["overdue --invoices 1000"]
    assert row["pairs"] == 1 and row["ratio_median"] > 0, messages
    said = "\n".join(messages)
    assert said.count("overdue --invoices 1000 pair 1 base:") == 1, said
    assert said.count("overdue --invoices 1000 pair 1 head:") == 1, said
    assert "warm-up" not in said and report["warm_up_pairs"] == 0
    assert row["base"]["median_fraction_of_limit"] is not None
    assert row["head"]["median_fraction_of_limit"] is not None
    assert report["base"]["commit"] == report["head"]["commit"]
    assert "the project's venv" in "\n".join(messages)
    assert "overdue --invoices 1000" in table(report)
    json.dumps(report)
    # the worktrees and this process's per-run databases are gone
    folder = re.search(r" in (/\S*bench-compare-[^/]+)/base", "\n".join(messages)).group(1)
    assert not Path(folder).exists()
    worktrees = subprocess.run(
        ["git", "worktree", "list"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert folder not in worktrees
    listing = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", server, "-c", "SELECT datname FROM pg_database"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"bench_cmp_{os.getpid()}_" not in listing


def test_each_side_is_compiled_to_bytecode_before_its_runs(tmp_path):
    """A new worktree has no bytecode; its modules are compiled with the side's interpreter
    before the first run, so that run does not compile what it imports."""
    package = tmp_path / "invoice_pipelines"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "module.py").write_text("VALUE = 1\n")
    (tmp_path / "invoice_pipelines_devtools").mkdir()  # a package folder may be empty
    side = Side("base", "HEAD", "0" * 40, tmp_path, python=sys.executable)
    messages: list[str] = []
    compile_sources(side, messages.append)
    compiled = sorted(p.name.split(".")[0] for p in package.rglob("__pycache__/*.pyc"))
    assert compiled == ["__init__", "module"] and messages == []
    (package / "broken.py").write_text("def (:\n")
    compile_sources(side, messages.append)  # said, and left to fail the run as it would
    assert len(messages) == 1 and "broken.py" in messages[0]


def test_the_script_runs_the_module():
    script = (REPO / "scripts" / "bench-compare.sh").read_text()
    assert "-m invoice_pipelines_devtools.bench.compare" in script
    done = subprocess.run(
        [str(REPO / "scripts" / "bench-compare.sh"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "BASE" in done.stdout and "--pairs" in done.stdout
