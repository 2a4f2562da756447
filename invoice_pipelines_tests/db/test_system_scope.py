"""The system scope (every organization) belongs to the system role, and the system role to a
login of its own: not to whoever sets the flag, nor to the runtime login.

`invoice_pipelines.system` is an ordinary custom setting: any role can `set_config` it. Before
migration 0027 the tenant policies honoured it for everyone, so a statement of the application
role could read every organization. Now they honour it only for the system role and the tables'
owner.

From 0027 to 0034 the runtime login was a member of the system role, since `system_transaction`
switched to it on the runtime engine: SQL that ran in a tenant run's session could `SET ROLE
invoice_app_system` and read and write every organization. Since 0035 (issue 54) the work over
every organization connects as the system login (INVOICE_PIPELINES_SYSTEM_DB_URL), whose engine
is made beside each runtime engine (`make_system_engine`) and handed to `system_transaction`, and
the runtime login may not switch to the system role.

Each test makes logins of its own on the test server (roles are the server's, so their names are
unique) and drops them at the end. A login that a test makes a member of the system role while
being a member of the application role gets it through a group role of its own: another test
session migrating a scratch database of the same server meanwhile (0035 revokes the direct
grants) leaves it be.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from invoice_pipelines.db.engine import DatabaseLogin, make_engine, make_system_engine
from invoice_pipelines.db.migrate import upgrade
from invoice_pipelines.db.tables import customers, organizations
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.settings import ConfigError

ORG = "invoice_pipelines.organization_id"
FLAG_ON = "SELECT set_config('invoice_pipelines.system', 'on', true)"


@pytest.fixture
def two_tenants(pg_database):
    db = pg_database
    ours, theirs = db.new_organization(), db.new_organization()
    for org in (ours, theirs):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                insert(customers).values(
                    organization_id=org["id"], customer_number="C-1", name=f"of {org['slug']}"
                )
            )
    return db, ours["id"], theirs["id"]


@pytest.fixture
def login(pg_database, monkeypatch):
    """`login(*granted)`: the URL of a new login of the test database, granted `granted` (a name
    prefixed `via:` through a group role of its own). The suite's allowance to run as the owner is
    taken away: what is tested is what a deployment gets."""
    monkeypatch.delenv("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", raising=False)
    made: list[str] = []

    def create(*granted: str) -> str:
        name = f"ipt_login_{uuid.uuid4().hex[:8]}"
        with pg_database.owner_engine.begin() as conn:
            conn.exec_driver_sql(
                f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT'
            )
            made.append(name)
            for role in granted:
                if role.startswith("via:"):
                    group, role = f"{name}_group", role[len("via:") :]
                    conn.exec_driver_sql(f'CREATE ROLE "{group}" NOLOGIN')
                    made.append(group)
                    conn.exec_driver_sql(f'GRANT "{role}" TO "{group}"')
                    role = group
                conn.exec_driver_sql(f'GRANT "{role}" TO "{name}"')
        return make_url(pg_database.url).set(username=name).render_as_string(hide_password=False)

    yield create
    with pg_database.owner_engine.begin() as conn:
        for name in reversed(made):
            conn.exec_driver_sql(f'DROP OWNED BY "{name}"')
            conn.exec_driver_sql(f'DROP ROLE "{name}"')


def _seen(conn) -> tuple[set[int], set[int]]:
    orgs = set(conn.execute(select(organizations.c.id)).scalars())
    owners = set(conn.execute(text("SELECT organization_id FROM customers")).scalars())
    return orgs, owners


def test_the_application_role_setting_the_flag_still_sees_one_tenant(two_tenants) -> None:
    db, ours, theirs = two_tenants
    with tenant_transaction(db.engine, ours) as conn:
        assert conn.execute(text("SELECT current_user")).scalar() == "invoice_app"
        conn.execute(text(FLAG_ON))
        orgs, owners = _seen(conn)
    assert orgs == {ours} and owners == {ours}

    # without an organization at all: the flag alone shows nothing
    with db.engine.begin() as conn:
        conn.execute(text(FLAG_ON))
        assert _seen(conn) == (set(), set())

    # nor can it write into another tenant with the flag on
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_transaction(db.engine, ours) as conn:
            conn.execute(text(FLAG_ON))
            conn.execute(
                insert(customers).values(organization_id=theirs, customer_number="X", name="x")
            )


def test_a_login_granted_only_the_application_role_gets_nothing_from_the_flag(
    two_tenants, login
) -> None:
    """Neither as the application role nor as itself (after RESET ROLE), and it may not switch
    to the system role."""
    db, ours, _ = two_tenants
    raw = create_engine(login("invoice_app"))
    try:
        for become in ("SET LOCAL ROLE invoice_app", "RESET ROLE"):
            with raw.begin() as conn:
                conn.exec_driver_sql(become)
                conn.execute(text(f"SELECT set_config('{ORG}', '{ours}', true)"))
                conn.execute(text(FLAG_ON))
                assert _seen(conn) == ({ours}, {ours}), become
        with pytest.raises(ProgrammingError, match="permission denied to set role"):
            with raw.begin() as conn:
                conn.exec_driver_sql("SET LOCAL ROLE invoice_app_system")
    finally:
        raw.dispose()


def test_a_runtime_session_may_not_become_the_system_role(two_tenants, login) -> None:
    db, ours, _theirs = two_tenants
    engine = make_engine(login("invoice_app"), system_url=login("invoice_app_system"))
    try:
        for become in (
            "SET ROLE invoice_app_system",
            "SET LOCAL ROLE invoice_app_system",
            "SELECT set_config('role', 'invoice_app_system', true)",
        ):
            with pytest.raises(ProgrammingError, match='permission denied to set role "invoice_'):
                with tenant_transaction(engine, ours) as conn:
                    conn.exec_driver_sql(become)
        # as itself or as the application role, with the flag on: its own organization only
        for become in ("RESET ROLE", "SET LOCAL ROLE invoice_app"):
            with tenant_transaction(engine, ours) as conn:
                conn.exec_driver_sql(become)
                conn.execute(text(FLAG_ON))
                assert _seen(conn) == ({ours}, {ours}), become
    finally:
        engine.dispose()


def test_system_transactions_run_as_the_system_login_and_never_on_the_runtime_one(
    two_tenants, login
) -> None:
    db, ours, theirs = two_tenants
    runtime_url, system_url = login("invoice_app"), login("invoice_app_system")
    engine = make_engine(runtime_url, system_url=system_url)
    system = make_system_engine(runtime_url, system_url=system_url)
    try:
        with system_transaction(system, write=True) as conn:
            who = conn.execute(text("SELECT session_user, current_user")).one()
            orgs, owners = _seen(conn)
            slug = f"sys-{uuid.uuid4().hex[:6]}"
            conn.execute(insert(organizations).values(slug=slug, name="Made by the system login"))
        assert tuple(who) == (make_url(system_url).username, "invoice_app_system")
        assert {ours, theirs} <= orgs and {ours, theirs} <= owners
        with system_transaction(system) as conn:
            assert slug in set(conn.execute(select(organizations.c.slug)).scalars())
        # the runtime engine's own connections stay the runtime login's, one tenant each
        with tenant_transaction(engine, ours) as conn:
            conn.execute(text(FLAG_ON))
            who = conn.execute(text("SELECT session_user, current_user")).one()
            assert _seen(conn) == ({ours}, {ours})
        assert tuple(who) == (make_url(runtime_url).username, "invoice_app")
        # and work over every organization handed the runtime engine does not run at all
        with pytest.raises(ProgrammingError, match="permission denied to set"):
            with system_transaction(engine):
                pass
    finally:
        engine.dispose()
        system.dispose()


def test_the_logins_hand_a_command_the_system_login_for_its_work_over_every_organization(
    two_tenants, login
) -> None:
    """What a command gets (`args.resources.system_database`, `DatabaseLogin.system_engine`) and
    what a run gets (the `system_database` resource) for the same logins: the system login's
    engine, not one of the runtime login."""
    from dagster import build_init_resource_context

    from invoice_pipelines.resources.database.engines import SystemDatabase

    db, ours, theirs = two_tenants
    logins = DatabaseLogin(url=login("invoice_app"), system_url=login("invoice_app_system"))
    resource = SystemDatabase.of(logins)
    context = build_init_resource_context()
    for system in (logins.system_engine(), resource.create_resource(context)):
        try:
            with system_transaction(system) as conn:
                who = conn.execute(text("SELECT session_user")).scalar()
                orgs, _ = _seen(conn)
        finally:
            system.dispose()
        assert who == make_url(logins.system_url).username
        assert {ours, theirs} <= orgs
    resource.teardown_after_execution(context)


def test_a_runtime_login_that_may_become_the_system_role_is_refused(two_tenants, login) -> None:
    runtime_url = login("invoice_app", "via:invoice_app_system")
    with pytest.raises(ConfigError) as caught:
        make_engine(runtime_url, system_url=login("invoice_app_system"))
    runtime = make_url(runtime_url).username
    assert str(caught.value) == (
        f"the pipelines log in as {runtime!r}, which may switch to 'invoice_app_system', the role "
        "of the work over every organization, so SQL in a tenant run could read and write every "
        f"organization: REVOKE invoice_app_system FROM {runtime} (that work logs in through "
        "INVOICE_PIPELINES_SYSTEM_DB_URL; docs/postgresql-and-scale-out.md)"
    )


def test_without_a_system_login_the_runtime_login_is_told_to_configure_one(
    pg_database, login
) -> None:
    url = login("invoice_app")
    with pytest.raises(ConfigError) as caught:
        make_engine(url, system_url="")
    runtime = make_url(url).username
    assert str(caught.value) == (
        f"the pipelines log in as {runtime!r}, which may not switch to 'invoice_app_system', the "
        "role of the work over every organization (sensors, schedules), and "
        "INVOICE_PIPELINES_SYSTEM_DB_URL is not set: set it to the URL of the system login, a "
        "login of its own for that work (docs/postgresql-and-scale-out.md)"
    )


def test_single_login_mode_works_with_a_warning(two_tenants, login, caplog) -> None:
    """A runtime login granted the system role by hand, without a system login: the work over
    every organization runs on it, as before 0035, and the log says what that leaves open."""
    db, ours, theirs = two_tenants
    url = login("invoice_app", "via:invoice_app_system")
    with caplog.at_level(logging.WARNING, logger="invoice_pipelines.db.engine"):
        engine = make_system_engine(url, system_url="")
    try:
        with system_transaction(engine) as conn:
            orgs, _ = _seen(conn)
            assert conn.execute(text("SELECT session_user")).scalar() == make_url(url).username
        assert {ours, theirs} <= orgs
    finally:
        engine.dispose()
    [warning] = [r.getMessage() for r in caplog.records if "single-login mode" in r.getMessage()]
    assert "INVOICE_PIPELINES_SYSTEM_DB_URL is not set" in warning
    assert "SQL in a tenant run could do the same" in warning


def test_a_system_login_without_the_system_role_is_told_what_to_grant(pg_database, login) -> None:
    system_url = login()
    with pytest.raises(ConfigError) as caught:
        make_system_engine(login("invoice_app"), system_url=system_url)
    system = make_url(system_url).username
    assert str(caught.value).endswith(
        '(INVOICE_PIPELINES_SYSTEM_DB_URL): permission denied to set role "invoice_app_system" '
        f"(GRANT invoice_app_system TO {system}; docs/postgresql-and-scale-out.md)"
    )
    assert str(caught.value).startswith(f"cannot connect to postgresql+psycopg2://{system}@")


def test_the_system_login_may_not_be_the_owner(pg_database, login) -> None:
    with pytest.raises(ConfigError) as caught:
        make_system_engine(login("invoice_app"), system_url=pg_database.url)
    assert str(caught.value).startswith(
        "the work over every organization logs in as 'postgres' (INVOICE_PIPELINES_SYSTEM_DB_URL), "
        "a superuser, and any statement could RESET ROLE to it"
    )


def test_the_system_url_names_the_same_database_with_another_login(
    pg_database, login, tmp_path
) -> None:
    runtime_url = login("invoice_app")
    elsewhere = make_url(runtime_url).set(database="another", username="sys")
    with pytest.raises(ConfigError, match="must name the same PostgreSQL database"):
        make_engine(runtime_url, system_url=elsewhere.render_as_string(hide_password=False))
    with pytest.raises(ConfigError, match="the work over every organization needs a login of its"):
        make_engine(runtime_url, system_url=runtime_url)
    with pytest.raises(ConfigError, match="INVOICE_PIPELINES_SYSTEM_DB_URL is for PostgreSQL"):
        make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}", system_url=runtime_url)


def test_migration_0035_revokes_the_system_role_from_the_runtime_logins(
    pg_scratch_factory, login
) -> None:
    """A database migrated before 0035 with its runtime login granted both roles, as 0027 and
    the docs had it, and a system login: after 0035 only the system login may switch."""
    url = pg_scratch_factory()
    owner = make_engine(url, owner=True)
    try:
        upgrade(owner, "0034")
        as_before = login("invoice_app", "invoice_app_system")
        system_url = login("invoice_app_system")
        upgrade(owner, "0035")
        with owner.connect() as conn:
            members = dict(
                conn.execute(
                    text(
                        "SELECT rolname, pg_has_role(oid, 'invoice_app_system', 'MEMBER') "
                        "FROM pg_roles WHERE rolname IN (:a, :b)"
                    ),
                    {"a": make_url(as_before).username, "b": make_url(system_url).username},
                ).all()
            )
    finally:
        owner.dispose()
    assert members == {make_url(as_before).username: False, make_url(system_url).username: True}
    raw = create_engine(make_url(as_before).set(database=make_url(url).database))
    try:
        with pytest.raises(ProgrammingError, match="permission denied to set role"):
            with raw.begin() as conn:
                conn.exec_driver_sql("SET ROLE invoice_app_system")
    finally:
        raw.dispose()
