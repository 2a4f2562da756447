"""No product function is longer than 150 lines: one that is does several things, and each of
them deserves a name (issue 39). A function's length counts from its first decorator to its last
line. Alembic revisions are left out: a revision is a script of DDL that ran once and is never
edited, not code that changes."""

from __future__ import annotations

import ast
from pathlib import Path

import invoice_pipelines

ROOT = Path(invoice_pipelines.__file__).resolve().parent
LIMIT = 150


def long_functions(limit: int = LIMIT) -> list[str]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if parts[0] == "devtools" or parts[:3] == ("db", "migrations", "versions"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > limit:
                    where = path.relative_to(ROOT.parent)
                    found.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_no_product_function_is_longer_than_150_lines():
    found = long_functions()
    assert not found, "functions over 150 lines:\n" + "\n".join(found)


def test_the_count_sees_long_functions():
    # the walk finds functions at all: with a low enough limit, the known long ones show
    assert any("definitions.py" in f and "build_definitions" in f for f in long_functions(20))
