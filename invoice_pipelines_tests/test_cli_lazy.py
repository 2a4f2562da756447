"""Commands answer at the speed of their query (issue 47): `--help` lists every command without
importing an area, and a command that reads or writes the database imports neither Dagster nor
Alembic nor the areas it does not use. What a process imported is read from `sys.modules` in a
fresh interpreter after `main()`; no timing."""

from __future__ import annotations

import argparse
import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

from invoice_pipelines import cli
from invoice_pipelines.billing.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.cli_commands import COMMANDS
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.intake.test_review import basic_wl, run_intake

PACKAGE = Path(cli.__file__).parent
AREA_MODULES = {area for area in cli.AREAS if area != "db"}

# a fresh interpreter that imports only the console script, then runs each command in a child
# of its own (fork: every command starts from the same few modules, one interpreter start in all)
# and prints, per command, its exit code, what it printed and the modules it ended with
DRIVER = """
import contextlib, io, json, os, sys
from invoice_pipelines.cli import main
for argv in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        modules = sorted(sys.modules)
        sys.__stdout__.write("LOADED " + json.dumps([argv, code, out.getvalue(), modules]) + "\\n")
        sys.__stdout__.flush()
        os._exit(0)
    os.waitpid(pid, 0)
"""


def _run_each(commands: list[list[str]], url: str) -> list[tuple[int, str, set[str]]]:
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": url}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    found = []
    for line in done.stdout.splitlines():
        if line.startswith("LOADED "):
            argv, code, said, modules = json.loads(line[len("LOADED ") :])
            found.append((code, said, set(modules)))
    assert len(found) == len(commands), done.stdout + done.stderr
    return found


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


def _areas(modules: set[str]) -> set[str]:
    return {area for area in AREA_MODULES if _loaded(modules, f"invoice_pipelines.{area}")}


def test_the_table_is_what_each_area_adds():
    """`cli_commands.COMMANDS` (what --help lists without the areas) is, command by command and in
    order, what each area's `add_commands` adds, with the same help: the two cannot drift."""
    added = []
    for area in (*cli.AREAS, cli.DEVTOOLS):
        module = (
            "invoice_pipelines_devtools.cli"
            if area == cli.DEVTOOLS
            else f"invoice_pipelines.{area}.cli"
        )
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).add_commands(sub)
        added += [(action.dest, area, action.help) for action in sub._choices_actions]
    assert added == list(COMMANDS)


def test_the_areas_that_register_queue_kinds_are_loaded_together():
    """A queue command (batch-status, batch-run, --wait) meets jobs of every kind the command line
    registers; the kinds are registered by importing those areas' cli.py, so `QUEUE_KIND_AREAS`
    must name exactly the areas whose cli.py calls `register`."""
    registering = {
        area
        for area in cli.AREAS
        if any(
            isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register"
            for node in ast.walk(ast.parse((PACKAGE / area / "cli.py").read_text()))
        )
    }
    assert registering == set(cli.QUEUE_KIND_AREAS)


def test_help_without_the_areas_reads_as_with_them():
    every = cli.build_parser().format_help()
    assert cli.build_parser("").format_help() == every
    assert cli.build_parser("incoming").format_help() == every
    # the command's own parser is the area's real one
    args = cli.build_parser("batch-status").parse_args(["batch-status", "7", "--json"])
    assert (args.job_id, args.json) == (7, True)


def test_help_and_database_commands_import_no_dagster_alembic_or_other_areas(db, tmp_path):
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("LAZY-1")})["r.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    shop = make_shop(db)
    job_id = enqueue_sales_orders(db.engine, shop.org_id, order_ids=shop.add_orders(1))
    slug, doc_id = org["slug"], str(doc["id"])
    commands = {
        # command: (argv, the areas it may import)
        "--help": (["--help"], set()),
        "incoming list": (["incoming", "list", "--org", slug], {"intake"}),
        "incoming show": (["incoming", "show", "--org", slug, "--id", doc_id], {"intake"}),
        "incoming review": (
            ["incoming", "review", "--org", slug, "--id", doc_id, "--confirm", "--by", "anna"]
            + ["--version", str(doc["processing_version"])],
            {"intake"},
        ),
        "incoming policy": (["incoming", "policy", "--org", slug], {"intake"}),
        "batch-status": (["batch-status", str(job_id)], set(cli.QUEUE_KIND_AREAS)),
        "batch-list": (["batch-list", "--org", shop.org["slug"]], set(cli.QUEUE_KIND_AREAS)),
        "qbo-conflicts": (["qbo-conflicts", "--org", slug], {"quickbooks"}),
        "dunning-block": (
            ["dunning-block", "--org", shop.org["slug"], "--reason", "test", "--customers"]
            + [str(shop.customer_ids[0])],
            {"overdue"},
        ),
    }
    ran = _run_each([argv for argv, _ in commands.values()], db.url)
    found = dict(zip(commands, ran, strict=True))

    for name, (_argv, areas) in commands.items():
        code, said, modules = found[name]
        assert code == 0, (name, said)
        assert not _loaded(modules, "dagster"), name
        assert not _loaded(modules, "alembic"), name
        assert _areas(modules) <= areas, (name, _areas(modules))
    code, said, modules = found["--help"]
    assert all(command in said for command, _, _ in COMMANDS)
    assert not _loaded(modules, "sqlalchemy")
    assert "LAZY-1" in found["incoming list"][1] and "LAZY-1" in found["incoming show"][1]
    assert "VALIDATED" in found["incoming review"][1]
    assert f"batch job {job_id}" in found["batch-status"][1]
