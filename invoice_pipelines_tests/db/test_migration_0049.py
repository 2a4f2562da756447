"""Migration 0049: an organization's invoices of one month found by index. Two organizations with
two years of supplier and sales invoices each: upgrade, downgrade and upgrade again on SQLite and
PostgreSQL keep every row, and the export's month (its invoices, its VAT rows, its lines) finds
the same rows with and without the indexes, a document without an issue date by the month it was
received in included. On PostgreSQL, with the tables analyzed, the export's own queries (compiled
as the driver binds them) are planned through the new indexes instead of reading the whole
table, and the export's VALIDATED -> EXPORTED update is still heap-only."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import sqlalchemy as sa

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade
from invoice_pipelines.db.tables import (
    customers,
    incoming_invoice_taxes,
    incoming_invoices,
    organizations,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.exports.domain.reads import (
    booked_lines_query,
    invoices_query,
    vat_rows_query,
)

INCOMING = ("ix_incoming_invoices_org_issue_date", "ix_incoming_invoices_org_undated")
SALES = "ix_sales_invoices_org_issue_date"
MONTHS = [f"{2024 + (m // 12)}-{m % 12 + 1:02d}" for m in range(24)]  # 2024-01 .. 2025-12
PER_MONTH = 60
PERIOD = "2025-06"


def _day(period: str, day: int) -> date:
    year, month = (int(part) for part in period.split("-"))
    return date(year, month, day)


def _seed(engine) -> list[int]:
    """Two organizations, each with PER_MONTH supplier invoices (VALIDATED, with a VAT row) and
    PER_MONTH sales invoices in every month of MONTHS; the first also has two documents without
    an issue date, one received in PERIOD and one in the month before."""
    orgs = []
    with system_transaction(engine, write=True) as conn:
        for n in range(2):
            org = conn.execute(
                sa.insert(organizations)
                .values(slug=f"months-{n}", name=f"Months {n} GmbH")
                .returning(organizations.c.id)
            ).scalar_one()
            customer = conn.execute(
                sa.insert(customers)
                .values(organization_id=org, customer_number="K-1", name="Kunde")
                .returning(customers.c.id)
            ).scalar_one()
            money = {
                "currency": "EUR",
                "net_total": Decimal("100.00"),
                "tax_total": Decimal("19.00"),
                "gross_total": Decimal("119.00"),
                "amount_due": Decimal("119.00"),
            }
            incoming, sales = [], []
            for m, period in enumerate(MONTHS):
                for k in range(PER_MONTH):
                    number = m * PER_MONTH + k + 1
                    issued = _day(period, k % 28 + 1)
                    incoming.append(
                        {
                            **money,
                            "organization_id": org,
                            "status": "VALIDATED",
                            "content_hash": f"{org}-{number:064d}"[-64:],
                            "invoice_number": f"ER-{number}",
                            "invoice_number_key": f"er{number}",
                            "seller_name": "Lieferant GmbH",
                            "issue_date": issued,
                            "created_at": datetime(
                                issued.year, issued.month, issued.day, 12, tzinfo=UTC
                            ),
                        }
                    )
                    sales.append(
                        {
                            **money,
                            "organization_id": org,
                            "customer_id": customer,
                            "invoice_number": f"RE-{number}",
                            "sequence_number": number,
                            "issue_date": issued,
                            "due_date": issued,
                        }
                    )
            if n == 0:
                for received, number in ((_day(PERIOD, 9), "ND-1"), (_day("2025-05", 9), "ND-2")):
                    incoming.append(
                        {
                            **money,
                            "organization_id": org,
                            "status": "VALIDATED",
                            "content_hash": f"undated-{number}",
                            "invoice_number": number,
                            "invoice_number_key": number.lower(),
                            "seller_name": "Lieferant GmbH",
                            "issue_date": None,
                            "created_at": datetime(
                                received.year, received.month, received.day, tzinfo=UTC
                            ),
                        }
                    )
            conn.execute(sa.insert(incoming_invoices), incoming)
            conn.execute(sa.insert(sales_invoices), sales)
            t = incoming_invoices.c
            conn.execute(
                sa.insert(incoming_invoice_taxes).from_select(
                    [
                        "organization_id",
                        "incoming_invoice_id",
                        "vat_category",
                        "vat_rate",
                        "basis",
                        "amount",
                    ],  # fmt: skip
                    sa.select(
                        t.organization_id,
                        t.id,
                        sa.literal("S"),
                        sa.literal(Decimal("19.00")),
                        t.net_total,
                        t.tax_total,
                    ).where(t.organization_id == org),
                )
            )
            orgs.append(org)
    return orgs


def _month_queries(org: int) -> dict[str, sa.Select]:
    return {
        "incoming invoices": invoices_query(org, PERIOD, "incoming"),
        "incoming VAT rows": vat_rows_query(org, PERIOD, "incoming"),
        "incoming lines": booked_lines_query(org, PERIOD, "incoming", skipped=()),
        "sales invoices": invoices_query(org, PERIOD, "sales"),
        "sales VAT rows": vat_rows_query(org, PERIOD, "sales"),
        "sales lines": booked_lines_query(org, PERIOD, "sales", skipped=()),
    }


def _found(engine, org: int) -> dict[str, list[tuple]]:
    with system_transaction(engine) as conn:
        return {
            name: [tuple(row) for row in conn.execute(query)]
            for name, query in _month_queries(org).items()
        }


def _plan(engine, query) -> str:
    with system_transaction(engine) as conn:
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
        return "\n".join(rows)


def _indexes(engine, table: str) -> set[str]:
    return {index["name"] for index in sa.inspect(engine).get_indexes(table)}


def _numbers(rows: list[tuple]) -> set[str]:
    return {row[1] for row in rows}


def test_0049_finds_an_organizations_month_by_index(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0048") == "0048"
        first, _second = _seed(engine)
        assert not set(INCOMING) & _indexes(engine, "incoming_invoices")
        before = _found(engine, first)
        # the month's own invoices, and the document without an issue date received in it
        assert len(before["incoming invoices"]) == PER_MONTH + 1, kind
        assert "ND-1" in _numbers(before["incoming invoices"])
        assert "ND-2" not in _numbers(before["incoming invoices"])
        assert len(before["sales invoices"]) == PER_MONTH, kind
        assert len(before["incoming VAT rows"]) == PER_MONTH + 1, kind

        assert upgrade(engine) == head_revision()
        assert set(INCOMING) <= _indexes(engine, "incoming_invoices")
        assert SALES in _indexes(engine, "sales_invoices")
        assert _found(engine, first) == before, kind
        if kind == "postgresql":
            with engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE incoming_invoices")
                conn.exec_driver_sql("ANALYZE sales_invoices")
                conn.exec_driver_sql("ANALYZE incoming_invoice_taxes")
            queries = _month_queries(first)
            incoming_plan = _plan(engine, queries["incoming invoices"])
            for index in INCOMING:
                assert index in incoming_plan, incoming_plan
            sales_plan = _plan(engine, queries["sales invoices"])
            assert SALES in sales_plan, sales_plan
            for name, query in queries.items():
                plan = _plan(engine, query)
                assert "Seq Scan on incoming_invoices" not in plan, (name, plan)
                assert "Seq Scan on sales_invoices" not in plan, (name, plan)
            # the export's status change mentions neither column: still heap-only (0048)
            with system_transaction(engine, write=True) as conn:
                t = incoming_invoices.c
                moved = conn.execute(
                    sa.update(incoming_invoices)
                    .where(t.organization_id == first, t.issue_date >= _day(PERIOD, 1))
                    .where(t.issue_date < _day("2025-07", 1))
                    .values(status="EXPORTED", processing_version=t.processing_version + 1)
                ).rowcount
                # this transaction's own counts of updated and heap-only updated documents
                updated, heap_only = conn.exec_driver_sql(
                    "SELECT pg_stat_get_xact_tuples_updated('incoming_invoices'::regclass), "
                    "pg_stat_get_xact_tuples_hot_updated('incoming_invoices'::regclass)"
                ).one()
            assert moved == updated == PER_MONTH
            assert heap_only == moved

        assert downgrade(engine, "0048") == "0048"
        assert not set(INCOMING) & _indexes(engine, "incoming_invoices")
        assert SALES not in _indexes(engine, "sales_invoices")
        if kind == "postgresql":
            assert SALES not in _plan(engine, invoices_query(first, PERIOD, "sales"))
        with system_transaction(engine) as conn:
            counted = conn.execute(
                sa.select(sa.func.count()).select_from(incoming_invoices)
            ).scalar_one()
            sold = conn.execute(sa.select(sa.func.count()).select_from(sales_invoices)).scalar_one()
        assert counted == 2 * len(MONTHS) * PER_MONTH + 2
        assert sold == 2 * len(MONTHS) * PER_MONTH
        assert upgrade(engine) == head_revision()
        assert set(INCOMING) <= _indexes(engine, "incoming_invoices")
        engine.dispose()
