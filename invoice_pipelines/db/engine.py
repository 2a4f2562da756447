"""Engines for the application database: URL checks, SQLite pragmas, PostgreSQL application role,
and the system engine, the one the work over every organization runs on (on PostgreSQL with a
system login, that login's). Whoever makes a runtime engine makes the system engine beside it and
hands both on (`DatabaseLogin`, `resources/database/engines.py`); nothing finds one from the other."""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from invoice_pipelines.db.rls import system_role
from invoice_pipelines.settings import NOW, PROJECT_ROOT, ConfigError, Reading, env

URL_VAR = "INVOICE_PIPELINES_DB_URL"
SYSTEM_URL_VAR = "INVOICE_PIPELINES_SYSTEM_DB_URL"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")
_ROLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DOCS = "docs/postgresql-and-scale-out.md"

log = logging.getLogger(__name__)

_engines: dict[tuple[str, bool, str, bool], Engine] = {}
_engines_lock = threading.Lock()
_warned_single_login: set[str] = set()


def database_url(url: str | None = None, *, redact: bool = False, var: str = URL_VAR) -> str:
    """The configured URL, normalized: `postgres://` -> `postgresql://`, relative SQLite paths
    resolved against the project root. `var` is the variable errors name (and read when `url` is
    None)."""
    raw = url if url is not None else env(var)
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw[len("postgres://") :]
    try:
        parsed = _parse_url(raw)
    except (ArgumentError, ValueError):
        # the value may hold a password and lands in run logs: name the wrong part, never echo
        # it (nor chain SQLAlchemy's error, which quotes it whole)
        raise ConfigError(f"{var} is not a database URL: {_what_is_wrong(raw)}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigError(
            f"{var} uses unsupported scheme {parsed.drivername!r}; "
            "use sqlite:///path or postgresql+psycopg2://user@host/db"
        )
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        path = Path(parsed.database)
        if not path.is_absolute():
            parsed = parsed.set(database=str(PROJECT_ROOT / path))
    return redacted(parsed) if redact else parsed.render_as_string(hide_password=False)


def _parse_url(raw: str) -> URL:
    """`make_url`, but the user and password end at the LAST `@` before the host.

    SQLAlchemy ends the password at the first `@`: `postgresql://u:S3C@RETpw5@host/db` became the
    password `S3C` and the host `RETpw5@host`, so the error showed half of the password. A host
    never holds an `@`, a password may; so the URL is split once on its last `@`, and the user and
    password are read from what comes before it (percent-encoding still works: it is decoded).
    An `@` inside a query value must be percent-encoded (%40).
    """
    scheme, sep, rest = raw.partition("://")
    if not sep or "@" not in rest or scheme.split("+")[0] == "sqlite":
        return make_url(raw)
    userinfo, _, location = rest.rpartition("@")
    username, has_password, password = userinfo.partition(":")
    parsed = make_url(f"{scheme}://{location}")
    return parsed.set(
        username=unquote(username) or None,
        password=unquote(password) if has_password else None,
    )


def redacted(url: URL) -> str:
    """The URL as errors and the CLI show it: the password, and query values that carry one
    (`?password=`, `sslpassword=`), masked."""
    secret = {
        key: "***"
        for key in url.query
        if any(word in key.lower() for word in ("password", "secret", "token"))
    }
    shown = url.update_query_dict(secret).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")


def _secrets(url: URL) -> list[str]:
    values = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if any(word in key.lower() for word in ("password", "secret", "token")):
            values += [value] if isinstance(value, str) else list(value)
    return [value for value in values if value]


def _what_is_wrong(raw: str) -> str:
    """Which part of an unparseable URL is wrong, without repeating any of it."""
    if "://" not in raw:
        return "it has no scheme (postgresql://user@host/db or sqlite:///path)"
    scheme, _, rest = raw.partition("://")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+._-]*", scheme):
        return "the part before :// is not a scheme such as postgresql or sqlite"
    try:
        _ = urlsplit(raw).port
    except ValueError:
        return "the port after host: is not a number (or a [ of an IPv6 host is not closed)"
    return "it cannot be read as scheme://user:password@host:port/database"


def app_role() -> str | None:
    role = env("INVOICE_PIPELINES_DB_APP_ROLE").strip()
    if not role:
        return None
    if not _ROLE_RE.match(role):
        raise ConfigError(f"INVOICE_PIPELINES_DB_APP_ROLE is not a plain role name: {role!r}")
    return role


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # We issue BEGIN ourselves (see _on_begin) so SQLite's locking is explicit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        # Writers ask for BEGIN IMMEDIATE (execution option sqlite_begin) so two writers queue on
        # the busy timeout instead of failing later with "database is locked" on upgrade.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _configure_postgres_role(engine: Engine, role: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()
        dbapi_connection.commit()


