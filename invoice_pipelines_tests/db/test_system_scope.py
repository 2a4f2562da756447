"""The system scope (every organization) belongs to the system role, not to whoever sets the flag.

`invoice_pipelines.system` is an ordinary custom setting: any role can `set_config` it. Before
migration 0027 the tenant policies honoured it for everyone, so a statement of the application
role could read every organization. Now they honour it only for the system role, which
the system login's connections are (`system_transaction`), and the tables' owner. That the runtime
login may not switch to the system role (migration 0035) is test_system_login.py's.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import create_engine, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from invoice_pipelines.db.tables import customers, organizations
from invoice_pipelines.db.tenancy import tenant_transaction

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
def runtime_login(pg_database):
    """A runtime login as the docs create it, granted what the docs say: invoice_app."""
    made: list[str] = []

    def create(*granted: str) -> str:
        name = f"ipt_sys_{uuid.uuid4().hex[:8]}"
        with pg_database.owner_engine.begin() as conn:
            conn.exec_driver_sql(
                f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE INHERIT'
            )
            conn.exec_driver_sql(f'GRANT {", ".join(granted)} TO "{name}"')
        made.append(name)
        return make_url(pg_database.url).set(username=name).render_as_string(hide_password=False)

    yield create
    with pg_database.owner_engine.begin() as conn:
        for name in made:
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
    two_tenants, runtime_login
) -> None:
    """Neither as the application role nor as itself (after RESET ROLE), and it may not switch
    to the system role."""
    db, ours, _ = two_tenants
    raw = create_engine(runtime_login("invoice_app"))
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
