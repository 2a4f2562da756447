"""One builder per edge resource (issues 57, 74): the engine, the stores, OCR, the senders and
every other resource an area makes are built by the one builder its area's table names
(`Resource.build`, a `module:function` path in `<area>/area.py`), which the assemblies call for
the runs and the commands alike (`areas.for_runs`, `areas.for_commands`); every command takes them
from `args.resources`, every run from its Dagster resources. A module that imports a builder to
call it would build a second one, configured apart: this test names it."""

from __future__ import annotations

import ast
from pathlib import Path

import invoice_pipelines
from invoice_pipelines.areas import resources

PACKAGE = Path(invoice_pipelines.__file__).parent


def _builders() -> set[tuple[str, str]]:
    """(module, function) of every builder the tables name, its `for_commands` among them."""
    paths = [
        path
        for resource in resources().values()
        for path in (resource.build, resource.for_commands)
        if path is not None
    ]
    return {(path.partition(":")[0], path.partition(":")[2].split(".")[0]) for path in paths}


def _uses(source: str, builders: set[tuple[str, str]]) -> list[str]:
    """The builders `source` imports, or calls through their module, `name (line)` each; a
    definition is no use."""
    modules = {module for module, _ in builders}
    names = {name for _, name in builders}
    tree = ast.parse(source)
    aliases = set()  # the builders' modules as this source names them
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and not node.level:
            for alias in node.names:
                if (node.module, alias.name) in builders:
                    found.append(f"import {alias.name} ({node.lineno})")
                elif f"{node.module}.{alias.name}" in modules:
                    aliases.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            aliases |= {a.asname or a.name for a in node.names if a.name in modules}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            owner_name = owner.id if isinstance(owner, ast.Name) else ast.unparse(owner)
            if owner_name in aliases and node.func.attr in names:
                found.append(f"{node.func.attr}() ({node.lineno})")
    return found


def _every_use() -> dict[str, list[str]]:
    builders = _builders()
    own = {module for module, _ in builders}
    # a run's resource is derived from the plain class the builder makes (`for_runs`): its
    # module imports that class, and calls no builder
    deriving = {
        resource.for_runs.partition(":")[0]
        for resource in resources().values()
        if resource.for_runs is not None
    }
    uses = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("invoice_pipelines", *path.relative_to(PACKAGE).with_suffix("").parts))
        if name in own:  # a builder's own module builds with its helpers
            continue
        found = _uses(path.read_text(encoding="utf-8"), builders)
        if name in deriving:
            found = [use for use in found if not use.startswith("import ")]
        if found:
            uses[path.relative_to(PACKAGE).as_posix()] = found
    return uses


def test_only_the_tables_name_the_builders():
    assert _every_use() == {}, (
        "take the resource from `args.resources` (a command) or the run's resources instead; "
        "a new one goes into resources/area.py (or its area's area.py `provides`)"
    )


def test_no_resource_is_built_by_a_pair_of_factories():
    """Issue 74: each resource had a factory for the runs and one for the commands (`*_from_env`,
    `QboSettings.from_env`), configured apart; a function of that kind is back only as a pair
    again."""
    pairs = sorted(
        f"{path.relative_to(PACKAGE).as_posix()}:{node.lineno} {node.name}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef) and node.name.endswith("from_env")
    )
    assert pairs == [], "build the resource with its one builder (settings.Reading) instead"


def test_the_scan_sees_imports_and_calls_through_the_module():
    builders = {
        ("invoice_pipelines.resources.files.stores", "export_files"),
        ("invoice_pipelines.db.engine", "database_login"),
    }
    source = (
        "from invoice_pipelines.db.engine import database_login\n"
        "from invoice_pipelines.resources.files import stores\n"
        "def run(args):\n"
        "    login = database_login()\n"
        "    return stores.export_files(), args.resources.database\n"
        "def export_files():\n"  # a definition builds nothing
        "    return None\n"
    )
    assert sorted(_uses(source, builders)) == ["export_files() (5)", "import database_login (1)"]


# An engine of the application database is made by db/engine.py's factories and nowhere else but
# in these modules, each for a reason a command's or a run's `database` cannot serve:
ENGINE_MAKERS = {
    "db/engine.py": "the factories themselves (DatabaseLogin.engine and .system_engine, which the "
    "`database` and `system_database` resources the runs get call too; shared_engine)",
    # the one command that makes its engine: the `database` of `args.resources` is the runtime
    # role, and a migration needs the tables' owner
    "db/commands/run.py": "`migrate` logs in as the tables' owner, which the `database` resource "
    "(a run's or another command's) never does",
    "db/migrations/env.py": "Alembic's environment, the tables' owner as well",
    "lib/run_coordinator.py": "the run coordinator in the daemon and webserver, no run",
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
