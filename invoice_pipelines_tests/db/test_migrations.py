"""Migrations: an empty database goes to head and back on both engines, and head matches tables.py."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import (
    VERSION_TABLE,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from invoice_pipelines.db.tables import metadata


def _fresh_urls(tmp_path, pg_scratch_factory):
    return {"sqlite": f"sqlite:///{tmp_path / 'fresh.sqlite3'}", "postgresql": pg_scratch_factory()}


def test_upgrade_downgrade_upgrade_on_both_engines(tmp_path, pg_scratch_factory):
    for kind, url in _fresh_urls(tmp_path, pg_scratch_factory).items():
        engine = make_engine(url, owner=True)
        assert current_revision(engine) is None, kind
        assert upgrade(engine) == head_revision()
        tables = set(inspect(engine).get_table_names())
        assert set(metadata.tables) <= tables, kind
        # already at head: a second upgrade changes nothing
        assert upgrade(engine) == head_revision()

        assert downgrade(engine, "base") is None
        left = set(inspect(engine).get_table_names()) - {VERSION_TABLE}
        assert left == set(), f"{kind}: tables left after downgrade: {left}"

        assert upgrade(engine) == head_revision()
        engine.dispose()


def test_head_schema_matches_table_definitions(db):
    with db.owner_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        diffs = [d for d in compare_metadata(context, metadata) if VERSION_TABLE not in repr(d)]
    assert diffs == []


def test_older_database_is_upgraded(tmp_path, pg_scratch_factory):
    """A database left at the first revision (no row-level security yet) upgrades to head."""
    for url in _fresh_urls(tmp_path, pg_scratch_factory).values():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0001") == "0001"
        assert upgrade(engine) == head_revision()
        engine.dispose()
