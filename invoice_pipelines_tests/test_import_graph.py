"""The package's import graph: no two modules need each other, and nothing reaches up a layer.

The rule (docs/architecture.md, "The import rule"): an area may import the shared layers below it
(core, db, lib, resources, einvoice, queue, outbox and the top-level settings, limits,
metadata, cli_args, catalog, scheduled_checks, area_parts); nothing imports an area except the list of
areas (`areas.py`), which imports each one's assembly object (`<area>/area.py`: its commands,
definitions, kinds and resources, each loaded by the area itself); the two assemblies,
`definitions.py` and the console script, take the areas from that list alone, and nothing else
reads it; nothing imports `definitions.py`; nothing registers a kind of batch job (the list
gathers them all into one value, `areas.kinds()`); a migration imports only what is frozen for it (FROZEN_FOR_MIGRATIONS); the
development tooling (invoice_pipelines_devtools) is reached only from the console script.

tenants/ is the organizations' own area (their lifecycle, commands, asset and sensor): nothing
outside it imports it but the list of areas (its `area.py`); everyone's Dagster kit (partitions,
refusals, turns, the run coordinator, ...) is lib/, a floor below the areas.

Every link the walk can read counts as an import, at module level and inside functions alike (a
function-level import is a dependency that waits for its first call): `import` statements, a
`"package.module:function"` string (what a worker pool runs), and the name given to
`importlib.import_module` or `__import__` (an f-string's name stands for every module it can
spell). An import whose name the walk cannot read is allowed only where DYNAMIC_IMPORTS says why.

What one area alone uses stays in it: a module of core/ or db/ (or the sales ledger) that exactly
one area imports, and nothing else, is a holding pen and fails, unless ONE_AREA_ALLOWED says why
it stays.

Dagster's private API (`dagster._*`: an import, a `_` name of the module, a private module's name
as a string) is used by the fence alone (`dagster_internals/`, one module per purpose, which
imports nothing of ours), in the package and in the development tooling alike.

A failure lists each offending edge as `file:line importer -> imported`.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import invoice_pipelines

PACKAGE = "invoice_pipelines"
ROOT = Path(invoice_pipelines.__file__).resolve().parent
PROJECT = ROOT.parent

# the areas: one subpackage each, its Dagster definitions gathered in defs.py, commands in cli.py
AREAS = frozenset(
    {
        "intake",
        "exports",
        "billing",
        "documents",
        "delivery",
        "overdue",
        "quickbooks",
        "housekeeping",
        "history",
    }
)
# what every area may take, lowest first: a shared module imports only those of a lower rank
SHARED_RANK = {
    "limits": 0,
    "cli_args": 0,
    # the fence around Dagster's internals: Dagster and the standard library, nothing of ours
    "dagster_internals": 0,
    # what an area gives the assemblies (`Area`, `Command`, ...): plain dataclasses
    "area_parts": 0,
    "catalog": 0,
    # the job and schedule of checks evaluated apart from their assets' runs (Dagster only)
    "scheduled_checks": 0,
    "settings": 1,
    "core": 2,
    "einvoice": 3,
    "metadata": 3,
    "db": 4,
    # the sales invoice as documents, delivery, exports and dunning read it: a read model of
    # several areas, above the tables
    "sales_ledger": 5,
    # the organization's supplier register as the intake, the bill push and the notices read and
    # change it: a model of several areas, above the tables
    "supplier_register": 5,
    # everyone's Dagster kit (partitions and run tags, refusals, turns, check metadata, the period
    # sensors' factory, the run coordinator): above the tables it reads, below every area
    "lib": 6,
    "resources": 7,
    # the queue's state and its changes (plain Python and SQL, no Dagster): below the
    # organizations' area, whose offboarding ends an organization's jobs through it; the queue's
    # Dagster modules (its job, sensors, schedules) stay above lib/, whose kit they use
    "queue.domain": 7,
    "outbox": 8,
    "tenants": 8,
    "queue": 9,
}
SHARED = frozenset(SHARED_RANK)
# the organizations' own area: nothing outside it imports it but the list of areas (its area.py)
TENANTS = f"{PACKAGE}.tenants"
# the two places that assemble the areas, and the one list of areas both take them from
ASSEMBLY = f"{PACKAGE}.definitions"
CONSOLE_SCRIPT = f"{PACKAGE}.cli"
AREA_LIST = f"{PACKAGE}.areas"
# each area's assembly object, `AREA` in `<area>/area.py` (the shared layers with a part in the
# assemblies have one too: resources, db, tenants, queue)
AREA_OBJECT = "area"
DEVTOOLS = ("invoice_pipelines_devtools", f"{PACKAGE}.devtools")
# Alembic's revisions: history, each doing what it did when it was written
MIGRATIONS = f"{PACKAGE}.db.migrations.versions."
# What a migration may import of ours: what never changes meaning (None: any name of the module).
FROZEN_FOR_MIGRATIONS: dict[str, frozenset[str] | None] = {
    # column types: a type's DDL never changes, a new width is a new type
    # (db/test_frozen_for_migrations.py holds each to its DDL)
    f"{PACKAGE}.db.types": None,
    # the tenant policy's plumbing (roles, grants, settings' names); `protect_tables` writes the
    # policy of the day, and each change of it is a revision rewriting every table's policy with
    # its expression written out (0017, 0027), so every chain of revisions ends at the same one
    # (db/test_frozen_for_migrations.py holds a fresh migrate to it)
    f"{PACKAGE}.db.rls": None,
    # the application role's name: the deployment's configuration, not a rule
    f"{PACKAGE}.db.engine": frozenset({"app_role"}),
    # 0055's read-only triggers of an offboarded organization, which a revision adding a tenant
    # table puts on it too (db/test_read_only_triggers.py holds them to 0055's text)
    f"{PACKAGE}.db.read_only_triggers": None,
}
# What two areas share moves down a layer; what one area alone uses stays in it. A module of these
# layers that one area imports, and nothing else, is that area's module in a shared layer's
# folder (a holding pen): it moves into the area. The exceptions, each with why it stays:
HOLDING_PEN_LAYERS = ("core", "db", "sales_ledger")
ONE_AREA_ALLOWED = {
    # DATEV's EXTF format (header, columns, field formats): a domain rule in plain Python, where
    # the house plan puts "DATEV and CSV row building" (DESIGN.md, layer 1); used by the exports
    f"{PACKAGE}.core.datev": "exports",
}
# Imports whose module the walk cannot read, each with why it may be one.
DYNAMIC_IMPORTS = {
    f"{PACKAGE}.resources.workers.worker_pool": "runs a `module:function` string: read where written",
    # each area's parts are `module:name` strings in its area.py, read there as its imports
    f"{PACKAGE}.area_parts": "loads the `module:name` paths of the areas' tables: read where written",
    f"{PACKAGE}.housekeeping.dead_runs": "imports the classes dagster.yaml names (Dagster's)",
}
# Holes of issue 48 another change is closing right now (the e-invoice library, the commands
# without the definitions): exact `importer -> imported` edges the rule refuses. The tests leave
# them out, and fail when one no longer occurs: take it out then. The set only shrinks, to empty.
PENDING_ISSUE_48: frozenset[str] = frozenset()
# Dagster's private API (`dagster._core`, `dagster._grpc`, ...) is used in the fence alone, one
# module per purpose; docs/dagster-upgrade.md lists each use with the test that fails when Dagster
# changes it and how to turn it off. A string that is such a module's name (handed to importlib or
# a preload) is a use like an import; prose that mentions one is none.
DAGSTER_FENCE = f"{PACKAGE}.dagster_internals"
PRIVATE_DAGSTER = re.compile(r"dagster\._\w+(?:\.\w+)*(?::\w+)?")
DEVTOOLS_ROOT = PROJECT / DEVTOOLS[0]


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int
    # the names taken from the module (`from m import a, b`), and how the link is written
    names: frozenset[str] = field(default=frozenset(), compare=False)
    how: str = field(default="import", compare=False)

    def __str__(self) -> str:
        via = "" if self.how == "import" else f" ({self.how})"
        return (
            f"{self.path.relative_to(PROJECT)}:{self.line} {self.importer} -> {self.imported}{via}"
        )

    @property
    def pair(self) -> str:
        return f"{self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@functools.cache
def _parse(source: str, filename: str) -> ast.Module:
    return ast.parse(source, filename=filename)


def parsed(path: Path) -> ast.Module:
    """The module's tree, parsed once a source for every check here (none changes a tree)."""
    return _parse(path.read_text(encoding="utf-8"), str(path))


