"""What the migrations may import of ours never changes meaning (docs/architecture.md, "The import
rule"; the import-graph test's FROZEN_FOR_MIGRATIONS): db/types.py's column types compile to the
DDL they had when the revisions using them were written, and every tenant policy a fresh `migrate`
leaves is the one db/rls.py's `protect_tables` writes today, so a change of that expression
without a revision rewriting every policy fails here."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.types import TypeEngine

from invoice_pipelines.db import types
from invoice_pipelines.db.engine import app_role, make_engine
from invoice_pipelines.db.migrate import upgrade
from invoice_pipelines.db.rls import POLICY, policy_tables, protect_tables

VERSIONS = Path(types.__file__).parent / "migrations" / "versions"
# each type: its DDL on PostgreSQL and on SQLite, as of the first revision (unchanged since)
DDL = {
    "Id": ("BIGINT", "INTEGER"),
    "Json": ("JSONB", "JSON"),
    "Money": ("NUMERIC(18, 2)", "NUMERIC(18, 2)"),
    "Quantity": ("NUMERIC(18, 4)", "NUMERIC(18, 4)"),
    "Rate": ("NUMERIC(5, 2)", "NUMERIC(5, 2)"),
    "UtcDateTime": ("TIMESTAMP WITH TIME ZONE", "DATETIME"),
}


def _type(name: str) -> TypeEngine:
    value = getattr(types, name)
    return value() if inspect.isclass(value) or inspect.isfunction(value) else value


def _types_the_migrations_use() -> set[str]:
    used = set()
    for path in VERSIONS.glob("0*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == types.__name__:
                used |= {alias.name for alias in node.names}
            is_attribute = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute)
            if is_attribute and ast.unparse(node.value) == types.__name__:
                used.add(node.attr)
    return used


def test_the_column_types_compile_as_when_the_migrations_were_written():
    assert _types_the_migrations_use() <= set(DDL)
    compiled = {
        name: (
            _type(name).compile(dialect=postgresql.dialect()),
            _type(name).compile(dialect=sqlite.dialect()),
        )
        for name in DDL
    }
    assert compiled == DDL


def test_every_tenant_policy_is_the_one_protect_tables_writes(pg_scratch_factory):
    engine = make_engine(pg_scratch_factory(), owner=True)
    upgrade(engine)
    with engine.connect() as conn, conn.begin() as transaction:
        tables = policy_tables(conn)
        conn.exec_driver_sql("CREATE TABLE probe_by_org (organization_id bigint)")
        conn.exec_driver_sql("CREATE TABLE probe_by_id (id bigint)")
        protect_tables(conn, app_role(), ["probe_by_org"])
        protect_tables(conn, app_role(), ["probe_by_id"], key_column="id")
        expressions = dict(
            conn.execute(
                text(
                    "SELECT tablename, qual FROM pg_policies "
                    "WHERE schemaname = current_schema() AND policyname = :policy"
                ),
                {"policy": POLICY},
            ).all()
        )
        transaction.rollback()
    engine.dispose()
    today = {
        "organization_id": expressions.pop("probe_by_org").replace("probe_by_org", "{table}"),
        "id": expressions.pop("probe_by_id").replace("probe_by_id", "{table}"),
    }
    assert len(tables) > 30
    different = {
        table: qual
        for table, qual in expressions.items()
        if qual.replace(table, "{table}") != today[tables[table]]
    }
    assert different == {}
