"""After the offboarding's export an organization's data are kept read-only until the deletion
(issue 75, migration 0055): the database refuses every write to them, whoever asks, with a
sentence that says why; what the law does not keep (the QuickBooks connection and its tokens) is
gone at once; the audit goes on; the other organizations write as ever. On both databases, with
row-level security on PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.tables import (
    audit_log,
    batch_jobs,
    customers,
    qbo_connections,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
from invoice_pipelines.tenants.domain.lifecycle import Refused, change_organization
from invoice_pipelines.tenants.domain.offboarding import (
    delete_organization,
    export_organization,
    tenant_tables,
)
from invoice_pipelines_tests.exports.books import DATEV, customer, sales_invoice
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY

READ_ONLY = "is offboarded: its data are kept read-only"


def _offboarded(db, tmp_path) -> tuple[dict, int]:
    org = db.new_organization(**DATEV)
    customer_id = customer(db.engine, org["id"], "K-1", "Kunde AG")
    sales_invoice(db.engine, org["id"], customer_id, day=date(2026, 3, 10))
    customer(db.engine, org["id"], "K-0", "Ohne Rechnung AG")  # nothing refers to it
    save_connection(
        db.engine,
        org["id"],
        system=db.system_engine,
        realm_id="9130",
        client_id="client",
        client_secret="secret",
        refresh_token="refresh",
        cipher=token_cipher(TOKEN_KEY),
    )
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(batch_jobs).values(
                organization_id=org["id"], kind="invoicing", status="pending", request={}
            )
        )
    export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        tmp_path / "handover",
        system=db.system_engine,
        by="anna",
    )
    return org, customer_id


def _refused(db, org_id: int, statement, *, system: bool = False) -> str:
    with pytest.raises(DBAPIError) as refused:
        if system:
            with system_transaction(db.engine, write=True) as conn:
                conn.execute(statement)
        else:
            with tenant_transaction(db.engine, org_id, write=True) as conn:
                conn.execute(statement)
    return str(refused.value.orig)


def test_every_write_to_an_offboarded_organization_is_refused_and_others_go_on(db, tmp_path):
    org, customer_id = _offboarded(db, tmp_path)
    other = db.new_organization()
    slug = org["slug"]
    attempts = {
        "insert": insert(customers).values(
            organization_id=org["id"], customer_number="K-2", name="Neu GmbH"
        ),
        "update": update(sales_invoices)
        .where(sales_invoices.c.organization_id == org["id"])
        .values(due_date=date(2026, 5, 1)),
        "delete": delete(customers).where(
            customers.c.organization_id == org["id"], customers.c.customer_number == "K-0"
        ),
    }
    for name, statement in attempts.items():
        message = _refused(db, org["id"], statement)
        assert READ_ONLY in message, (name, message)
        if db.kind == "postgresql":
            assert slug in message
    # a sensor's or maintenance's transaction over every organization is refused alike
    everyone = update(customers).values(name=customers.c.name)
    assert READ_ONLY in _refused(db, org["id"], everyone, system=True)
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert (
            conn.execute(select(customers.c.name).where(customers.c.id == customer_id)).scalar_one()
            == "Kunde AG"
        )
    # the other organization writes as ever; the audit of the offboarded one goes on
    customer(db.engine, other["id"], "K-1", "Andere AG")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(audit_log).values(
                organization_id=org["id"],
                created_by="auditor",
                action="read",
                entity_type="organization",
                entity_id=slug,
                details={},
            )
        )
    with pytest.raises(Refused, match="is offboarded"):
        change_organization(
            db.engine, find_organization(db.engine, slug), {"name": "N"}, by="anna", why="x"
        )


def test_what_the_law_does_not_keep_is_gone_after_the_export_and_the_deletion_still_works(
    db, tmp_path
):
    org, _ = _offboarded(db, tmp_path)
    with tenant_transaction(db.engine, org["id"]) as conn:
        # the QuickBooks connection with its tokens: gone; the unfinished job: cancelled
        assert (
            conn.execute(
                select(func.count()).where(qbo_connections.c.organization_id == org["id"])
            ).scalar_one()
            == 0
        )
        assert conn.execute(
            select(batch_jobs.c.status).where(batch_jobs.c.organization_id == org["id"])
        ).scalars().all() == ["cancelled"]
        # the booking documents stay
        assert (
            conn.execute(
                select(func.count()).where(sales_invoices.c.organization_id == org["id"])
            ).scalar_one()
            == 1
        )
        thinned = conn.execute(
            select(audit_log.c.details).where(
                audit_log.c.organization_id == org["id"],
                audit_log.c.action == "organization_thinned",
            )
        ).scalar_one()
    assert thinned["removed"]["qbo_connections"] == 1
    deleted = delete_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        system=db.system_engine,
        by="anna",
        today=date(2035, 1, 1),
    )
    assert deleted.rows["sales_invoices"] == 1


def test_every_tenant_table_but_the_audit_has_the_read_only_triggers(db):
    wanted = {t.name for t in tenant_tables()} - {"audit_log", "audit_seals"}
    with db.owner_engine.connect() as conn:
        catalog = (
            "SELECT tgname FROM pg_trigger WHERE tgname LIKE :like"
            if db.kind == "postgresql"
            else "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE :like"
        )
        names = conn.execute(text(catalog), {"like": "%_read_only_%"}).scalars()
        found = set(names)
    missing = sorted(
        f"{table}_read_only_{operation}"
        for table in wanted
        for operation in ("insert", "update", "delete")
        if f"{table}_read_only_{operation}" not in found
    )
    assert not missing, "a tenant table without the read-only triggers (migration 0055's)"