@pytest.fixture(scope="module", autouse=True)
def _trees_let_go():
    """The trees go with the module: half a million nodes kept would slow every later garbage
    collection of the worker."""
    yield
    _parse.cache_clear()


def product_files() -> dict[str, Path]:
    """Every module of the package, Alembic's revisions included (an in-package devtools folder,
    while it exists, is not one)."""
    files = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        if name.startswith(DEVTOOLS):
            continue
        files[name] = path
    return files


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


# "invoice_pipelines.intake.domain.parse:parse_document": a function named for another process to run
TARGET = re.compile(r"(invoice_pipelines(?:_devtools)?(?:\.\w+)*):[A-Za-z_]\w*(?:\.\w+)*")
IMPORT_FUNCTIONS = frozenset({"import_module", "__import__"})


def _ours(target: str) -> bool:
    return target.startswith(DEVTOOLS) or target == PACKAGE or target.startswith(PACKAGE + ".")


def _spelled(node: ast.JoinedStr, modules: set[str]) -> list[str] | None:
    """The modules an f-string can spell (`f"invoice_pipelines.{area}.cli"`: every area's cli),
    None when it does not start with our package's name."""
    parts = [
        re.escape(part.value) if isinstance(part, ast.Constant) else ".+" for part in node.values
    ]
    first = node.values[0] if node.values else None
    if not (isinstance(first, ast.Constant) and _ours(str(first.value))):
        return None
    pattern = re.compile("".join(parts))
    return sorted(m for m in modules if pattern.fullmatch(m))


