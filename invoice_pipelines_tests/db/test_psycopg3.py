"""The other PostgreSQL driver the settings name: `postgresql://` URLs run on psycopg 3.

The suite runs on psycopg2; psycopg 3 under SQLAlchemy 2.1 answers -1 for the row count of an
INSERT, which made every incoming export fail ("-1 items recorded for 10 invoices") and every
QuickBooks enqueue report 0. These run the same work on a psycopg 3 engine of the same database.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.quickbooks.domain.sync.invoices import enqueue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, customer, incoming, sales_invoice

pytest.importorskip("psycopg")


@pytest.fixture
def psycopg3(pg_database):
    url = make_url(pg_database.url).set(drivername="postgresql")
    engine = make_engine(url.render_as_string(hide_password=False))
    assert engine.dialect.driver == "psycopg"
    yield engine
    engine.dispose()


def test_an_incoming_month_exports_on_psycopg3(pg_database, psycopg3, tmp_path):
    org = pg_database.new_organization(**DATEV)
    ids = [
        incoming(psycopg3, org["id"], f"R-{n}", taxes=[("S", "19", "100.00", "19.00")])
        for n in range(3)
    ]
    result = run_export(
        psycopg3,
        LocalFiles(str(tmp_path)),
        find_organization(psycopg3, org["slug"]),
        "2026-11",
        "incoming",
    )

    assert result.invoice_count == 3 and result.skipped == []
    assert Path(result.files["datev"]).exists()
    with tenant_transaction(psycopg3, org["id"]) as conn:
        statuses = conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id.in_(ids))
        ).scalars()
        assert set(statuses) == {"EXPORTED"}


def test_quickbooks_enqueue_counts_on_psycopg3(pg_database, psycopg3):
    org = pg_database.new_organization(**DATEV)
    buyer = customer(psycopg3, org["id"], "K-1", "Brandt GmbH")
    for day in (date(2026, 11, 3), date(2026, 11, 4)):
        sales_invoice(psycopg3, org["id"], buyer, day=day)

    assert enqueue(psycopg3, org["id"]) == {"queued_creates": 2, "queued_voids": 0}
    assert enqueue(psycopg3, org["id"]) == {"queued_creates": 0, "queued_voids": 0}


def test_a_replayed_webhook_asks_for_nothing_again_on_psycopg3(pg_database, psycopg3):
    from invoice_pipelines_tests.conftest import TestDatabase
    from invoice_pipelines_tests.quickbooks.test_webhooks_hostile import (
        connected_organization,
        exchange,
        notification,
        pull_done,
        pull_requested,
        running,
        signed_request,
    )

    on_psycopg3 = TestDatabase("postgresql", pg_database.url, psycopg3, pg_database.owner_engine)
    org, realm = connected_organization(on_psycopg3)
    body = notification(realm)
    with running(psycopg3) as port:
        assert exchange(port, signed_request(body)) == 200
        assert pull_requested(on_psycopg3, org) is not None
        pull_done(on_psycopg3, org)
        assert exchange(port, signed_request(body)) == 200
        assert pull_requested(on_psycopg3, org) is None
