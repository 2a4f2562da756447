"""The package's import graph: no two modules need each other, and nothing reaches up a layer.

The rule (docs/architecture.md, "The import rule"): an area may import the shared layers below it
(core, db, resources, einvoice, queue, outbox, tenants and the top-level settings, limits,
metadata, cli_args, catalog); nothing imports an area except `definitions.py` and the console
script's dispatch to the area's own `cli.py`; the development tooling (invoice_pipelines_devtools)
is reached only from the console script. Every `import` counts, at module level and inside
functions alike: a function-level import is a dependency that waits for its first call.

A failure lists each offending edge as `file:line importer -> imported`.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import invoice_pipelines

PACKAGE = "invoice_pipelines"
ROOT = Path(invoice_pipelines.__file__).resolve().parent
PROJECT = ROOT.parent

# the areas: one subpackage each, its Dagster objects in defs.py, its commands in cli.py
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
    }
)
# what every area may take, lowest first: a shared module imports only those of a lower rank
SHARED_RANK = {
    "limits": 0,
    "cli_args": 0,
    "cli_commands": 0,
    "catalog": 0,
    "settings": 1,
    "core": 2,
    "einvoice": 3,
    "metadata": 3,
    "db": 4,
    "resources": 5,
    "outbox": 6,
    "tenants": 6,
    "queue": 7,
}
SHARED = frozenset(SHARED_RANK)
# the two places that assemble the areas
ASSEMBLY = f"{PACKAGE}.definitions"
CONSOLE_SCRIPT = f"{PACKAGE}.cli"
DEVTOOLS = ("invoice_pipelines_devtools", f"{PACKAGE}.devtools")


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(PROJECT)}:{self.line} {self.importer} -> {self.imported}"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_files() -> dict[str, Path]:
    """Every module of the package (an in-package devtools folder, while it exists, is not one)."""
    files = {}
    for path in sorted(ROOT.rglob("*.py")):
        name = module_name(path)
        if "migrations" in path.relative_to(ROOT).parts[:2] and path.parent.name == "versions":
            continue  # Alembic revisions are loaded by Alembic, not imported
        if name.startswith(DEVTOOLS):
            continue
        files[name] = path
    return files


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: set[str]) -> list[Edge]:
    """The modules `name` imports, each with its line; a name taken from a package is the package
    unless the name is itself a module (`from pkg import submodule`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    edges: list[Edge] = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = _resolve_relative(name, path.name == "__init__.py", node.level, node.module)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                targets.append(candidate if candidate in modules else base)
        for target in targets:
            if target.startswith(DEVTOOLS) or target == PACKAGE or target.startswith(PACKAGE + "."):
                edges.append(Edge(name, _known(target, modules), path, node.lineno))
    # one edge per imported module and line (`from m import a, b` is one)
    return sorted({e for e in edges if e.imported != name}, key=lambda e: (e.line, e.imported))


def _known(target: str, modules: set[str]) -> str:
    """The module an import lands in: `a.b.c` where only `a.b` is a module (c a name in it)."""
    parts = target.split(".")
    while parts and ".".join(parts) not in modules:
        if ".".join(parts).startswith(DEVTOOLS):
            return target
        parts.pop()
    return ".".join(parts) or target


def import_graph() -> list[Edge]:
    files = product_files()
    modules = set(files)
    edges: list[Edge] = []
    for name, path in files.items():
        edges.extend(imports_of(name, path, modules))
    return edges


def top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == PACKAGE else ""


def upward(edge: Edge) -> str | None:
    """Why the edge breaks the layer rule, or None when it keeps it."""
    if edge.imported.startswith(DEVTOOLS):
        return None if edge.importer == CONSOLE_SCRIPT else "the product imports dev tooling"
    source, target = top(edge.importer), top(edge.imported)
    if source == target:
        return None
    if source in SHARED and target in SHARED:
        if SHARED_RANK[target] < SHARED_RANK[source]:
            return None
        return f"shared layer {source} imports {target}, a layer not below it"
    if target not in AREAS:
        if source in SHARED and target:
            return f"shared layer {source} imports {target}"
        return None
    if edge.importer == ASSEMBLY:
        return None
    if edge.importer == CONSOLE_SCRIPT and edge.imported == f"{PACKAGE}.{target}.cli":
        return None
    if source in AREAS:
        return f"area {source} imports area {target}"
    return f"{source or edge.importer} imports area {target}"


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
    # definitions.py assembles every area's defs
    assembled = {e.imported for e in edges if e.importer == ASSEMBLY}
    assert {f"{PACKAGE}.{area}.defs" for area in AREAS} <= assembled
    # db/cli.py imports its engine inside the command function: such an import counts
    assert any(
        e.importer == f"{PACKAGE}.db.cli" and e.imported == f"{PACKAGE}.db.migrate" for e in edges
    )


def test_no_two_modules_need_each_other(edges):
    found = circles(edges)
    report = "\n\n".join(
        f"circle of {len({e.importer for e in group})} modules:\n" + "\n".join(map(str, group))
        for group in found
    )
    print(report)
    assert not found, "import circles (each edge as file:line importer -> imported):\n" + report


def test_nothing_imports_up_a_layer(edges):
    found = [(edge, why) for edge in edges if (why := upward(edge))]
    report = "\n".join(f"{edge}  ({why})" for edge, why in found)
    print(report)
    assert not found, "upward imports (file:line importer -> imported):\n" + report


def test_the_rule_itself():
    """The checker's verdicts on edges whose answer is known."""

    def edge(importer: str, imported: str) -> Edge:
        return Edge(f"{PACKAGE}.{importer}", imported, ROOT / "x.py", 1)

    assert upward(edge("billing.defs", f"{PACKAGE}.queue.items")) is None
    assert upward(edge("definitions", f"{PACKAGE}.billing.defs")) is None
    assert upward(edge("cli", f"{PACKAGE}.billing.cli")) is None
    assert upward(edge("cli", f"{PACKAGE}.billing.invoicing")) == "cli imports area billing"
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
    assert upward(edge("db.tenancy", f"{PACKAGE}.core.money")) is None
    assert upward(edge("core.money", f"{PACKAGE}.db.tables")) == (
        "shared layer core imports db, a layer not below it"
    )
    assert upward(edge("db.cli", f"{PACKAGE}.resources.database")) == (
        "shared layer db imports resources, a layer not below it"
    )
    a, b, c = (edge(x, f"{PACKAGE}.{y}") for x, y in (("a", "b"), ("b", "a"), ("b", "c")))
    assert [sorted(e.importer for e in g) for g in circles([a, b, c])] == [
        [f"{PACKAGE}.a", f"{PACKAGE}.b"]
    ]