def _create(resolved: str, var: str) -> Engine:
    """`create_engine` with our pool and driver settings; its errors name `var`, URL masked."""
    parsed = _parse_url(resolved)
    kwargs: dict = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
    else:
        kwargs.update(pool_pre_ping=True, pool_size=5, max_overflow=10)
    try:
        return create_engine(resolved, **kwargs)
    except (NoSuchModuleError, ArgumentError, ImportError, ValueError, TypeError) as exc:
        # SQLAlchemy's and the driver's messages may quote the URL; ours shows it masked
        where = redacted(parsed)
        reason = str(exc).replace(resolved, where)
        for secret in _secrets(parsed):
            reason = reason.replace(secret, "***")
        raise ConfigError(f"{var}: cannot use {where}: {reason}") from None


def make_engine(
    url: str | None = None,
    *,
    owner: bool = False,
    check: bool = True,
    system_url: str | None = None,
) -> Engine:
    """A new engine for the application database.

    `owner=True` is for migrations and administration: it stays the login user. Otherwise, on
    PostgreSQL, every connection switches to the application role, so row-level security applies
    even when the login user owns the tables. `system_url` (None: INVOICE_PIPELINES_SYSTEM_DB_URL,
    empty: none) is the system login the work over every organization uses instead of this
    engine's login (`make_system_engine`): checked, and the runtime login's refusals depend on
    whether there is one.
    """
    engine = _create(database_url(url), URL_VAR)
    system = None if owner else _system_url(system_url, engine.url)
    if engine.dialect.name == "sqlite":
        _configure_sqlite(engine)
    elif not owner and (role := app_role()):
        _configure_postgres_role(engine, role)
    if check:
        check_connection(engine)
        if engine.dialect.name == "postgresql" and not owner:
            _refuse_privileged(engine, paired=system is not None)
    return engine


def _system_url(system_url: str | None, runtime: URL) -> str | None:
    """The system login's URL for a runtime engine of `runtime`, checked: PostgreSQL, the same
    database, another login."""
    raw = (system_url if system_url is not None else env(SYSTEM_URL_VAR)).strip()
    if not raw:
        return None
    resolved = database_url(raw, var=SYSTEM_URL_VAR)
    system = _parse_url(resolved)
    if runtime.get_backend_name() != "postgresql":
        raise ConfigError(f"{SYSTEM_URL_VAR} is for PostgreSQL; {URL_VAR} names an SQLite file")
    if system.get_backend_name() != "postgresql" or _where(system) != _where(runtime):
        raise ConfigError(
            f"{SYSTEM_URL_VAR} ({redacted(system)}) and {URL_VAR} ({redacted(runtime)}) must "
            "name the same PostgreSQL database"
        )
    if system.username == runtime.username:
        raise ConfigError(
            f"{SYSTEM_URL_VAR} logs in as {system.username!r}, as {URL_VAR} does: the work over "
            f"every organization needs a login of its own ({DOCS})"
        )
    return resolved


def _where(url: URL) -> tuple:
    return (url.host, url.port or 5432, url.database)


def make_system_engine(
    url: str | None = None, *, system_url: str | None = None, check: bool = True
) -> Engine:
    """A new engine for the work over every organization (`db/tenancy.system_transaction`) beside
    the runtime engine of `url`, for the same logins as `make_engine(url, system_url=...)`.

    On PostgreSQL with a system login (`system_url`, None: INVOICE_PIPELINES_SYSTEM_DB_URL) that
    login's engine, its connections the system role. Without one (SQLite, PostgreSQL in
    single-login mode) an engine of the runtime login, whose system transactions switch to the
    system role themselves, as before migration 0035.
    """
    resolved = database_url(url)
    system = _system_url(system_url, _parse_url(resolved))
    if system is None:
        return make_engine(resolved, check=check, system_url="")
    return _make_system_engine(system, check=check)


