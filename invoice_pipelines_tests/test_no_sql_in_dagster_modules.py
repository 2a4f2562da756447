"""A Dagster module says what Dagster runs and when; what the database is asked is the area's
domain (docs/architecture.md, "Areas"): no area's top-level assets.py, checks.py, jobs.py,
sensors.py, schedules.py or defs.py (nor the queue's dagster_jobs.py) writes SQL text, builds a
statement with SQLAlchemy (select, insert, update, delete, text, func, ...) or executes one. Each
asks a function of its area's domain whose name says the question. Read from the source, so a
statement written into an asset fails here with its place named."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "invoice_pipelines"
DAGSTER_MODULES = frozenset(
    {
        "assets.py",
        "checks.py",
        "jobs.py",
        "sensors.py",
        "schedules.py",
        "defs.py",
        "dagster_jobs.py",
    }
)
# SQL as it is written in this code base: its keywords in capitals
SQL_TEXT = re.compile(
    r"\bSELECT\b[\s\S]+\bFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
)
# what runs a statement
EXECUTES = frozenset({"execute", "exec_driver_sql", "executemany", "scalars"})
# what SQLAlchemy gives that is no statement: the engine and connection a module hands down
NO_STATEMENT = frozenset({"Engine", "Connection", "create_engine"})


def dagster_modules() -> dict[str, Path]:
    return {
        path.relative_to(PACKAGE).as_posix(): path
        for path in sorted(PACKAGE.glob("*/*.py"))
        if path.name in DAGSTER_MODULES
    }


def sql_in(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, what) of each SQL text, SQLAlchemy statement or execution in a module."""
    statement_names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sqlalchemy"
        for alias in node.names
        if alias.name not in NO_STATEMENT
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_TEXT.search(node.value):
                found.append((node.lineno, "SQL text"))
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in statement_names:
                found.append((node.lineno, f"{func.id}()"))
            elif isinstance(func, ast.Attribute) and func.attr in EXECUTES:
                found.append((node.lineno, f".{func.attr}()"))
            elif (
                isinstance(func, ast.Attribute)
                and isinstance(func.value, ast.Name)
                and func.value.id in statement_names
            ):
                found.append((node.lineno, f"{func.value.id}.{func.attr}()"))
    return sorted(found)


def test_no_dagster_module_runs_sql():
    found = [
        f"invoice_pipelines/{module}:{line}: {what}"
        for module, path in dagster_modules().items()
        for line, what in sql_in(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, (
        "a Dagster module asks the database itself; move the statement into a function of the "
        "area's domain and call that:\n" + "\n".join(found)
    )


def test_the_dagster_modules_are_found():
    modules = dagster_modules()
    assert {"billing/checks.py", "intake/assets.py", "queue/dagster_jobs.py"} <= set(modules)
    assert not any("/domain/" in module for module in modules)


def test_the_check_sees_sql_in_every_form():
    tree = ast.parse(
        "from sqlalchemy import Engine, func, select, text\n"
        "def asset(engine: Engine):\n"
        "    with engine.connect() as conn:\n"
        "        conn.execute(select(func.count()))\n"
        "        conn.exec_driver_sql('DELETE FROM uploads WHERE id = 1')\n"
        "    return text('x')\n"
        "description = 'select the documents from the organization'\n"
    )
    assert sql_in(tree) == [
        (4, ".execute()"),
        (4, "func.count()"),
        (4, "select()"),
        (5, ".exec_driver_sql()"),
        (5, "SQL text"),
        (6, "text()"),
    ]
