"""What 0056 left (issue 83; migration 0058): the side tables' triggers write the real side table
whatever temporary table a runtime session made, and an incoming invoice's content hash is
written once. Run as a deployment runs it: the runtime login in a tenant transaction of its own
organization, the system login beside it (test_append_only.py's scene)."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines_tests.db.test_append_only import HASH, OTHER, scene  # noqa: F401
from invoice_pipelines_tests.db.test_system_scope import login  # noqa: F401 - the fixture


def _with_temporary_table(scene, temporary: str, sql: str, **values) -> None:  # noqa: F811
    """`sql` in a runtime session that first made a temporary table named like a real one."""
    with tenant_transaction(scene.runtime, scene.org, write=True) as conn:
        conn.exec_driver_sql(temporary)
        conn.execute(text(sql), {"org": scene.org, **values})


def test_a_reviewed_order_reaches_billing_past_a_temporary_side_table(scene) -> None:  # noqa: F811
    customer = scene.value(
        "SELECT id FROM customers WHERE organization_id = :org AND customer_number = 'K-1'"
    )
    _with_temporary_table(
        scene,
        "CREATE TEMPORARY TABLE reviewed_sales_orders (sales_order_id bigint UNIQUE, "
        "organization_id bigint, order_date date) ON COMMIT DROP",
        "INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, "
        "status) VALUES (:org, 'A-1', :customer, :day, 'reviewed')",
        customer=customer,
        day=date(2026, 3, 1),
    )
    _with_temporary_table(
        scene,
        "CREATE TEMPORARY TABLE reviewed_sales_orders (sales_order_id bigint UNIQUE, "
        "organization_id bigint, order_date date) ON COMMIT DROP",
        "INSERT INTO sales_orders (organization_id, order_number, customer_id, order_date, "
        "status) VALUES (:org, 'A-2', :customer, :day, 'draft'); "
        "UPDATE sales_orders SET status = 'reviewed' WHERE order_number = 'A-2' "
        "AND organization_id = :org",
        customer=customer,
        day=date(2026, 3, 2),
    )
    assert scene.value(
        "SELECT array_agg(o.order_number ORDER BY o.order_number) FROM reviewed_sales_orders r "
        "JOIN sales_orders o ON o.id = r.sales_order_id WHERE r.organization_id = :org"
    ) == ["A-1", "A-2"]


def test_a_validated_invoice_reaches_the_export_past_a_temporary_side_table(scene) -> None:  # noqa: F811
    temporary = (
        "CREATE TEMPORARY TABLE incoming_validated (organization_id bigint, "
        "incoming_invoice_id bigint, UNIQUE (organization_id, incoming_invoice_id)) ON COMMIT DROP"
    )
    _with_temporary_table(
        scene,
        temporary,
        "INSERT INTO incoming_invoices (organization_id, content_hash, status) "
        "VALUES (:org, :hash, 'VALIDATED')",
        hash=uuid.uuid4().hex,
    )
    _with_temporary_table(
        scene,
        temporary,
        "INSERT INTO incoming_invoices (organization_id, content_hash, status) "
        "VALUES (:org, :hash, 'PARSED'); UPDATE incoming_invoices SET status = 'VALIDATED' "
        "WHERE organization_id = :org AND content_hash = :hash",
        hash="b" + uuid.uuid4().hex,
    )
    assert scene.value("SELECT count(*) FROM incoming_validated WHERE organization_id = :org") == 2


def test_an_incoming_invoices_content_hash_is_written_once(scene) -> None:  # noqa: F811
    scene.as_runtime(
        "INSERT INTO incoming_invoices (organization_id, content_hash, status) "
        "VALUES (:org, :hash, 'UPLOADED')",
        hash=HASH,
    )
    row = scene.value(
        "SELECT id FROM incoming_invoices WHERE organization_id = :org AND content_hash = :hash",
        hash=HASH,
    )
    for changed in (OTHER, ""):
        with pytest.raises(
            DBAPIError,
            match=rf"incoming_invoices\.content_hash of row {row} is recorded and may not be changed",
        ):
            scene.as_runtime(
                "UPDATE incoming_invoices SET content_hash = :changed WHERE id = :id",
                changed=changed,
                id=row,
            )
    # the rest of the row stays the intake's to write
    scene.as_runtime("UPDATE incoming_invoices SET status = 'PARSED' WHERE id = :id", id=row)
    assert scene.value("SELECT content_hash FROM incoming_invoices WHERE id = :id", id=row) == HASH
    # the system login's retention path may
    scene.as_system(
        "UPDATE incoming_invoices SET content_hash = :other WHERE id = :id", other=OTHER, id=row
    )
    assert scene.value("SELECT content_hash FROM incoming_invoices WHERE id = :id", id=row) == OTHER
