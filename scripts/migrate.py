"""`make migrate`: the application database's schema, migrated as the tables' owner.

SQLite (the embedded demo, the default): `invoice-pipelines migrate`, as it always was.

PostgreSQL, three logins (docs/postgresql-and-scale-out.md): INVOICE_PIPELINES_DB_URL is the
runtime login, which `make run`'s code server, webserver, daemon, runs and commands use for the
work of one organization; INVOICE_PIPELINES_SYSTEM_DB_URL the system login, which the same
processes use for the work over every organization (sensors, schedules, cleanup); and
OWNER_DB_URL the tables' owner's, which only this script logs in as. It migrates as the owner,
grants the runtime login the application role (INVOICE_PIPELINES_DB_APP_ROLE, default invoice_app)
and the system login the system role (invoice_app_system) when they lack them, and checks that
both are logins the pipelines start with (own nothing, no BYPASSRLS, not members of the owner,
the runtime login not a member of the system role): a refusal now is one sentence here instead of
a code server that will not load. Without OWNER_DB_URL it migrates with INVOICE_PIPELINES_DB_URL
only when INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME=true (a throwaway database run as its owner).
Bad settings end with one sentence and exit 2.
"""

from __future__ import annotations

import os
import sys

OWNER_VAR = "OWNER_DB_URL"


def main() -> int:
    from invoice_pipelines.db.engine import (
        SYSTEM_URL_VAR,
        URL_VAR,
        _parse_url,
        app_role,
        database_url,
        make_engine,
        make_system_engine,
        owner_runtime_allowed,
        redacted,
    )
    from invoice_pipelines.db.migrate import upgrade
    from invoice_pipelines.settings import ConfigError

    try:
        runtime_url = database_url()
        runtime = _parse_url(runtime_url)
        owner_raw = os.environ.get(OWNER_VAR, "").strip()
        if runtime.get_backend_name() != "postgresql":
            if owner_raw:
                return _refuse(f"{OWNER_VAR} is for PostgreSQL; {URL_VAR} names an SQLite file")
            return _migrate(make_engine(owner=True), upgrade, redacted(runtime))
        if not owner_raw:
            if not owner_runtime_allowed():
                return _refuse(
                    f"{URL_VAR} names PostgreSQL, so migrations need the tables' owner: set "
                    f"{OWNER_VAR} to the owner's URL and {URL_VAR} to the runtime role's "
                    "(docs/postgresql-and-scale-out.md), or INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME"
                    "=true for a throwaway database run as its owner"
                )
            return _migrate(make_engine(owner=True), upgrade, redacted(runtime))
        owner = _parse_url(database_url(owner_raw))
        if owner.get_backend_name() != "postgresql" or (owner.host, owner.port, owner.database) != (
            runtime.host,
            runtime.port,
            runtime.database,
        ):
            return _refuse(
                f"{OWNER_VAR} ({redacted(owner)}) and {URL_VAR} ({redacted(runtime)}) must name "
                "the same PostgreSQL database"
            )
        system_raw = os.environ.get(SYSTEM_URL_VAR, "").strip()
        if not system_raw:
            return _refuse(
                f"the work over every organization (sensors, schedules) needs a login of its "
                f"own: set {SYSTEM_URL_VAR} to the system login's URL "
                "(docs/postgresql-and-scale-out.md)"
            )
        system = _parse_url(database_url(system_raw, var=SYSTEM_URL_VAR))
        owner_engine = make_engine(owner.render_as_string(hide_password=False), owner=True)
        status = _migrate(owner_engine, upgrade, redacted(owner))
        login, role = runtime.username, app_role()
        if role and login and login != owner.username:
            from invoice_pipelines.db.rls import system_role

            # the application role for the runtime login's tenant work, the system role for the
            # system login's work over every tenant (and only for it)
            _grant(owner_engine, role, login)
            if system.username and system.username not in (login, owner.username):
                _grant(owner_engine, system_role(role), system.username)
        owner_engine.dispose()
        # refuses an owner, superuser or BYPASSRLS login, a runtime login that may switch to the
        # system role, and a system login that may not
        make_engine(runtime_url, system_url=system_raw).dispose()
        make_system_engine(runtime_url, system_url=system_raw).dispose()
        print(f"the pipelines log in as {login!r} ({URL_VAR})")
        print(f"the work over every organization logs in as {system.username!r} ({SYSTEM_URL_VAR})")
        return status
    except ConfigError as exc:
        return _refuse(str(exc))


def _migrate(engine, upgrade, shown: str) -> int:
    revision = upgrade(engine)
    print(f"database {shown} at revision {revision}")
    return 0


def _grant(engine, role: str, login: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from invoice_pipelines.settings import ConfigError

    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": login})
        if exists.first() is None:
            raise ConfigError(
                f"there is no role {login!r} to log in as: create it once as "
                "docs/postgresql-and-scale-out.md shows (CREATE ROLE ... LOGIN NOSUPERUSER "
                "NOBYPASSRLS ...)"
            )
        member = conn.execute(
            text("SELECT pg_has_role(:login, :role, 'MEMBER')"), {"login": login, "role": role}
        ).scalar()
        if member:
            return
        quoted = conn.execute(
            text("SELECT quote_ident(:r), quote_ident(:l)"), {"r": role, "l": login}
        ).one()
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"GRANT {quoted[0]} TO {quoted[1]}")
        except DBAPIError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
            raise ConfigError(
                f"the owner cannot grant {role!r} to {login!r} ({reason}): grant it once as a "
                f"superuser, GRANT {role} TO {login}"
            ) from None
    print(f"granted {role!r} to {login!r}")


def _refuse(sentence: str) -> int:
    print(f"make migrate: {sentence}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
