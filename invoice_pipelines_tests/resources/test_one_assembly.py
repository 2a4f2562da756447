"""One resource per edge (issue 57): the engine, the stores, OCR and the senders are built from the
environment in the assembly alone, and every command takes them from `args.resources`, every run
from its Dagster resources. A module that calls `command_line_engine()` or a `*_from_env()`
factory itself (or imports one to call) would build a second one, configured apart: this test
names it."""

from __future__ import annotations

import ast
from pathlib import Path

import invoice_pipelines

PACKAGE = Path(invoice_pipelines.__file__).parent

# the modules that build resources from the environment: the table of resources no area makes,
# and the QuickBooks area's seam, which makes the `quickbooks` resource (both through `areas.py`)
ASSEMBLY = frozenset({"resources/area.py", "quickbooks/area.py"})


def _builds(name: str) -> bool:
    return name == "command_line_engine" or name.endswith("_from_env")


def _uses(source: str) -> list[str]:
    """The factories `source` calls or imports, `name (line)` each; a definition is no use."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if _builds(name):
                found.append(f"{name}() ({node.lineno})")
        elif isinstance(node, ast.ImportFrom):
            found += [f"import {a.name} ({node.lineno})" for a in node.names if _builds(a.name)]
    return found


def _every_use() -> dict[str, list[str]]:
    uses = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        found = _uses(path.read_text(encoding="utf-8"))
        if found:
            uses[path.relative_to(PACKAGE).as_posix()] = found
    return uses


def test_only_the_assembly_builds_resources_from_the_environment():
    outside = {module: found for module, found in _every_use().items() if module not in ASSEMBLY}
    assert outside == {}, (
        "take the resource from `args.resources` (a command) or the run's resources instead; "
        "a new one goes into resources/area.py (or its area's area.py `provides`)"
    )


def test_the_assembly_is_where_they_are_built():
    # the list above is no stale exemption: each module on it builds resources
    uses = _every_use()
    assert sorted(module for module in ASSEMBLY if uses.get(module)) == sorted(ASSEMBLY)


def test_the_scan_sees_calls_attribute_calls_and_imports():
    source = (
        "from invoice_pipelines.db.engine import command_line_engine\n"
        "from invoice_pipelines.resources import stores\n"
        "def run(args):\n"
        "    engine = command_line_engine()\n"
        "    return stores.files_from_env('exports'), args.resources.database\n"
        "def files_from_env(area):\n"  # a definition builds nothing
        "    return area\n"
    )
    assert _uses(source) == [
        "import command_line_engine (1)",
        "command_line_engine() (4)",
        "files_from_env() (5)",
    ]


# An engine of the application database is made by db/engine.py's factories and nowhere else but
# in these modules, each for a reason a command's or a run's `database` cannot serve:
ENGINE_MAKERS = {
    "db/engine.py": "the factories themselves (command_line_engine, shared_engine)",
    "resources/database.py": "the `database` resource the runs get",
    # the one command that makes its engine: the `database` of `args.resources` is the runtime
    # role, and a migration needs the tables' owner
    "db/commands.py": "`migrate` logs in as the tables' owner, which the `database` resource "
    "(a run's or another command's) never does",
    "db/migrations/env.py": "Alembic's environment, the tables' owner as well",
    "tenants/run_coordinator.py": "the run coordinator in the daemon and webserver, no run",
}


def _makes_engines(source: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and (node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", ""))
        in ("make_engine", "shared_engine")
    ]


def test_engines_are_made_where_a_reason_is_written():
    makers = {
        path.relative_to(PACKAGE).as_posix(): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := _makes_engines(path.read_text(encoding="utf-8")))
    }
    assert sorted(set(makers) - set(ENGINE_MAKERS)) == [], (
        "a command takes `args.resources.database`, a run its `database` resource"
    )
    assert sorted(set(ENGINE_MAKERS) - set(makers)) == []  # no stale reason
