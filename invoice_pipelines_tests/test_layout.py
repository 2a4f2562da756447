"""An area's Dagster objects are laid out by kind (issue 57; docs/architecture.md, "An area's
Dagster objects, by kind"), as Dagster's own platform lays them out: an asset is defined in
`assets.py`, a sensor in `sensors.py`, a schedule in `schedules.py`, a job with its ops in
`jobs.py`, an asset check in `checks.py`, partitions in `partitions.py`, and `defs.py` is one
short `Definitions` of them. This test reads every module of the package and names an object
defined in a module of another kind.

What Dagster defines is known by the names a module imports from `dagster` (a decorator or a
call), so a local `op` or a kind's `reading.asset(...)` is no asset. The shared factory of the
checks' jobs and schedules (`scheduled_checks.py`) and the assembly (`definitions.py`) are no
area's. Every module is laid out: there is no list of exceptions."""

from __future__ import annotations

import ast
from pathlib import Path

import invoice_pipelines

PACKAGE = Path(invoice_pipelines.__file__).parent

# what Dagster defines -> the module (by its name) where an area defines it
WHERE = {
    "asset": {"assets"},
    "multi_asset": {"assets"},
    "graph_asset": {"assets"},
    "AssetSpec": {"assets"},
    "asset_check": {"checks"},
    "multi_asset_check": {"checks"},
    # a check an asset evaluates in its own run: its spec beside the asset, or in checks.py
    "AssetCheckSpec": {"checks", "assets"},
    "sensor": {"sensors"},
    "asset_sensor": {"sensors"},
    "multi_asset_sensor": {"sensors"},
    "run_status_sensor": {"sensors"},
    "run_failure_sensor": {"sensors"},
    "schedule": {"schedules"},
    "ScheduleDefinition": {"schedules"},
    "build_schedule_from_partitioned_job": {"schedules"},
    # the queue's jobs module is dagster_jobs.py: queue/domain/jobs.py reads, cancels and retries jobs
    "job": {"jobs", "dagster_jobs"},
    "op": {"jobs", "dagster_jobs"},
    "graph": {"jobs", "dagster_jobs"},
    "define_asset_job": {"jobs", "dagster_jobs"},
    "DynamicPartitionsDefinition": {"partitions"},
    "StaticPartitionsDefinition": {"partitions"},
    "MonthlyPartitionsDefinition": {"partitions"},
    "DailyPartitionsDefinition": {"partitions"},
    "MultiPartitionsDefinition": {"partitions"},
    "TimeWindowPartitionsDefinition": {"partitions"},
    "Definitions": {"defs"},
}
# no area's: the one assembly and the one factory of the checks' jobs and schedules
NO_AREA = frozenset({"definitions.py", "scheduled_checks.py"})


def _dagster_names(tree: ast.Module) -> tuple[dict[str, str], set[str]]:
    """The names the module imports from dagster (local name -> Dagster's), and the local names of
    the dagster module itself (`import dagster as dg`)."""
    names, modules = {}, set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "dagster":
            names.update({a.asname or a.name: a.name for a in node.names})
        elif isinstance(node, ast.Import):
            modules |= {a.asname or a.name for a in node.names if a.name == "dagster"}
    return names, modules


def _dagster_name(node: ast.expr, names: dict[str, str], modules: set[str]) -> str | None:
    node = node.func if isinstance(node, ast.Call) else node
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id in modules else None
    return None


def defined(source: str) -> list[tuple[str, int]]:
    """What the module defines of Dagster's (`WHERE`'s names), by decorator or call, with lines."""
    tree = ast.parse(source)
    names, modules = _dagster_names(tree)
    decorators = [
        d
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        for d in node.decorator_list
    ]
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    # a decorator with arguments (`@sensor(...)`) is a call as well: counted once
    seen = {id(d) for d in decorators}
    used = decorators + [c for c in calls if id(c) not in seen]
    found = [(_dagster_name(node, names, modules), node.lineno) for node in used]
    return sorted(((n, line) for n, line in found if n in WHERE), key=lambda item: item[1])


def misplaced(relative: str, source: str) -> list[str]:
    module = Path(relative).stem
    return [f"{name} ({line})" for name, line in defined(source) if module not in WHERE[name]]


