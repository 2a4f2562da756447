"""Two database roles: migrations log in as the owner, the pipelines as a runtime role that owns
nothing, has no BYPASSRLS and is not a member of the owner (docs/postgresql-and-scale-out.md).

The pipelines refuse to start logged in as a superuser or as the owner unless
INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME=true (the rest of the suite sets it: it logs in as the
server's superuser). A session of the runtime role cannot `RESET ROLE` its way around the policies:
before, the documented setup logged in as the owner and `SET ROLE invoice_app`, so any SQL in the
session could `RESET ROLE` and, as the owner, switch row-level security off or drop tables.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.settings import ConfigError


@pytest.fixture
def roles(pg_database):
    """A runtime role and a system login as the docs create them, and a member of the tables'
    owner; dropped after."""
    owner = pg_database.owner_engine
    suffix = uuid.uuid4().hex[:8]
    runtime, owner_member, tables_owner = f"ipt_runtime_{suffix}", f"ipt_owner_{suffix}", None
    system = f"ipt_system_{suffix}"
    with owner.begin() as conn:
        tables_owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'organizations'")
        ).scalar_one()
        # the docs' runtime role: LOGIN, nothing owned, no BYPASSRLS, a member of invoice_app
        # only; and their system login, a member of invoice_app_system only
        for login, granted in ((runtime, "invoice_app"), (system, "invoice_app_system")):
            conn.exec_driver_sql(
                f'CREATE ROLE "{login}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE '
                "INHERIT"
            )
            conn.exec_driver_sql(f'GRANT {granted} TO "{login}"')
        conn.exec_driver_sql(f'CREATE ROLE "{owner_member}" LOGIN NOSUPERUSER NOBYPASSRLS')
        conn.exec_driver_sql(f'GRANT "{tables_owner}", invoice_app TO "{owner_member}"')
    url = make_url(pg_database.url)
    yield {
        "runtime": url.set(username=runtime).render_as_string(hide_password=False),
        "owner_member": url.set(username=owner_member).render_as_string(hide_password=False),
        "system": url.set(username=system).render_as_string(hide_password=False),
        "superuser": pg_database.url,
        "owner": tables_owner,
    }
    with owner.begin() as conn:
        for role in (runtime, system, owner_member):
            conn.exec_driver_sql(f'DROP OWNED BY "{role}"')
            conn.exec_driver_sql(f'DROP ROLE "{role}"')


@pytest.fixture
def no_allowance(monkeypatch):
    monkeypatch.delenv("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", raising=False)


def test_the_pipelines_refuse_to_log_in_as_a_superuser_or_the_owner(roles, no_allowance) -> None:
    with pytest.raises(ConfigError) as caught:
        make_engine(roles["superuser"], system_url=roles["system"])
    assert str(caught.value).startswith("the pipelines log in as 'postgres', a superuser, ")
    assert "INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME=true" in str(caught.value)

    with pytest.raises(ConfigError, match=f"a member of the tables' owner '{roles['owner']}'"):
        make_engine(roles["owner_member"], system_url=roles["system"])

    engine = make_engine(roles["runtime"], system_url=roles["system"])  # the runtime role starts
    engine.dispose()
    migrating = make_engine(roles["superuser"], owner=True)  # migrations log in as the owner
    migrating.dispose()


def test_the_allow_setting_lets_a_test_database_run_as_the_owner(roles, monkeypatch) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", "true")
    make_engine(roles["superuser"]).dispose()
    monkeypatch.setenv("INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME", "yes")
    with pytest.raises(ConfigError, match="INVOICE_PIPELINES_ALLOW_OWNER_RUNTIME is true or false"):
        make_engine(roles["superuser"])


def test_the_runtime_role_cannot_reset_role_around_the_policies(
    pg_database, roles, no_allowance
) -> None:
    ours, theirs = (pg_database.new_organization() for _ in range(2))
    engine = make_engine(roles["runtime"], system_url=roles["system"])
    try:
        with tenant_transaction(engine, ours["id"]) as conn:
            conn.exec_driver_sql("RESET ROLE")
            assert (
                conn.execute(text("SELECT current_user")).scalar()
                == make_url(roles["runtime"]).username
            )
            seen = set(conn.execute(text("SELECT id FROM organizations")).scalars())
        assert ours["id"] in seen and theirs["id"] not in seen

        for statement in (
            "ALTER TABLE organizations DISABLE ROW LEVEL SECURITY",
            "ALTER TABLE organizations NO FORCE ROW LEVEL SECURITY",
            "DROP POLICY tenant_isolation ON organizations",
            "DROP TABLE organizations",
            f'SET ROLE "{roles["owner"]}"',
        ):
            with tenant_transaction(engine, ours["id"]) as conn:
                conn.exec_driver_sql("RESET ROLE")
                with pytest.raises(ProgrammingError, match="must be owner|permission denied"):
                    conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_a_session_of_the_owner_could_reset_role_and_switch_rls_off(pg_database, roles) -> None:
    """Why the owner must not be the runtime login: the old setup, shown to be open."""
    ours, _other = (pg_database.new_organization() for _ in range(2))
    raw = create_engine(roles["superuser"])
    try:
        with raw.begin() as conn:
            conn.exec_driver_sql("SET LOCAL ROLE invoice_app")
            conn.exec_driver_sql(f"SET LOCAL invoice_pipelines.organization_id = '{ours['id']}'")
            conn.exec_driver_sql("RESET ROLE")
            everyone = conn.execute(text("SELECT count(*) FROM organizations")).scalar()
        assert everyone >= 2  # every tenant's row, not just the one set
    finally:
        raw.dispose()
    with system_transaction(pg_database.engine, write=True) as conn:
        assert conn.execute(
            insert(organizations).values(slug=f"x-{uuid.uuid4().hex[:6]}", name="X")
        )
