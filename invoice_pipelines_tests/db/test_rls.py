"""Row-level security on PostgreSQL: tenants cannot see or touch each other's rows."""

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.tables import customers, organizations
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction


@pytest.fixture
def two_tenants(pg_database):
    db = pg_database
    a, b = db.new_organization(name="Alpha GmbH"), db.new_organization(name="Beta LLC")
    for org, names in ((a, ["A1", "A2"]), (b, ["B1"])):
        with tenant_transaction(db.engine, org["id"]) as conn:
            conn.execute(
                insert(customers),
                [
                    {"organization_id": org["id"], "customer_number": n, "name": f"Customer {n}"}
                    for n in names
                ],
            )
    return db, a, b


def test_query_without_organization_filter_sees_only_its_tenant(two_tenants):
    db, a, b = two_tenants
    with tenant_transaction(db.engine, a["id"]) as conn:
        # deliberately no WHERE organization_id: the policy must do the filtering
        rows = conn.execute(text("SELECT customer_number, organization_id FROM customers")).all()
    assert sorted(r.customer_number for r in rows) == ["A1", "A2"]
    assert {r.organization_id for r in rows} == {a["id"]}

    with tenant_transaction(db.engine, b["id"]) as conn:
        assert conn.execute(text("SELECT customer_number FROM customers")).scalars().all() == ["B1"]
        # the organizations table itself is scoped too
        assert conn.execute(select(organizations.c.id)).scalars().all() == [b["id"]]


def test_no_scope_sees_nothing(two_tenants):
    db, _, _ = two_tenants
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar_one() == 0


def test_cannot_write_into_another_tenant(two_tenants):
    db, a, b = two_tenants
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_transaction(db.engine, a["id"]) as conn:
            conn.execute(
                insert(customers).values(
                    organization_id=b["id"], customer_number="X", name="Intruder"
                )
            )
    with tenant_transaction(db.engine, a["id"]) as conn:
        changed = conn.execute(update(customers).values(name="hijacked")).rowcount
    assert changed == 2  # only Alpha's two rows
    with tenant_transaction(db.engine, b["id"]) as conn:
        assert conn.execute(select(customers.c.name)).scalars().all() == ["Customer B1"]


def test_application_role_is_not_privileged(pg_database):
    with pg_database.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert row == (False, False)


def test_system_scope_sees_all_tenants(two_tenants):
    db, a, b = two_tenants
    with system_transaction(db.engine) as conn:
        orgs = set(conn.execute(select(customers.c.organization_id)).scalars())
    assert {a["id"], b["id"]} <= orgs


def test_policies_exist_even_without_an_application_role(pg_scratch_factory, monkeypatch):
    """A deployment that logs in as its own non-owner role still gets tenant isolation."""
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import upgrade
    from invoice_pipelines.settings import ConfigError

    url = pg_scratch_factory()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_APP_ROLE", "")
    owner = make_engine(url, owner=True)
    upgrade(owner)
    with owner.connect() as conn:
        unprotected = conn.execute(
            text(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace "
                "AND relname IN ('customers', 'sales_invoices', 'incoming_invoices', 'organizations') "
                "AND NOT (relrowsecurity AND relforcerowsecurity)"
            )
        ).all()
    owner.dispose()
    assert unprotected == []
    # and the application refuses to run as a role that would bypass the policies
    with pytest.raises(ConfigError, match="bypasses row-level security"):
        make_engine(url)
