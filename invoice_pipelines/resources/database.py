"""The `database` resource: the application database engine for assets, jobs, sensors and checks.
Dagster shows and configures its settings and hands a run, sensor tick or check the plain
SQLAlchemy `Engine` it makes, the object a command gets too (`resources/area.py`: both from
the one builder `db.engine.database_login`, a command's engine its `engine()`); an asset, op, sensor, schedule or check takes it as
`ResourceParam[Engine]`."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.resources.plain_settings import OfPlain


class Database(OfPlain, ConfigurableResource):
    """Application database: SQLite or PostgreSQL (row-level security binds every connection).

    The engine is created when a run, sensor tick or check starts using the resource and disposed
    when it ends, so no connection outlives the step that opened it. On PostgreSQL it is paired
    with the system login's engine (`system_url`), which `system_transaction` uses and which is
    disposed with it. Dagster tears down this object, not the engine it handed over, so the
    resource keeps that engine and disposes of it itself.
    """

    url: str = Field(
        default="",
        description="SQLAlchemy URL of the application database (INVOICE_PIPELINES_DB_URL). "
        "Empty: the embedded default, SQLite under .data/.",
    )
    system_url: str = Field(
        default="",
        description="PostgreSQL only: SQLAlchemy URL of the system login, the login of its own "
        "for the work over every organization (INVOICE_PIPELINES_SYSTEM_DB_URL). Empty: that of "
        "the environment; none there: single-login mode (docs/postgresql-and-scale-out.md).",
    )
    _engine: Engine | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._engine = self._make()

    def _make(self) -> Engine:
        return make_engine(self.url or None, system_url=self.system_url or None)

    def create_resource(self, context: InitResourceContext) -> Engine:  # type: ignore[override]
        """The application engine (PostgreSQL: bound by row-level security) the setup made: the
        one the teardown disposes of."""
        if self._engine is None:
            self._engine = self._make()
        return self._engine

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
