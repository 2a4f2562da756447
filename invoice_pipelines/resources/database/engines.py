"""The `database` and `system_database` resources: the application database's engines for assets,
jobs, sensors and checks, the runtime engine of tenant work (`tenant_transaction`) and the system
engine of the work over every organization (`system_transaction`). Their settings are declared
once, on the plain `db.engine.DatabaseLogin`; Dagster shows and configures them here and hands a
run, sensor tick or check the SQLAlchemy `Engine` each makes of that login (`engine()`,
`system_engine()`: the engines a command opens too, `resources/area.py`); an asset, op, sensor,
schedule or check takes them as `ResourceParam[Engine]` and hands them down."""

from sqlalchemy import Engine

from invoice_pipelines.db.engine import DatabaseLogin
from invoice_pipelines.resources.plain_settings import dagster_resource

Database = dagster_resource(
    DatabaseLogin,
    "Database",
    doc="""Application database: SQLite or PostgreSQL (row-level security binds every connection).

    The engine is created when a run, sensor tick or check starts using the resource and disposed
    when it ends, so no connection outlives the step that opened it. On PostgreSQL, whether a
    system login is configured (`system_url`) decides which logins it accepts; the work over
    every organization runs on the `system_database` resource's engine.
    """,
    made_by="login",
    gives=DatabaseLogin.engine,
    close=Engine.dispose,
)

SystemDatabase = dagster_resource(
    DatabaseLogin,
    "SystemDatabase",
    doc="""The engine of the work over every organization (`system_transaction`), for the same
    logins as the `database` resource: on PostgreSQL with a system login that login's, otherwise
    one of the runtime login (`db/engine.make_system_engine`). Made and disposed like the runtime
    one.""",
    made_by="login",
    gives=DatabaseLogin.system_engine,
    close=Engine.dispose,
)
