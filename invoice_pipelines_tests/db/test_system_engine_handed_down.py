"""The system engine is a parameter, like the runtime one (issue 74): what makes the runtime engine
makes the system engine beside it (`DatabaseLogin`, the `database` and `system_database`
resources) and the entry points hand both down. No module keeps a table from a runtime engine to
its system engine, and no function turns the one into the other: read from the source, so a new
hidden pairing fails here with its place named. (That the engine handed down is the system
login's where one is configured: test_system_scope.py.)"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGES = [
    Path(__file__).resolve().parents[2] / name
    for name in ("invoice_pipelines", "invoice_pipelines_devtools")
]


def _modules():
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def _mentions_engine(annotation: ast.expr | None) -> bool:
    return annotation is not None and "Engine" in ast.unparse(annotation)


def test_no_module_keeps_engines_paired() -> None:
    found = [
        f"{path.name}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.Name, ast.Attribute))
        and (node.id if isinstance(node, ast.Name) else node.attr)
        in ("WeakKeyDictionary", "_system_logins")
    ]
    assert found == []


def test_no_function_finds_an_engine_from_an_engine() -> None:
    """A function that takes an engine and gives an engine is the lookup's shape: the system
    engine is made from the logins (`make_system_engine(url, system_url=...)`), never from the
    runtime engine."""
    found = [
        f"{path.relative_to(path.parents[1])}:{node.lineno} {node.name}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and _mentions_engine(node.returns)
        and any(
            _mentions_engine(arg.annotation)
            for arg in node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        )
    ]
    assert found == []
