"""What the runtime login has written it cannot rewrite (issue 83, part A; migration 0056).

Each reproduction of the issue, run as a deployment runs it: a runtime login granted the
application role only, in a tenant transaction of its own organization (what SQL in any run could
do), and a system login for the work over every organization. The database refuses the runtime
login's rewrite of the audit, the seals, the register's history, a recorded hash and an
organization's lifecycle, with the error a person reads in the log; the system login's path (the
lifecycle, the retention) still does it. The owner (the suite's superuser) sets the scene.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.engine import app_role, make_engine, make_system_engine
from invoice_pipelines.db.rls import APPEND_ONLY, protect_tables, system_role
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines.tenants.domain.lifecycle import resume_organization, suspend_organization
from invoice_pipelines_tests.db.test_system_scope import login  # noqa: F401 - the fixture

REFUSED_APPEND_ONLY = "refused: the runtime login may only add to it"
HASH = "ab" * 32
OTHER = "cd" * 32


class Scene:
    """An organization with one row of each kind, the runtime and the system engine."""

    def __init__(self, db, runtime, system) -> None:
        self.db, self.runtime, self.system = db, runtime, system
        org = db.new_organization()
        self.org = org["id"]
        self.ids = {}
        with db.owner_engine.begin() as conn:

            def add(sql: str, **values) -> int:
                return conn.execute(text(sql), {"org": self.org, **values}).scalar_one()

            customer = add(
                "INSERT INTO customers (organization_id, customer_number, name) "
                "VALUES (:org, 'K-1', 'Kunde AG') RETURNING id"
            )
            invoice = add(
                "INSERT INTO sales_invoices (organization_id, customer_id, invoice_number, "
                "sequence_number, issue_date, due_date, currency, net_total, tax_total, "
                "gross_total, amount_due) VALUES (:org, :customer, 'RE-1', 1, :day, :day, 'EUR', "
                "100.00, 19.00, 119.00, 119.00) RETURNING id",
                customer=customer,
                day=date(2026, 3, 10),
            )
            self.ids["sales_invoice_documents"] = add(
                "INSERT INTO sales_invoice_documents (organization_id, sales_invoice_id, kind, "
                "status, storage_key, sha256) VALUES (:org, :invoice, 'facturx', 'generated', "
                "'k/RE-1.pdf', :hash) RETURNING id",
                invoice=invoice,
                hash=HASH,
            )
            self.ids["failed_document"] = add(
                "INSERT INTO sales_invoice_documents (organization_id, sales_invoice_id, kind, "
                "status) VALUES (:org, :invoice, 'xrechnung', 'failed') RETURNING id",
                invoice=invoice,
            )
            self.ids["dunning_notices"] = add(
                "INSERT INTO dunning_notices (organization_id, sales_invoice_id, customer_id, "
                "level, level_name, as_of, days_overdue, currency, amount_open, interest, fee, "
                "interest_total, fees_total, interest_rate_percent, total_claimed, language, "
                "channel, template, letter_sha256) VALUES (:org, :invoice, :customer, 1, "
                "'Erinnerung', :day, 20, 'EUR', 119.00, 0, 0, 0, 0, 0, 119.00, 'de', 'email', "
                "'reminder', NULL) RETURNING id",
                invoice=invoice,
                customer=customer,
                day=date(2026, 4, 10),
            )
            self.ids["uploads"] = add(
                "INSERT INTO uploads (organization_id, filename, storage_key, size_bytes, "
                "content_hash) VALUES (:org, 'a.pdf', 'u/a.pdf', 10, :hash) RETURNING id",
                hash=HASH,
            )
            self.ids["exports"] = add(
                "INSERT INTO exports (organization_id, direction, period, version, fingerprint) "
                "VALUES (:org, 'incoming', '2026-03', 1, '') RETURNING id"
            )
            supplier = add(
                "INSERT INTO suppliers (organization_id, name, name_key, origin, updated_by) "
                "VALUES (:org, 'Lieferant GmbH', 'lieferant', 'person', 'test') RETURNING id"
            )
            self.ids["suppliers"] = supplier
            self.ids["supplier_changes"] = add(
                "INSERT INTO supplier_changes (organization_id, supplier_id, action, changed_by, "
                "reason, after) VALUES (:org, :supplier, 'added', 'test', 'first invoice', "
                "'{}') RETURNING id",
                supplier=supplier,
            )
            self.ids["audit_log"] = add(
                "INSERT INTO audit_log (organization_id, created_by, action) "
                "VALUES (:org, 'test', 'created') RETURNING id"
            )
            self.ids["audit_seals"] = add(
                "INSERT INTO audit_seals (organization_id, position, audit_log_id, row_hash, "
                "chain_hash) VALUES (:org, 1, :row, :hash, :hash) RETURNING position",
                row=self.ids["audit_log"],
                hash=HASH,
            )

    def as_runtime(self, sql: str, **values) -> None:
        with tenant_transaction(self.runtime, self.org, write=True) as conn:
            conn.execute(text(sql), {"org": self.org, **values})

    def as_system(self, sql: str, **values) -> None:
        with system_transaction(self.system, write=True) as conn:
            conn.execute(text(sql), {"org": self.org, **values})

    def value(self, sql: str, **values):
        with self.db.owner_engine.connect() as conn:
            return conn.execute(text(sql), {"org": self.org, **values}).scalar()


@pytest.fixture
def scene(pg_database, login):  # noqa: F811 - the fixture
    runtime_url, system_url = login("invoice_app"), login("invoice_app_system")
    runtime = make_engine(runtime_url, system_url=system_url)
    system = make_system_engine(runtime_url, system_url=system_url)
    try:
        yield Scene(pg_database, runtime, system)
    finally:
        runtime.dispose()
        system.dispose()


def _refused(scene: Scene, sql: str, match: str, **values) -> None:
    with pytest.raises(DBAPIError, match=match):
        scene.as_runtime(sql, **values)


def test_the_runtime_login_may_add_audit_seals_and_history_but_never_change_them(scene) -> None:
    scene.as_runtime(
        "INSERT INTO audit_log (organization_id, created_by, action) VALUES (:org, 'run', 'x')"
    )
    for table in APPEND_ONLY:
        _refused(
            scene,
            f"UPDATE {table} SET organization_id = organization_id",
            f"permission denied for table {table}",
        )
        _refused(scene, f"DELETE FROM {table}", f"permission denied for table {table}")
        _refused(scene, f"TRUNCATE {table}", f"permission denied for table {table}")
    assert scene.value("SELECT count(*) FROM audit_log WHERE organization_id = :org") == 2
    assert scene.value("SELECT count(*) FROM supplier_changes WHERE organization_id = :org") == 1

    # the system login's retention path changes and deletes them
    scene.as_system(
        "UPDATE audit_log SET created_by = 'retention' WHERE id = :id", id=scene.ids["audit_log"]
    )
    for table in ("audit_seals", "audit_log", "supplier_changes"):
        scene.as_system(f"DELETE FROM {table} WHERE organization_id = :org")
    for table in APPEND_ONLY:
        assert scene.value(f"SELECT count(*) FROM {table} WHERE organization_id = :org") == 0


def test_the_trigger_refuses_even_a_runtime_login_granted_the_rights_by_hand(scene) -> None:
    """A deployment that grants its runtime login UPDATE and DELETE itself (or an old
    `protect_tables`) does not reopen the tables: the trigger asks who logged in."""
    role = app_role()
    with scene.db.owner_engine.begin() as conn:
        for table in APPEND_ONLY:
            conn.exec_driver_sql(f'GRANT UPDATE, DELETE, TRUNCATE ON "{table}" TO "{role}"')
    try:
        for table in APPEND_ONLY:
            for statement in ("UPDATE", "DELETE", "TRUNCATE"):
                sql = {
                    "UPDATE": f"UPDATE {table} SET organization_id = organization_id",
                    "DELETE": f"DELETE FROM {table}",
                    "TRUNCATE": f"TRUNCATE {table}",
                }[statement]
                _refused(scene, sql, f"{statement} of {table} {REFUSED_APPEND_ONLY}")
    finally:
        with scene.db.owner_engine.begin() as conn:
            for table in APPEND_ONLY:
                conn.exec_driver_sql(f'REVOKE UPDATE, DELETE, TRUNCATE ON "{table}" FROM "{role}"')


def test_deleting_a_supplier_does_not_take_its_history_with_it(scene) -> None:
    """The foreign key's cascade runs as the table's owner: the runtime login's delete of the
    supplier is still refused, since the trigger asks who logged in, not as whom it runs."""
    _refused(
        scene,
        "DELETE FROM suppliers WHERE id = :id",
        f"DELETE of supplier_changes {REFUSED_APPEND_ONLY}",
        id=scene.ids["suppliers"],
    )
    assert scene.value("SELECT count(*) FROM supplier_changes WHERE organization_id = :org") == 1


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("uploads", "content_hash"),
        ("sales_invoice_documents", "sha256"),
        ("dunning_notices", "letter_sha256"),
        ("exports", "fingerprint"),
    ],
)
def test_a_recorded_hash_is_filled_once_and_never_changed_or_deleted(scene, table, column) -> None:
    row = scene.ids[table]
    if scene.value(f"SELECT {column} FROM {table} WHERE id = :id", id=row) in (None, ""):
        # filled once, by the run that wrote the file
        scene.as_runtime(f"UPDATE {table} SET {column} = :hash WHERE id = :id", hash=HASH, id=row)
    _refused(
        scene,
        f"UPDATE {table} SET {column} = :other WHERE id = :id",
        rf"{table}\.{column} of row {row} is recorded and may not be changed",
        other=OTHER,
        id=row,
    )
    for emptied in ("NULL", "''"):
        _refused(
            scene,
            f"UPDATE {table} SET {column} = {emptied} WHERE id = :id",
            "is recorded and may not be changed",
            id=row,
        )
    _refused(
        scene,
        f"DELETE FROM {table} WHERE organization_id = :org",
        f"row {row} of {table} holds a recorded {column}, so it may not be deleted",
    )
    assert scene.value(f"SELECT {column} FROM {table} WHERE id = :id", id=row) == HASH
    if table == "sales_invoice_documents":
        # an invoice's failed attempts make way for the next one (documents/domain/pipeline.py):
        # they hold no hash, and the runtime login still deletes them
        failed = scene.ids["failed_document"]
        scene.as_runtime(f"DELETE FROM {table} WHERE id = :id", id=failed)
        assert scene.value(f"SELECT count(*) FROM {table} WHERE id = :id", id=failed) == 0
    # the same value again stays the run's to write
    scene.as_runtime(f"UPDATE {table} SET {column} = :hash WHERE id = :id", hash=HASH, id=row)

    scene.as_system(f"UPDATE {table} SET {column} = :other WHERE id = :id", other=OTHER, id=row)
    assert scene.value(f"SELECT {column} FROM {table} WHERE id = :id", id=row) == OTHER
    scene.as_system(f"DELETE FROM {table} WHERE id = :id", id=row)
    assert scene.value(f"SELECT count(*) FROM {table} WHERE id = :id", id=row) == 0


def _offboard(scene: Scene) -> None:
    scene.as_system(
        "UPDATE organizations SET suspended_at = now(), offboarded_at = now(), "
        "offboarded_by = 'test' WHERE id = :org"
    )


def test_the_runtime_login_may_not_lift_the_offboarding_step_by_step(scene) -> None:
    """The issue's reproduction: in one transaction set the offboarding step, write the
    register and delete its history, clear the step."""
    _offboard(scene)
    refused = "UPDATE of an organization's lifecycle refused"
    with pytest.raises(DBAPIError, match=refused):
        with tenant_transaction(scene.runtime, scene.org, write=True) as conn:
            conn.execute(
                text("UPDATE organizations SET offboarding_step = 'x' WHERE id = :org"),
                {"org": scene.org},
            )
            conn.execute(
                text("UPDATE suppliers SET notice_email = 'evil@example.com' WHERE id = :id"),
                {"id": scene.ids["suppliers"]},
            )
            conn.execute(
                text("UPDATE organizations SET offboarding_step = NULL WHERE id = :org"),
                {"org": scene.org},
            )
    _refused(
        scene,
        "UPDATE organizations SET offboarded_at = NULL, suspended_at = NULL WHERE id = :org",
        refused,
    )
    # nor its settings (its retention, its holds): the row too is kept as it is
    _refused(
        scene,
        "UPDATE organizations SET settings = '{}' WHERE id = :org",
        "is offboarded: its row too is kept as it is until the deletion",
    )
    # and without the step the register stays read-only
    _refused(
        scene,
        "UPDATE suppliers SET notice_email = 'evil@example.com' WHERE id = :id",
        "is offboarded: its data are kept read-only",
        id=scene.ids["suppliers"],
    )
    assert scene.value("SELECT offboarded_at IS NOT NULL FROM organizations WHERE id = :org")
    assert (
        scene.value("SELECT notice_email FROM suppliers WHERE id = :id", id=scene.ids["suppliers"])
        is None
    )


def test_a_temporary_table_named_organizations_does_not_switch_the_guard_off(scene) -> None:
    """0055's guard looked `organizations` up by the session's search path, where a temporary
    table of the same name, which any login may create, came first."""
    _offboard(scene)
    with pytest.raises(DBAPIError, match="is offboarded: its data are kept read-only"):
        with tenant_transaction(scene.runtime, scene.org, write=True) as conn:
            conn.exec_driver_sql(
                "CREATE TEMPORARY TABLE organizations (id bigint, slug text, "
                "offboarded_at timestamptz, offboarding_step text) ON COMMIT DROP"
            )
            conn.execute(
                text("UPDATE suppliers SET notice_email = 'evil@example.com' WHERE id = :id"),
                {"id": scene.ids["suppliers"]},
            )


def test_organizations_are_added_suspended_and_removed_by_the_system_login_only(scene) -> None:
    refused = "of an organization's lifecycle refused"
    _refused(scene, "UPDATE organizations SET suspended_at = now() WHERE id = :org", refused)
    _refused(scene, "DELETE FROM organizations WHERE id = :org", f"DELETE {refused}")
    # an organization of the id the session claims for itself
    with pytest.raises(DBAPIError, match=f"INSERT {refused}"):
        with tenant_transaction(scene.runtime, 10**12, write=True) as conn:
            conn.execute(
                text("INSERT INTO organizations (id, slug, name) VALUES (:id, 'x', 'X')"),
                {"id": 10**12},
            )
    # what a run writes of its organization stays writable
    scene.as_runtime(
        "UPDATE organizations SET settings = settings || '{\"seen\": true}' WHERE id = :org"
    )
    # the lifecycle's commands, as the system login
    org = Organization.from_row(
        scene.db.owner_engine.connect()
        .execute(text("SELECT * FROM organizations WHERE id = :org"), {"org": scene.org})
        .mappings()
        .one()
    )
    assert suspend_organization(scene.system, org, reason="unpaid", by="ops")
    assert scene.value("SELECT suspended_at IS NOT NULL FROM organizations WHERE id = :org")
    assert resume_organization(scene.system, org, by="ops") is not None
    assert scene.value("SELECT suspended_at IS NULL FROM organizations WHERE id = :org")


def test_protecting_an_append_only_table_again_does_not_reopen_it(pg_database) -> None:
    role = app_role()
    with pg_database.owner_engine.connect() as conn, conn.begin() as transaction:
        protect_tables(conn, role, list(APPEND_ONLY))
        rights = conn.execute(
            text(
                "SELECT t, has_table_privilege(:app, t, 'UPDATE'), "
                "has_table_privilege(:app, t, 'DELETE'), has_table_privilege(:app, t, 'INSERT'), "
                "has_table_privilege(:system, t, 'DELETE') FROM unnest(CAST(:tables AS text[])) t"
            ),
            {"app": role, "system": system_role(role), "tables": list(APPEND_ONLY)},
        ).all()
        transaction.rollback()
    assert {tuple(r) for r in rights} == {(t, False, False, True, True) for t in APPEND_ONLY}
