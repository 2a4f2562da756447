"""The demo's organizations as `make run` seeds them: each one's carrier of the running year
validates against the DTD and reads back with the database's counts and sums."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from invoice_pipelines.audit.domain.carrier import write_carrier
from invoice_pipelines.db.tables import customers, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines_devtools.demo.seed import seed_demo
from invoice_pipelines_tests.audit.dtd_validation import lxml_errors
from invoice_pipelines_tests.audit.gdpdu_reader import dangling_foreign_keys, read_carrier
from invoice_pipelines_tests.audit.test_carrier import DTD
from invoice_pipelines_tests.audit.year_of_history import stores_in

TODAY = date(2026, 11, 28)


@pytest.fixture(autouse=True)
def _dtd(monkeypatch):
    if not DTD.is_file():
        pytest.skip(f"the GDPdU DTD is not at {DTD}")
    monkeypatch.setenv("INVOICE_PIPELINES_GDPDU_DTD", str(DTD))


def test_every_demo_organization_has_a_carrier_that_reads_back(fresh_db, tmp_path):
    seeded = seed_demo(
        fresh_db.engine, system=fresh_db.system_engine, orders_per_org=2, today=TODAY
    )
    stores = stores_in(tmp_path / "stores")
    for slug in seeded["organizations"]:
        org = find_organization(fresh_db.engine, slug)
        folder = tmp_path / slug
        write_carrier(fresh_db.engine, stores, org, TODAY.year, folder)
        assert lxml_errors(folder / "index.xml", folder / DTD.name) is None
        tables = read_carrier(folder)
        assert dangling_foreign_keys(tables) == []
        si = sales_invoices
        with tenant_transaction(fresh_db.engine, org) as conn:
            count, gross = conn.execute(
                select(func.count(), func.coalesce(func.sum(si.c.gross_total), 0)).where(
                    si.c.organization_id == org.id,
                    si.c.issue_date >= date(TODAY.year, 1, 1),
                    si.c.issue_date < date(TODAY.year + 1, 1, 1),
                )
            ).one()
            known = conn.execute(
                select(func.count()).where(customers.c.organization_id == org.id)
            ).scalar_one()
        assert len(tables["sales_invoices"].rows) == count, slug
        assert tables["sales_invoices"].sum("gross_total") == gross, slug
        assert len(tables["customers"].rows) == known > 0, slug