def _import_call(node: ast.AST) -> ast.expr | None:
    """The name argument of `importlib.import_module(...)` or `__import__(...)`, else None."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return node.args[0] if called in IMPORT_FUNCTIONS else None


def _links(
    node: ast.AST, name: str, is_package: bool, modules: set[str]
) -> list[tuple[str, frozenset[str], str]]:
    """What one node links to: (module, names taken from it, how it is written)."""
    if isinstance(node, ast.Import):
        return [(alias.name, frozenset(), "import") for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            base = _resolve_relative(name, is_package, node.level, node.module)
        taken: dict[str, set[str]] = {}
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            if candidate in modules:
                taken.setdefault(candidate, set())
            else:
                taken.setdefault(base, set()).add(alias.name)
        return [(target, frozenset(names), "import") for target, names in taken.items()]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        if match := TARGET.fullmatch(node.value):
            return [(match.group(1), frozenset({node.value.partition(":")[2]}), "string")]
        return []
    argument = _import_call(node)
    if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
        return [(argument.value, frozenset(), "import_module")]
    if isinstance(argument, ast.JoinedStr):
        return [(m, frozenset(), "import_module") for m in _spelled(argument, modules) or ()]
    return []


def imports_of(name: str, path: Path, modules: set[str]) -> list[Edge]:
    """The modules `name` links to, each with its line; a name taken from a package is the package
    unless the name is itself a module (`from pkg import submodule`)."""
    tree = parsed(path)
    edges: list[Edge] = []
    for node in ast.walk(tree):
        for target, names, how in _links(node, name, path.name == "__init__.py", modules):
            if _ours(target):
                edges.append(Edge(name, _known(target, modules), path, node.lineno, names, how))
    # one edge per linked module and line (`from m import a, b` is one)
    return sorted({e for e in edges if e.imported != name}, key=lambda e: (e.line, e.imported))


def unread_imports(name: str, path: Path, modules: set[str]) -> list[int]:
    """The lines where `name` imports a module whose name the walk cannot read."""
    tree = parsed(path)
    lines = []
    for node in ast.walk(tree):
        argument = _import_call(node)
        if argument is None or isinstance(argument, ast.Constant):
            continue
        if isinstance(argument, ast.JoinedStr) and _spelled(argument, modules) is not None:
            continue
        lines.append(node.lineno)
    return sorted(lines)


def _known(target: str, modules: set[str]) -> str:
    """The module an import lands in: `a.b.c` where only `a.b` is a module (c a name in it)."""
    parts = target.split(".")
    while parts and ".".join(parts) not in modules:
        if ".".join(parts).startswith(DEVTOOLS):
            return target
        parts.pop()
    return ".".join(parts) or target


def private_dagster_uses(path: Path) -> list[tuple[int, str]]:
    """Where a module uses Dagster's private API, as (line, what): an import of `dagster._*` or of
    a `_` name from `dagster`, a `_` attribute of the `dagster` module under the name it was
    imported as, and a string that is a private module's name. Dunder names are public."""
    tree = parsed(path)

    def private(name: str) -> bool:
        return name.startswith("_") and not name.startswith("__")

    names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name == "dagster"
    }
    found: set[tuple[int, str]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {
                (node.lineno, a.name) for a in node.names if PRIVATE_DAGSTER.fullmatch(a.name)
            }
        elif isinstance(node, ast.ImportFrom) and not node.level:
            if PRIVATE_DAGSTER.fullmatch(node.module or ""):
                found.add((node.lineno, str(node.module)))
            elif node.module == "dagster":
                found |= {(node.lineno, f"dagster.{a.name}") for a in node.names if private(a.name)}
        elif isinstance(node, ast.Attribute) and private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in names:
                found.add((node.lineno, f"dagster.{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if PRIVATE_DAGSTER.fullmatch(node.value):
                found.add((node.lineno, node.value))
    return sorted(found)


def devtools_files() -> dict[str, Path]:
    """Every module of the development tooling beside the package."""
    return {module_name(path): path for path in sorted(DEVTOOLS_ROOT.rglob("*.py"))}


def in_the_fence(module: str) -> bool:
    return module == DAGSTER_FENCE or module.startswith(DAGSTER_FENCE + ".")


def import_graph() -> list[Edge]:
    files = product_files()
    modules = set(files)
    edges: list[Edge] = []
    for name, path in files.items():
        edges.extend(imports_of(name, path, modules))
    return edges


def top(module: str) -> str:
    """The layer or area of a module of ours: its top folder, or a sub-package that is a layer of
    its own (`queue.domain`); "" outside the package."""
    parts = module.split(".")
    if len(parts) > 2 and parts[0] == PACKAGE and ".".join(parts[1:3]) in SHARED_RANK:
        return ".".join(parts[1:3])
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else ""


def migration_import(edge: Edge) -> str | None:
    """Why a revision may not import what the edge imports, or None when it is frozen for it."""
    allowed = FROZEN_FOR_MIGRATIONS.get(edge.imported, ())
    if allowed is None or (allowed and edge.names and edge.names <= allowed):
        return None
    names = f" ({', '.join(sorted(edge.names))})" if edge.names else ""
    return f"a migration imports live code: {edge.imported}{names}"


def upward(edge: Edge) -> str | None:
    """Why the edge breaks the layer rule, or None when it keeps it."""
    if edge.importer.startswith(MIGRATIONS):
        return migration_import(edge)
    if edge.imported.startswith(DEVTOOLS):
        return None if edge.importer == CONSOLE_SCRIPT else "the product imports dev tooling"
    source, target = top(edge.importer), top(edge.imported)
    if edge.imported == AREA_LIST and edge.importer not in (ASSEMBLY, CONSOLE_SCRIPT):
        return f"{source or edge.importer} reads the list of areas, which only the assemblies do"
    if _is_area_object(edge.imported) and edge.importer != AREA_LIST:
        return f"{source or edge.importer} imports {edge.imported}, which only areas.py lists"
    if source == target:
        return None
    if edge.imported == ASSEMBLY:
        kind = "area " if source in AREAS else "shared layer " if source in SHARED else ""
        return f"{kind}{source or edge.importer} imports definitions"
    if source in SHARED and target in SHARED:
        if SHARED_RANK[target] < SHARED_RANK[source]:
            return None
        return f"shared layer {source} imports {target}, a layer not below it"
    if target not in AREAS:
        if source in SHARED and target:
            return f"shared layer {source} imports {target}"
        return None
    if edge.importer == AREA_LIST and _is_area_object(edge.imported):
        return None
    if edge.importer in (ASSEMBLY, CONSOLE_SCRIPT):
        return f"{source} imports area {target}: take it from areas.py"
    if source in AREAS:
        return f"area {source} imports area {target}"
    return f"{source or edge.importer} imports area {target}"


def _is_area_object(module: str) -> bool:
    """`invoice_pipelines.<area>.area`: an area's (or a shared layer's) assembly object."""
    parts = module.split(".")
    return len(parts) == 3 and parts[0] == PACKAGE and parts[2] == AREA_OBJECT


def holding_pens(edges: list[Edge], modules: set[str]) -> dict[str, str]:
    """The modules of HOLDING_PEN_LAYERS that exactly one area imports and no other module (of
    any layer, its own included: a building block of its layer is none), each with the area."""
    users: dict[str, set[str]] = {}
    for edge in edges:
        if not edge.importer.startswith(MIGRATIONS):  # a migration imports only what is frozen
            users.setdefault(edge.imported, set()).add(edge.importer)
    pens = {}
    for module in sorted(modules):
        layer = top(module)
        if layer not in HOLDING_PEN_LAYERS or module.startswith(MIGRATIONS):
            continue
        importers = {top(importer) or importer for importer in users.get(module, ())}
        if len(importers) == 1 and (area := next(iter(importers))) in AREAS:
            pens[module] = area
    return pens


def circles(edges: list[Edge]) -> list[list[Edge]]:
    """Each group of modules that reach each other (strongly connected), as the edges inside it."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        graph.setdefault(edge.importer, set()).add(edge.imported)
        graph.setdefault(edge.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(start: str) -> None:
        # iterative Tarjan: the package is deep enough for recursion to be a worry in CI
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [
        sorted(
            (e for e in edges if e.importer in group and e.imported in group),
            key=lambda e: (e.importer, e.line),
        )
        for group in sorted(groups, key=min)
    ]


@pytest.fixture(scope="module")
def edges() -> list[Edge]:
    return import_graph()


def test_the_walk_sees_the_whole_package(edges):
    """The walk finds the modules and their imports, function-level ones included."""
    assert len(product_files()) > 150
    # areas.py lists every area's assembly object, which loads the area's defs and cli inside
    # functions
    listed = {e.imported for e in edges if e.importer == AREA_LIST}
    assert {f"{PACKAGE}.{area}.area" for area in AREAS} <= listed
    for area in AREAS:
        loaded = {e.imported for e in edges if e.importer == f"{PACKAGE}.{area}.area"}
        assert {f"{PACKAGE}.{area}.defs", f"{PACKAGE}.{area}.commands.cli"} <= loaded, area
    # db/area.py imports what `migrate` does inside its loader (the seam): such an import counts
    assert any(
        e.importer == f"{PACKAGE}.db.area" and e.imported == f"{PACKAGE}.db.commands.run"
        for e in edges
    )
    # Alembic's revisions are walked: 0002 makes the application role with db/rls.py
    assert any(
        e.importer == f"{MIGRATIONS}0002_row_level_security" and e.imported == f"{PACKAGE}.db.rls"
        for e in edges
    )


def test_the_walk_reads_names_as_imports(tmp_path):
    """A `module:function` string and a name given to importlib are links like an import."""
    source = tmp_path / "x.py"
    source.write_text(
        "import importlib\n"
        'TARGET = "invoice_pipelines.intake.domain.parse:parse_document"\n'
        'NOT_A_TARGET = "invoice_pipelines.organization_id"\n'
        "def load(area):\n"
        '    importlib.import_module("invoice_pipelines.exports.domain.files")\n'
        '    __import__("invoice_pipelines.billing.domain.contract")\n'
        '    return importlib.import_module(f"invoice_pipelines.{area}.defs")\n'
        "def unread(name):\n"
        "    return importlib.import_module(name)\n",
        encoding="utf-8",
    )
    modules = set(product_files())
    found = {
        (e.imported, e.how, e.line) for e in imports_of(f"{PACKAGE}.documents.x", source, modules)
    }
    assert {
        (f"{PACKAGE}.intake.domain.parse", "string", 2),
        (f"{PACKAGE}.exports.domain.files", "import_module", 5),
        (f"{PACKAGE}.billing.domain.contract", "import_module", 6),
    } <= found
    assert {(f"{PACKAGE}.{area}.defs", "import_module", 7) for area in AREAS} <= found
    assert not any(imported == PACKAGE for imported, *_ in found)
    assert unread_imports(f"{PACKAGE}.documents.x", source, modules) == [9]
    # such a link from another area is refused like an import
    string = next(e for e in imports_of(f"{PACKAGE}.documents.x", source, modules) if e.line == 2)
    assert upward(string) == "area documents imports area intake"


def test_every_import_names_its_module():
    """An import whose module the walk cannot read is one the rule cannot check: each is listed,
    with the reason, in DYNAMIC_IMPORTS."""
    files = product_files()
    modules = set(files)
    found = {
        name: lines
        for name, path in files.items()
        if (lines := unread_imports(name, path, modules))
    }
    unlisted = {name: lines for name, lines in found.items() if name not in DYNAMIC_IMPORTS}
    assert not unlisted, f"imports the walk cannot read (module: lines): {unlisted}"
    assert set(found) == set(DYNAMIC_IMPORTS), "DYNAMIC_IMPORTS lists a module without one"


def test_no_two_modules_need_each_other(edges):
    found = circles(edges)
    report = "\n\n".join(
        f"circle of {len({e.importer for e in group})} modules:\n" + "\n".join(map(str, group))
        for group in found
    )
    print(report)
    assert not found, "import circles (each edge as file:line importer -> imported):\n" + report


def into_tenants(edges: list[Edge]) -> list[Edge]:
    """The edges from outside tenants/ into it, but the list of areas taking its `area.py`."""
    return [
        edge
        for edge in edges
        if top(edge.imported) == "tenants"
        and top(edge.importer) != "tenants"
        and not (edge.importer == AREA_LIST and edge.imported == f"{TENANTS}.area")
    ]


def test_nothing_outside_tenants_imports_it(edges):
    """tenants/ is the organizations' own area; what every area uses of Dagster's (partitions,
    refusals, turns, the run coordinator, the period sensors, `writable`) is lib/'s."""
    found = into_tenants(edges)
    assert not found, (
        "imports of tenants/ from outside it (take the kit from lib/, or move what is everyone's "
        "there):\n" + "\n".join(map(str, found))
    )
    # the walk sees the wiring it allows, and would see any other edge into tenants/
    assert any(e.importer == AREA_LIST and e.imported == f"{TENANTS}.area" for e in edges)
    stray = Edge(f"{PACKAGE}.intake.sensors", f"{TENANTS}.sensors", ROOT, 1)
    inside = Edge(f"{TENANTS}.jobs", f"{TENANTS}.domain.lifecycle", ROOT, 1)
    assert into_tenants([stray, inside]) == [stray]


def test_nothing_imports_up_a_layer(edges):
    found = [
        (edge, why) for edge in edges if (why := upward(edge)) and edge.pair not in PENDING_ISSUE_48
    ]
    report = "\n".join(f"{edge}  ({why})" for edge, why in found)
    print(report)
    assert not found, "upward imports (file:line importer -> imported):\n" + report


def _defines_area(path: Path) -> bool:
    """Whether the module assigns `AREA = Area(...)` at its top level."""
    tree = parsed(path)
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "AREA" for t in node.targets)
        and isinstance(node.value, ast.Call)
        and getattr(node.value.func, "id", None) == "Area"
        for node in tree.body
    )


def test_every_area_has_one_assembly_object_in_the_list(edges):
    """Each area package has its `area.py` with its `AREA`, and `areas.py` lists every such
    module (an area.py the list leaves out would be assembled by nobody)."""
    files = product_files()
    objects = {name for name in files if _is_area_object(name)}
    missing = sorted(area for area in AREAS if f"{PACKAGE}.{area}.area" not in objects)
    assert not missing, f"areas without an assembly object (<area>/area.py): {missing}"
    without = sorted(name for name in objects if not _defines_area(files[name]))
    assert not without, f"area.py without `AREA = Area(...)`: {without}"
    listed = {e.imported for e in edges if e.importer == AREA_LIST}
    unlisted = sorted(objects - listed)
    assert not unlisted, f"assembly objects areas.py does not list: {unlisted}"


def test_both_assemblies_take_the_areas_from_the_one_list(edges):
    """`definitions.py` and the console script import the list of areas and no area: each
    area's definitions, kinds, commands and resources reach them through its `AREA`."""
    for assembly in (ASSEMBLY, CONSOLE_SCRIPT):
        taken = {e.imported for e in edges if e.importer == assembly}
        assert AREA_LIST in taken, f"{assembly} does not build from {AREA_LIST}"
        reached = sorted(
            str(e) for e in edges if e.importer == assembly and top(e.imported) in AREAS
        )
        assert not reached, f"{assembly} imports areas beside the list:\n" + "\n".join(reached)


REGISTER = "register"
REGISTRY = (f"{PACKAGE}.queue.domain.known_kinds", f"{PACKAGE}.queue.domain.kinds")


def registrations(name: str, path: Path, edges: list[Edge]) -> list[str]:
    """Where a module registers a kind of batch job: it takes `register` from the registry, or
    calls `register(...)` / `registry.register(...)`."""
    found = [
        str(e)
        for e in edges
        if e.importer == name and e.imported in REGISTRY and REGISTER in e.names
    ]
    tree = parsed(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called == REGISTER and (
                not isinstance(func, ast.Attribute) or getattr(func.value, "id", "") == "registry"
            ):
                found.append(f"{path.relative_to(PROJECT)}:{node.lineno} {name} calls register")
    return found


def kinds_built(path: Path) -> list[int]:
    """The lines where a module builds a value of kinds (`Kinds(...)`, `Kinds.of(...)`)."""
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Call):
            func = node.func
            if getattr(func, "id", None) == "Kinds" or (
                isinstance(func, ast.Attribute) and getattr(func.value, "id", None) == "Kinds"
            ):
                found.append(node.lineno)
    return found


def test_the_kinds_are_gathered_in_one_place(edges):
    """Nothing registers a kind of batch job (there is no registry to fill): the list of areas
    gathers every area's kinds into one value (`areas.kinds()`, which definitions.py and the
    console script's resources both take), and no other module builds one."""
    files = product_files()
    found = [r for name, path in files.items() for r in registrations(name, path, edges)]
    assert not found, "kinds registered:\n" + "\n".join(sorted(set(found)))
    built = {name: lines for name, path in files.items() if (lines := kinds_built(path))}
    # the value's own module builds the next value (`with_kinds`), areas.py the areas' one
    assert set(built) == {AREA_LIST, f"{PACKAGE}.queue.domain.known_kinds"}, built


def test_core_and_db_are_no_holding_pens(edges):
    """A module of core/ or db/ (or the sales ledger) that one area alone imports moves into that
    area, unless ONE_AREA_ALLOWED says why it stays."""
    pens = holding_pens(edges, set(product_files()))
    found = {module: area for module, area in pens.items() if module not in ONE_AREA_ALLOWED}
    report = "\n".join(f"{module} (imported by {area} alone)" for module, area in found.items())
    assert not found, "modules of one area in a shared layer: move them into it\n" + report
    stale = {m: a for m, a in ONE_AREA_ALLOWED.items() if pens.get(m) != a}
    assert not stale, f"ONE_AREA_ALLOWED names modules one area alone no longer imports: {stale}"


def test_the_pending_holes_are_still_there(edges):
    """PENDING_ISSUE_48 only shrinks: an edge that is gone (or allowed now) leaves the set."""
    refused = {edge.pair for edge in edges if upward(edge)}
    closed = sorted(PENDING_ISSUE_48 - refused)
    assert not closed, f"closed, take them out of PENDING_ISSUE_48: {closed}"


def test_only_the_fence_uses_dagsters_private_api():
    """Dagster's private API (`dagster._*`) is used in `dagster_internals/` alone, in the package
    and in its development tooling: an upgrade of Dagster that changes it breaks one known place,
    whose checklist (docs/dagster-upgrade.md) names the test that fails."""
    files = {**product_files(), **devtools_files()}
    found = [
        f"{path.relative_to(PROJECT)}:{line} {name} -> {used}"
        for name, path in files.items()
        if not in_the_fence(name)
        for line, used in private_dagster_uses(path)
    ]
    assert not found, (
        "Dagster's private API outside the fence (invoice_pipelines/dagster_internals/, one "
        "module per purpose, each in docs/dagster-upgrade.md):\n" + "\n".join(found)
    )
    # the walk sees the fence's own uses (the code server's gRPC server, the instance's classes)
    fenced = {
        name for name, path in files.items() if in_the_fence(name) and private_dagster_uses(path)
    }
    assert {f"{DAGSTER_FENCE}.api_server", f"{DAGSTER_FENCE}.instance"} <= fenced


def test_the_fence_walk_sees_every_way_into_dagsters_internals(tmp_path):
    """An import, a `_` name taken from `dagster`, an attribute of the module under its alias and
    a module's name as a string count; prose, dunders and public names do not."""
    source = tmp_path / "x.py"
    source.write_text(
        '"""Prose may name dagster._core.storage: no use."""\n'
        "import dagster as dg\n"
        "import dagster._grpc.server\n"
        "from dagster._core.events import DagsterEvent\n"
        "from dagster import _check, asset, __version__\n"
        "PRELOAD = ['dagster._grpc.impl', 'dagster/partition', 'dagster_postgres']\n"
        "def f():\n"
        "    return dg._core, dg.asset, dg.__version__\n",
        encoding="utf-8",
    )
    assert private_dagster_uses(source) == [
        (3, "dagster._grpc.server"),
        (4, "dagster._core.events"),
        (5, "dagster._check"),
        (6, "dagster._grpc.impl"),
        (8, "dagster._core"),
    ]
    assert in_the_fence(f"{DAGSTER_FENCE}.api_server") and in_the_fence(DAGSTER_FENCE)
    assert not in_the_fence(f"{PACKAGE}.code_server")
    assert not in_the_fence(f"{PACKAGE}.dagster_internals_copy")
    # the fence takes nothing of ours outside itself: what it serves hands it its own functions
    fence_edge = Edge(
        f"{DAGSTER_FENCE}.api_server", f"{PACKAGE}.resources.workers.stop_deadline", ROOT, 1
    )
    assert upward(fence_edge) == (
        "shared layer dagster_internals imports resources, a layer not below it"
    )


def test_the_rule_itself():
    """The checker's verdicts on edges whose answer is known."""

    def edge(importer: str, imported: str) -> Edge:
        return Edge(f"{PACKAGE}.{importer}", imported, ROOT / "x.py", 1)

    assert upward(edge("billing.defs", f"{PACKAGE}.queue.items")) is None
    # the assemblies take every area from the list, the list takes each area's assembly object
    assert upward(edge("definitions", AREA_LIST)) is None
    assert upward(edge("cli", AREA_LIST)) is None
    assert upward(edge("areas", f"{PACKAGE}.billing.area")) is None
    assert upward(edge("areas", f"{PACKAGE}.queue.area")) is None
    assert upward(edge("billing.area", f"{PACKAGE}.billing.defs")) is None
    assert upward(edge("definitions", f"{PACKAGE}.billing.defs")) == (
        "definitions imports area billing: take it from areas.py"
    )
    assert upward(edge("cli", f"{PACKAGE}.billing.cli")) == (
        "cli imports area billing: take it from areas.py"
    )
    assert upward(edge("areas", f"{PACKAGE}.billing.cli")) == "areas imports area billing"
    assert upward(edge("billing.cli", f"{PACKAGE}.billing.area")) == (
        f"billing imports {PACKAGE}.billing.area, which only areas.py lists"
    )
    assert upward(edge("billing.cli", AREA_LIST)) == (
        "billing reads the list of areas, which only the assemblies do"
    )
    assert upward(edge("cli", "invoice_pipelines_devtools.cli")) is None
    assert upward(edge("intake.cli", "invoice_pipelines_devtools.bench")) == (
        "the product imports dev tooling"
    )
    assert upward(edge("exports.pipeline", f"{PACKAGE}.intake.checks")) == (
        "area exports imports area intake"
    )
    assert upward(edge("queue.defs", f"{PACKAGE}.billing.contract")) == "queue imports area billing"
    assert upward(edge("core.money", f"{PACKAGE}.definitions")) == (
        "shared layer core imports definitions"
    )
    assert upward(edge("documents.cli", f"{PACKAGE}.definitions")) == (
        "area documents imports definitions"
    )
    assert upward(edge("cli", f"{PACKAGE}.definitions")) == "cli imports definitions"
    migration = "db.migrations.versions.0005_invoice_number_key"
    assert upward(edge(migration, f"{PACKAGE}.db.types")) is None
    assert upward(edge(migration, f"{PACKAGE}.core.rules")) == (
        "a migration imports live code: invoice_pipelines.core.rules"
    )
    assert upward(edge(migration, f"{PACKAGE}.intake.breakdown")) is not None
    assert upward(edge(migration, f"{PACKAGE}.db.tables")) is not None

    def taking(imported: str, *names: str) -> Edge:
        return Edge(f"{PACKAGE}.{migration}", imported, ROOT / "x.py", 1, frozenset(names))

    assert upward(taking(f"{PACKAGE}.db.engine", "app_role")) is None
    assert upward(taking(f"{PACKAGE}.db.engine", "app_role", "make_engine")) == (
        "a migration imports live code: invoice_pipelines.db.engine (app_role, make_engine)"
    )
    assert upward(taking(f"{PACKAGE}.db.engine")) is not None
    assert upward(edge("db.tenancy", f"{PACKAGE}.core.money")) is None
    # the kit is below the areas and above the tables: it takes no area's module, tenants' neither
    assert upward(edge("intake.sensors", f"{PACKAGE}.lib.turns")) is None
    assert upward(edge("lib.refusals", f"{PACKAGE}.db.tenancy")) is None
    assert upward(edge("lib.automation", f"{PACKAGE}.tenants.domain.lifecycle")) == (
        "shared layer lib imports tenants, a layer not below it"
    )
    assert upward(edge("core.money", f"{PACKAGE}.db.tables")) == (
        "shared layer core imports db, a layer not below it"
    )
    assert upward(edge("db.commands", f"{PACKAGE}.resources.database.engines")) == (
        "shared layer db imports resources, a layer not below it"
    )
    # a module of core/ or db/ one area alone imports is a holding pen; one that two areas, or
    # another module of a shared layer, import is not
    shared = [
        edge("exports.datev", f"{PACKAGE}.core.alone"),
        edge("exports.datev", f"{PACKAGE}.core.twice"),
        edge("exports.plan", f"{PACKAGE}.core.twice"),
        edge("exports.datev", f"{PACKAGE}.core.two_areas"),
        edge("intake.parse", f"{PACKAGE}.core.two_areas"),
        edge("exports.datev", f"{PACKAGE}.db.block"),
        edge("db.tables", f"{PACKAGE}.db.block"),
        edge("db.migrations.versions.0001_x", f"{PACKAGE}.db.frozen"),
        edge("exports.datev", f"{PACKAGE}.db.frozen"),
        edge("exports.datev", f"{PACKAGE}.resources.anything"),
    ]
    modules = {e.imported for e in shared}
    assert holding_pens(shared, modules) == {
        f"{PACKAGE}.core.alone": "exports",
        f"{PACKAGE}.core.twice": "exports",
        f"{PACKAGE}.db.frozen": "exports",
    }
    a, b, c = (edge(x, f"{PACKAGE}.{y}") for x, y in (("a", "b"), ("b", "a"), ("b", "c")))
    assert [sorted(e.importer for e in g) for g in circles([a, b, c])] == [
        [f"{PACKAGE}.a", f"{PACKAGE}.b"]
    ]