def _make_system_engine(url: str, *, check: bool = True) -> Engine:
    """Every connection of the system login switches to the system role (which the policies let
    see every organization when a transaction says so); the login must be bound by row-level
    security like the runtime login."""
    engine = _create(url, SYSTEM_URL_VAR)
    _configure_postgres_role(engine, system_role(app_role()))
    if not check:
        return engine
    try:
        check_connection(engine, var=SYSTEM_URL_VAR)
        facts = _login_facts(engine)
        _refuse_bypass(
            facts,
            f"the work over every organization logs in as {facts['login']!r} ({SYSTEM_URL_VAR})",
            "the system login",
        )
    except BaseException:
        engine.dispose()
        raise
    return engine


ALLOW_OWNER_VAR = "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME"


def owner_runtime_allowed() -> bool:
    value = env(ALLOW_OWNER_VAR).strip().lower()
    if value not in ("true", "false", ""):
        raise ConfigError(f"{ALLOW_OWNER_VAR} is true or false, not {value!r}")
    return value == "true"


def _login_facts(engine: Engine) -> dict:
    """Who a connection of `engine` runs as and logged in as, and what they may do."""
    with engine.connect() as conn:
        facts = (
            conn.execute(
                text(
                    "SELECT current_user AS role, r.rolsuper, r.rolbypassrls, "
                    "session_user AS login, s.rolsuper AS login_super, "
                    "s.rolbypassrls AS login_bypass, "
                    "(SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
                    " AND tablename = 'organizations') AS owner, "
                    "(SELECT pg_has_role(session_user, y.oid, 'MEMBER') FROM pg_roles y "
                    " WHERE y.rolname = :system) AS system_member "
                    "FROM pg_roles r, pg_roles s "
                    "WHERE r.rolname = current_user AND s.rolname = session_user"
                ),
                {"system": system_role(app_role())},
            )
            .one()
            ._asdict()
        )
        facts["owner_member"] = facts["owner"] is not None and bool(
            conn.execute(
                text("SELECT pg_has_role(session_user, :owner, 'MEMBER')"),
                {"owner": facts["owner"]},
            ).scalar()
        )
    # the login is there only by INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME (a test database)
    facts["allowed_owner"] = owner_runtime_allowed() and bool(
        facts["login_super"] or facts["login_bypass"] or facts["owner_member"]
    )
    return facts


def _refuse_privileged(engine: Engine, *, paired: bool) -> None:
    """Row-level security does not bind superusers or BYPASSRLS roles, and the tables' owner can
    switch it off: refuse to run as one. And the runtime login may switch to the system role only
    when no system login is configured (single-login mode, with a warning).

    Two checks of the roles. The role the statements run as (`current_user`, after SET ROLE) must
    be bound by the policies. And the role that logged in (`session_user`) must not be able to get
    out of them: any SQL in the session can `RESET ROLE` back to it, so a login as a superuser or
    as the owner (or a member of the owner) could disable row-level security or drop tables.
    Migrations log in as the owner (`make_engine(owner=True)`, never checked here); the pipelines,
    the webserver and the daemon log in as a runtime role that owns nothing. INVOICE_PIPELINES_
    ALLOW_OWNER_RUNTIME=true lets the second check pass (test suites, scratch benchmarks).
    """
    facts = _login_facts(engine)
    _refuse_bypass(facts, f"the pipelines log in as {facts['login']!r}", "the runtime role")
    _check_system_scope(facts, paired=paired)


def _refuse_bypass(facts: dict, who: str, instead: str) -> None:
    if facts["rolsuper"] or facts["rolbypassrls"]:
        raise ConfigError(
            f"the application would run as {facts['role']!r}, which bypasses row-level security; "
            "set INVOICE_PIPELINES_DB_APP_ROLE (default invoice_app) or connect as a non-superuser role"
        )
    if facts["allowed_owner"] or not (
        facts["login_super"] or facts["login_bypass"] or facts["owner_member"]
    ):
        return
    what = (
        "a superuser"
        if facts["login_super"]
        else "a role that bypasses row-level security"
        if facts["login_bypass"]
        else f"the owner of the tables ({facts['owner']!r})"
        if facts["login"] == facts["owner"]
        else f"a member of the tables' owner {facts['owner']!r}"
    )
    raise ConfigError(
        f"{who}, {what}, and any statement could RESET ROLE to it and get around row-level "
        f"security; log in as {instead} ({DOCS}), or set {ALLOW_OWNER_VAR}=true for a test "
        "database"
    )


