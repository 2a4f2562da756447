"""The `database` and `system_database` resources: the application database's engines for assets,
jobs, sensors and checks, the runtime engine of tenant work (`tenant_transaction`) and the system
engine of the work over every organization (`system_transaction`). Dagster shows and configures
their settings and hands a run, sensor tick or check the plain SQLAlchemy `Engine` each makes, the
objects a command gets too (`resources/area.py`: all from the one builder
`db.engine.database_login`, a command's engines its `engine()` and `system_engine()`); an asset,
op, sensor, schedule or check takes them as `ResourceParam[Engine]` and hands them down."""

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from sqlalchemy import Engine

from invoice_pipelines.db.engine import make_engine, make_system_engine
from invoice_pipelines.resources.plain_settings import OfPlain


class Database(OfPlain, ConfigurableResource):
    """Application database: SQLite or PostgreSQL (row-level security binds every connection).

    The engine is created when a run, sensor tick or check starts using the resource and disposed
    when it ends, so no connection outlives the step that opened it. On PostgreSQL, whether a
    system login is configured (`system_url`) decides which logins it accepts; the work over
    every organization runs on the `system_database` resource's engine. Dagster tears down this object, not the engine it handed over, so the
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


class SystemDatabase(Database):
    """The engine of the work over every organization (`system_transaction`), for the same logins
    as the `database` resource: on PostgreSQL with a system login that login's, otherwise one of
    the runtime login (`db/engine.make_system_engine`). Made and disposed like the runtime one."""

    def _make(self) -> Engine:
        return make_system_engine(self.url or None, system_url=self.system_url or None)
