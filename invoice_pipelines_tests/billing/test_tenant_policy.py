"""The tenant policy as batch invoicing meets it (PostgreSQL): read once per statement, still isolating.

Migration 0017 moved the policy's two settings into scalar subqueries, which PostgreSQL plans as
InitPlans (once per statement) instead of evaluating them for every row a chunk reads or writes.
These tests hold both halves of that: the plans show the InitPlan, and the set-based writes a
chunk makes still cannot read or write another tenant's rows.
"""

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.rls import POLICY
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction

# the tables a chunk writes
WRITTEN = ("sales_invoices", "sales_invoice_lines", "sales_invoice_taxes", "batch_job_items")


@pytest.fixture
def two_tenants(pg_database):
    db = pg_database
    a, b = db.new_organization(), db.new_organization()
    for org in (a, b):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (organization_id, customer_number, name) "
                    "SELECT :org, 'C-' || g, 'Customer ' || g FROM generate_series(1, 3) AS g"
                ),
                {"org": org["id"]},
            )
    return db, a["id"], b["id"]


def test_every_tenant_policy_reads_its_settings_once_per_statement(pg_database):
    with pg_database.owner_engine.connect() as conn:
        policies = conn.execute(
            text(
                "SELECT tablename, qual, with_check FROM pg_policies "
                "WHERE schemaname = current_schema() AND policyname = :policy"
            ),
            {"policy": POLICY},
        ).all()
    assert {p.tablename for p in policies} >= {*WRITTEN, "sales_orders", "organizations"}
    for policy in policies:
        for expression in (policy.qual, policy.with_check):
            # both settings inside a scalar subquery: no current_setting() outside a SELECT
            assert expression.count("SELECT") == 2, (policy.tablename, expression)


def test_a_set_based_read_evaluates_the_policy_once(two_tenants):
    db, a, _ = two_tenants
    with tenant_transaction(db.engine, a) as conn:
        plan = "\n".join(
            conn.execute(
                text(
                    "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT * FROM customers"
                )
            ).scalars()
        )
        names = conn.execute(text("SELECT customer_number FROM customers")).scalars().all()
    assert "InitPlan" in plan and "current_setting" not in plan.split("InitPlan")[0], plan
    assert sorted(names) == ["C-1", "C-2", "C-3"]  # only its own, without a WHERE


def test_set_based_writes_stay_inside_the_tenant(two_tenants):
    db, a, b = two_tenants
    # an INSERT..SELECT whose rows name another organization is refused as a whole
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_transaction(db.engine, a, write=True) as conn:
            conn.execute(
                text(
                    "INSERT INTO customers (organization_id, customer_number, name) "
                    "SELECT CASE WHEN g = 2 THEN :other ELSE :org END, 'X-' || g, 'x' "
                    "FROM generate_series(1, 3) AS g"
                ),
                {"org": a, "other": b},
            )
    with tenant_transaction(db.engine, a, write=True) as conn:
        # an UPDATE without WHERE changes only the tenant's rows, and cannot move them out
        assert conn.execute(text("UPDATE customers SET name = 'renamed'")).rowcount == 3
        with pytest.raises(DBAPIError, match="row-level security"):
            with conn.begin_nested():
                conn.execute(text("UPDATE customers SET organization_id = :other"), {"other": b})
    with tenant_transaction(db.engine, b) as conn:
        assert set(conn.execute(text("SELECT name FROM customers")).scalars()) == {
            "Customer 1",
            "Customer 2",
            "Customer 3",
        }
    # no scope sees nothing; the system scope sees both
    with db.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM customers")).scalar_one() == 0
    with system_transaction(db.engine) as conn:
        orgs = set(conn.execute(text("SELECT organization_id FROM customers")).scalars())
    assert {a, b} <= orgs