def _check_system_scope(facts: dict, *, paired: bool) -> None:
    """With a system login, the runtime login must not be able to switch to the system role (SQL
    in a tenant run could then read and write every organization); without one, it must, since
    its own system transactions switch to it (single-login mode, warned about)."""
    login, member, system = facts["login"], facts["system_member"], system_role(app_role())
    if member is None or facts["allowed_owner"]:  # None: no system role yet (not yet migrated)
        return
    if paired and member:
        raise ConfigError(
            f"the pipelines log in as {login!r}, which may switch to {system!r}, the role of the "
            "work over every organization, so SQL in a tenant run could read and write every "
            f"organization: REVOKE {system} FROM {login} (that work logs in through "
            f"{SYSTEM_URL_VAR}; {DOCS})"
        )
    if not paired and not member:
        raise ConfigError(
            f"the pipelines log in as {login!r}, which may not switch to {system!r}, the role of "
            f"the work over every organization (sensors, schedules), and {SYSTEM_URL_VAR} is not "
            f"set: set it to the URL of the system login, a login of its own for that work ({DOCS})"
        )
    if not paired and login not in _warned_single_login:
        _warned_single_login.add(login)
        log.warning(
            "single-login mode: %s is not set, so the work over every organization runs as the "
            "runtime login %r, which may switch to %r, and SQL in a tenant run could do the same "
            "and read and write every organization; give that work a login of its own (%s)",
            SYSTEM_URL_VAR,
            login,
            system,
            DOCS,
        )


@dataclass(frozen=True)
class DatabaseLogin:
    """The application database's logins: INVOICE_PIPELINES_DB_URL and, on PostgreSQL, the
    system login's INVOICE_PIPELINES_SYSTEM_DB_URL (empty: that of the environment, if any)."""

    url: str = field(
        default="",
        metadata={
            "description": "SQLAlchemy URL of the application database (INVOICE_PIPELINES_DB_URL). "
            "Empty: the embedded default, SQLite under .data/."
        },
    )
    system_url: str = field(
        default="",
        metadata={
            "description": "PostgreSQL only: SQLAlchemy URL of the system login, the login of its "
            "own for the work over every organization (INVOICE_PIPELINES_SYSTEM_DB_URL). Empty: "
            "that of the environment; none there: single-login mode "
            "(docs/postgresql-and-scale-out.md)."
        },
    )

    def engine(self) -> Engine:
        """The engine a command uses: the one the `database` resource (`resources/database/engines.py`)
        gives the runs for the same logins (same URL checks, on PostgreSQL the same
        row-level-security role, system login and refusals), built here without Dagster so that
        a command that only reads or writes the database starts at the speed of its query. A
        command runs once: the engine ends with its process."""
        return make_engine(self.url or None, system_url=self.system_url or None)

    def system_engine(self) -> Engine:
        """The engine a command's work over every organization runs on (`system_transaction`):
        the one the `system_database` resource gives the runs, the system login's where one is
        configured (`make_system_engine`)."""
        return make_system_engine(self.url or None, system_url=self.system_url or None)


def database_login(read: Reading = NOW) -> DatabaseLogin:
    """The one builder of the `database` and `system_database` resources (resources/area.py): a
    command opens its `engine()` and `system_engine()`; a run's resources wrap it
    (`resources.database.engines.Database.of`, `SystemDatabase.of`, the URLs EnvVars where set, so the UI
    shows where they come from and never a password)."""
    return DatabaseLogin(url=read.secret(URL_VAR), system_url=read.secret(SYSTEM_URL_VAR))


def shared_engine(url: str | None = None, *, owner: bool = False, system: bool = False) -> Engine:
    """One engine per (URL, owner, system URL, kind) per process, the run coordinator's: the
    runtime engine, or with `system=True` the system engine beside it (`make_system_engine`)."""
    key = (database_url(url), owner, env(SYSTEM_URL_VAR).strip(), system)
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            if system:
                engine = make_system_engine(key[0], system_url=key[2])
            else:
                engine = make_engine(key[0], owner=owner, system_url=key[2])
            _engines[key] = engine
        return engine


def check_connection(engine: Engine, *, var: str = URL_VAR) -> None:
    """Fail with one clear line when the database cannot be reached (or the login may not switch
    to the role its connections switch to)."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        where = redacted(engine.url)
        for secret in _secrets(engine.url):
            reason = reason.replace(secret, "***")
        if "role" in reason and "does not exist" in reason:
            reason += " (run `invoice-pipelines migrate` first: it creates the application role)"
        if denied := re.search(r'permission denied to set role "([^"]+)"', reason):
            reason += f" (GRANT {denied.group(1)} TO {engine.url.username}; {DOCS})"
        # not chained: the driver's error may carry the connection string
        raise ConfigError(f"cannot connect to {where} ({var}): {reason}") from None
