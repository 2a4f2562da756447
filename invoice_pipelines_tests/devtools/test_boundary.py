"""Development tooling is not the product: the QBO simulator, the stand-ins, the benchmarks and the
demo live in invoice_pipelines/devtools, and the product reaches them only from the commands that
start them (the console script's seed-demo, qbo-simulator and bench). The container image without
them is test_deploy.py's."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from invoice_pipelines_tests.import_probe import probe

ROOT = Path(__file__).resolve().parents[2]
# a module named for one of these is development tooling, wherever it sits
DEV_TOOL_NAMES = {"devtools", "qbo_simulator", "simulator", "standins", "bench", "demo"}
# the console script: its devtools commands are the one way in
ENTRY_POINTS = ("invoice_pipelines.cli",)


def test_the_development_tools_are_in_devtools_and_nowhere_else():
    for module in (
        "invoice_pipelines.devtools.qbo_simulator",
        "invoice_pipelines.devtools.standins.smtp",
        "invoice_pipelines.devtools.bench",
        "invoice_pipelines.devtools.demo.seed",
        "invoice_pipelines.devtools.demo.quickbooks",
    ):
        assert importlib.util.find_spec(module) is not None, module
    for old in (
        "invoice_pipelines.quickbooks.simulator",
        "invoice_pipelines.quickbooks.demo",
        "invoice_pipelines.standins",
        "invoice_pipelines.bench",
        "invoice_pipelines.demo",
    ):
        assert importlib.util.find_spec(old) is None, old


def test_the_product_loads_without_devtools_and_imports_none_of_it(tmp_path):
    """Every module outside devtools and the console script, and the definitions, in a fresh
    interpreter where devtools cannot be imported: all load, and no dev tool came along."""
    result = probe(tmp_path, pythonpath=ROOT, skip=ENTRY_POINTS)

    assert result["package"] == str(ROOT / "invoice_pipelines")
    assert len(result["modules"]) > 100  # the walk found the product
    assert result["failed"] == {}
    assert result["definitions"] == "loadable"
    assert result["refused"] == []
    dev_tools = [m for m in result["loaded"] if DEV_TOOL_NAMES & set(m.split(".")[1:])]
    assert dev_tools == []


def test_the_console_script_names_exactly_the_commands_devtools_adds():
    """cli.DEVTOOLS_COMMANDS is what the image answers with one sentence: it must be the list."""
    from invoice_pipelines.cli import DEVTOOLS_COMMANDS, build_parser
    from invoice_pipelines.devtools.cli import add_commands

    sub = argparse.ArgumentParser().add_subparsers()
    add_commands(sub)
    assert sorted(sub.choices) == sorted(DEVTOOLS_COMMANDS)
    # and where devtools is installed, the console script's commands are devtools' own
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in DEVTOOLS_COMMANDS:
        ours = [a.option_strings or a.dest for a in commands.choices[name]._actions]
        assert ours == [a.option_strings or a.dest for a in sub.choices[name]._actions]