def _modules() -> dict[str, str]:
    return {
        path.relative_to(PACKAGE).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in path.parts
    }


def test_each_dagster_object_is_defined_in_the_module_of_its_kind():
    wrong = {
        relative: found
        for relative, source in _modules().items()
        if relative not in NO_AREA and (found := misplaced(relative, source))
    }
    assert wrong == {}, "define each in its kind's module (assets.py, sensors.py, ...)"


def test_defs_py_only_gathers():
    # a defs.py imports the area's objects and makes one Definitions of them (the queue's builds
    # it from the kinds it is given); it defines no object itself
    for relative, source in _modules().items():
        if Path(relative).name != "defs.py":
            continue
        assert [name for name, _ in defined(source)] == ["Definitions"], relative
        body = [n for n in ast.parse(source).body if not isinstance(n, ast.Import | ast.ImportFrom)]
        kinds = {type(n).__name__ for n in body[1:]}  # after the docstring
        assert kinds <= {"Assign", "FunctionDef"}, relative


def test_the_reading_sees_decorators_calls_and_dagster_as_a_module():
    source = (
        "import dagster as dg\n"
        "from dagster import asset, sensor as watch\n"
        "@asset\n"
        "def a(): ...\n"
        "@watch(job_name='j')\n"
        "def s(): ...\n"
        "j = dg.define_asset_job('j')\n"
        "def op(x): return x\n"  # our own `op`, no Dagster op
        "op(1)\n"
        "kind.reading.asset(1)\n"
    )
    assert defined(source) == [("asset", 3), ("sensor", 5), ("define_asset_job", 7)]
    assert misplaced("billing/sensors.py", source) == ["asset (3)", "define_asset_job (7)"]


# the areas whose folders hold Dagster objects (db and resources are shared layers of the house)
AREA_FOLDERS = sorted(
    path.parent.name
    for path in PACKAGE.glob("*/defs.py")
    if path.parent.name not in {"db", "resources"}
)
# what an area's folder shows at its top besides its Dagster modules: its declaration, its one
# Definitions, the resource its runs parse with, and the two sub-packages
AREA_TOP = frozenset({"__init__.py", "area.py", "defs.py", "parser_resource.py"})


def _imports_dagster_at_top(source: str) -> bool:
    top = ast.parse(source).body
    return any(
        (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "dagster")
        or (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "dagster" for a in n.names))
        for n in top
    )


def test_an_area_shows_its_dagster_modules_first():
    """At the top of an area's folder stand its Dagster modules (assets, jobs, sensors, schedules,
    checks, partitions, resources, ...: each imports Dagster) and `area.py`/`defs.py`; what its
    commands do is in `<area>/commands/`, what it knows and does apart from Dagster in
    `<area>/domain/`, and neither of those imports Dagster at its top (docs/architecture.md,
    "An area's folder")."""
    assert len(AREA_FOLDERS) >= 12, AREA_FOLDERS
    wrong = {}
    for area in AREA_FOLDERS:
        folder = PACKAGE / area
        for path in sorted(folder.glob("*.py")):
            if path.name in AREA_TOP:
                continue
            if not _imports_dagster_at_top(path.read_text(encoding="utf-8")):
                wrong[f"{area}/{path.name}"] = "no Dagster module: move it to domain/ or commands/"
        for sub in ("domain", "commands"):
            for path in sorted((folder / sub).rglob("*.py")):
                if _imports_dagster_at_top(path.read_text(encoding="utf-8")):
                    wrong[path.relative_to(PACKAGE).as_posix()] = "imports Dagster at its top"
        packages = {p.name for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
        if not packages <= {"domain", "commands"}:
            wrong[area] = f"sub-packages {sorted(packages - {'domain', 'commands'})}"
    assert wrong == {}


def test_the_layout_reading_sees_dagster_at_the_top_only():
    assert _imports_dagster_at_top("import dagster as dg\n")
    assert _imports_dagster_at_top("from dagster import asset\n")
    assert _imports_dagster_at_top("from dagster._core.instance import DagsterInstance\n")
    assert not _imports_dagster_at_top("def f():\n    import dagster\n")
    assert not _imports_dagster_at_top("from dagster_shim import x\n")
