"""Development tooling is not the product: the QBO simulator, the stand-ins, the benchmarks and the
demo live in invoice_pipelines_devtools, and the product reaches them only from the commands that
start them (the console script's seed-demo, qbo-simulator and bench). The container image without
them is test_deploy.py's."""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from invoice_pipelines_tests.import_probe import probe

ROOT = Path(__file__).resolve().parents[2]
# a module named for one of these is development tooling, wherever it sits
DEV_TOOL_NAMES = {"devtools", "qbo_simulator", "simulator", "standins", "bench", "demo"}
# the console script: its devtools commands are the one way in
ENTRY_POINTS = ("invoice_pipelines.cli",)


def test_the_development_tools_are_in_devtools_and_nowhere_else():
    for module in (
        "invoice_pipelines_devtools.qbo_simulator",
        "invoice_pipelines_devtools.standins.smtp",
        "invoice_pipelines_devtools.bench",
        "invoice_pipelines_devtools.demo.seed",
        "invoice_pipelines_devtools.demo.quickbooks",
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
    from invoice_pipelines_devtools.cli import add_commands

    sub = argparse.ArgumentParser().add_subparsers()
    add_commands(sub)
    assert sorted(sub.choices) == sorted(DEVTOOLS_COMMANDS)
    # and where devtools is installed, the console script's commands are devtools' own
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name in DEVTOOLS_COMMANDS:
        ours = [a.option_strings or a.dest for a in commands.choices[name]._actions]
        assert ours == [a.option_strings or a.dest for a in sub.choices[name]._actions]


@pytest.mark.slow
def test_the_wheel_carries_the_product_and_no_development_tooling(tmp_path):
    """What `pip wheel` builds from the project (as a deployment that installs from a wheel gets
    it): invoice_pipelines and its data files only, no module of invoice_pipelines_devtools and no
    test, and aiosmtpd (the SMTP stand-in's library) only in the dev extra."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("invoice_pipelines", "invoice_pipelines_devtools", "invoice_pipelines_tests"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "out"),
         str(src)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "out").glob("invoice_pipelines-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = [
            line.removeprefix("Requires-Dist: ")
            for line in archive.read(metadata).decode().splitlines()
            if line.startswith("Requires-Dist: ")
        ]
    tops = {name.split("/")[0] for name in names}
    assert tops == {"invoice_pipelines", metadata.split("/")[0]}, tops
    assert "invoice_pipelines/definitions.py" in names
    assert any(n.startswith("invoice_pipelines/db/migrations/versions/0") for n in names)
    dev_tools = [n for n in names if DEV_TOOL_NAMES & set(Path(n).with_suffix("").parts)]
    assert dev_tools == []
    smtp = [r for r in requires if r.startswith("aiosmtpd")]
    assert smtp and all('extra == "dev"' in r for r in smtp), requires
