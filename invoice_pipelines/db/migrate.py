"""Upgrade and downgrade the application database with Alembic, from code or the CLI.

Alembic is imported by the functions that use it: a module that only needs `VERSION_TABLE` or
`MIGRATIONS_DIR`, and every command that only reads or writes the database, starts without it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "invoice_pipelines_alembic_version"


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _with_connection(engine: Engine, fn) -> None:
    config = alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Alembic changes an SQLite table by rebuilding it: create a copy, drop the original,
            # rename. With foreign keys on, dropping a table that other rows reference fails or
            # cascades into them. The pragma only takes effect outside a transaction.
            conn.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        try:
            config.attributes["connection"] = conn
            fn(config)
            if sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(
                        f"migration left rows without their parent rows: {broken[:5]}"
                    )
            conn.commit()
        finally:
            if sqlite:
                if conn.in_transaction():
                    conn.rollback()
                conn.connection.driver_connection.execute("PRAGMA foreign_keys=ON")


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the database to `revision` (default head). Safe to call on an up-to-date database.

    Runs as the connecting (owner) user; pass an engine made with `make_engine(owner=True)`.
    """
    from alembic import command

    _with_connection(engine, lambda cfg: command.upgrade(cfg, revision))
    return current_revision(engine)


def downgrade(engine: Engine, revision: str) -> str | None:
    from alembic import command

    _with_connection(engine, lambda cfg: command.downgrade(cfg, revision))
    return current_revision(engine)


def ensure_migrated(engine: Engine) -> None:
    """Upgrade only when behind (cheap check first): used by benchmarks and the demo."""
    if current_revision(engine) != head_revision():
        upgrade(engine)
