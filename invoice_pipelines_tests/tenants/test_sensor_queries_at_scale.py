"""The sensors' queries stay anti-joins however many invoices have their documents or wait in the
QuickBooks queue. `NOT IN (subquery)` is planned as a hashed subplan only while the subquery's
rows fit in PostgreSQL's hash memory; past that (about 150,000 generated documents at the default
work_mem) it scans the whole subquery for every invoice: the documents sensor's query over 480,000
invoices ran for over a minute, Dagster's sensor timeout, where the anti-join takes 0.19 s
(docs/benchmarks.md). Here a database whose work_mem is 64 kB puts a few thousand invoices past
that point: every statement the documents sensor's query, an organization's documents run and the
QuickBooks push sensor run is EXPLAINed as it ran, and none may evaluate a subquery per row; and
each still finds exactly the invoices that wait."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import event, func, select

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import organizations, sales_invoices
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.documents.domain.pipeline import pending_invoices, waiting_for_documents
from invoice_pipelines.quickbooks.domain.watch import push_waiting

INVOICES = 10_000  # per organization: 20,000 ids, far past 64 kB of hash memory
WITHOUT = 3  # the first organization's invoices without a document and not queued
PER_ROW_SUBPLAN = re.compile(r"\(SubPlan \d+\)")  # "(hashed SubPlan 1)" is the set-based form


@pytest.fixture
def crowded(pg_migrated_factory):
    url = pg_migrated_factory()
    owner = make_engine(url, owner=True)
    with owner.connect() as conn:
        database = conn.exec_driver_sql("SELECT current_database()").scalar_one()
        conn.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET work_mem = '64kB'")
        conn.commit()
    engine = make_engine(url)
    orgs = _seed(engine)
    # statistics, as a database in use has them (the tables' owner analyzes; the runtime role's
    # ANALYZE would skip them with a warning, and the planner would guess a few rows)
    with owner.connect() as conn:
        for table in ("sales_invoices", "sales_invoice_documents", "qbo_push_queue"):
            conn.exec_driver_sql(f"ANALYZE {table}")
        conn.commit()
    owner.dispose()
    yield engine, orgs
    engine.dispose()


def _seed(engine) -> dict[str, int]:
    """Two organizations with INVOICES sales invoices each, all with a generated Factur-X PDF and
    queued for QuickBooks but the first organization's WITHOUT newest; the first is connected."""
    orgs = {}
    with system_transaction(engine, write=True) as conn:
        for slug in ("crowded-a", "crowded-b"):
            org = conn.execute(
                organizations.insert()
                .values(slug=slug, name=slug.title())
                .returning(organizations.c.id)
            ).scalar_one()
            orgs[slug] = org
            conn.exec_driver_sql(
                "INSERT INTO customers (organization_id, customer_number, name) "
                "VALUES (%(org)s, 'K-1', 'Kunde')",
                {"org": org},
            )
            conn.exec_driver_sql(
                "INSERT INTO sales_invoices (organization_id, customer_id, invoice_number, "
                "sequence_number, issue_date, due_date, currency, net_total, tax_total, "
                "gross_total, amount_due) "
                "SELECT %(org)s, c.id, 'RE-' || n, n, DATE '2026-11-02', DATE '2026-11-16', "
                "'EUR', 100, 19, 119, 119 "
                "FROM customers c, generate_series(1, %(n)s) AS n WHERE c.organization_id = %(org)s",
                {"org": org, "n": INVOICES},
            )
            keep = WITHOUT if slug == "crowded-a" else 0
            conn.exec_driver_sql(
                "INSERT INTO sales_invoice_documents (organization_id, sales_invoice_id, kind, "
                "status, storage_key) SELECT organization_id, id, 'facturx', 'generated', 'x' "
                "FROM sales_invoices WHERE organization_id = %(org)s AND sequence_number <= %(k)s",
                {"org": org, "k": INVOICES - keep},
            )
            conn.exec_driver_sql(
                "INSERT INTO qbo_push_queue (organization_id, sales_invoice_id, action, status, "
                "request_id) SELECT organization_id, id, 'create', 'pushed', 'r-' || id "
                "FROM sales_invoices WHERE organization_id = %(org)s AND sequence_number <= %(k)s",
                {"org": org, "k": INVOICES - keep},
            )
        conn.exec_driver_sql(
            "INSERT INTO qbo_connections (organization_id, realm_id, client_id, "
            "client_secret_enc, refresh_token_enc) VALUES (%(org)s, '4620816365', 'c', 'x', 'x')",
            {"org": orgs["crowded-a"]},
        )
    return orgs


def _statements(engine, work):
    """The SELECT statements `work()` ran, with their parameters, and its result."""
    seen = []

    def note(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and "pg_" not in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", note)
    try:
        result = work()
    finally:
        event.remove(engine, "before_cursor_execute", note)
    return seen, result


def _per_row_subplans(engine, statements) -> list[str]:
    found = []
    with system_transaction(engine) as conn:
        for statement, parameters in statements:
            plan = "\n".join(
                conn.exec_driver_sql(f"EXPLAIN {statement}", parameters or {}).scalars()
            )
            if PER_ROW_SUBPLAN.search(plan):
                found.append(plan)
    return found


def _newest_without(engine, org: int) -> list[int]:
    with system_transaction(engine) as conn:
        return list(
            conn.execute(
                select(sales_invoices.c.id)
                .where(
                    sales_invoices.c.organization_id == org,
                    sales_invoices.c.sequence_number > INVOICES - WITHOUT,
                )
                .order_by(sales_invoices.c.id)
            ).scalars()
        )


def test_the_documents_sensor_and_run_find_the_waiting_invoices_by_anti_join(crowded):
    engine, orgs = crowded
    waiting = _newest_without(engine, orgs["crowded-a"])

    def sensor_query():
        with system_transaction(engine) as conn:
            return conn.execute(
                select(organizations.c.slug, func.max(sales_invoices.c.id), func.count())
                .join(organizations, organizations.c.id == sales_invoices.c.organization_id)
                .where(*waiting_for_documents())
                .group_by(organizations.c.slug)
            ).all()

    statements, rows = _statements(engine, sensor_query)
    assert [tuple(r) for r in rows] == [("crowded-a", waiting[-1], WITHOUT)]
    assert not _per_row_subplans(engine, statements)

    def organizations_run():
        with system_transaction(engine) as conn:
            return {slug: pending_invoices(conn, org) for slug, org in orgs.items()}

    statements, pending = _statements(engine, organizations_run)
    assert pending == {"crowded-a": waiting, "crowded-b": []}
    assert not _per_row_subplans(engine, statements)


def test_the_quickbooks_push_sensor_finds_the_unqueued_invoices_by_anti_join(crowded):
    engine, orgs = crowded
    waiting = _newest_without(engine, orgs["crowded-a"])
    statements, found = _statements(engine, lambda: push_waiting(engine))
    new = found[0]
    # the connected organization's newest invoice not queued yet; the other is not connected
    assert new == {"crowded-a": waiting[-1]}
    assert not _per_row_subplans(engine, statements)
