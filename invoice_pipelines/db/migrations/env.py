"""Alembic environment: runs on the connection `db.migrate` hands over, or on INVOICE_PIPELINES_DB_URL."""

from __future__ import annotations

from alembic import context

from invoice_pipelines.db.migrate import VERSION_TABLE
from invoice_pipelines.db.tables import metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # our own version table: Dagster's storage keeps its own `alembic_version`, possibly in
        # the same database
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from invoice_pipelines.db.engine import make_engine

    engine = make_engine(owner=True)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()
