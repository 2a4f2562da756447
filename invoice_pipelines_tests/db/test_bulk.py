"""db.bulk.update_rows: many rows in one statement, with a count the caller can check."""

import pytest
from sqlalchemy import insert, select

from invoice_pipelines.db.bulk import update_rows
from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import tenant_transaction


def test_only_rows_that_still_match_change_and_the_count_says_how_many(db):
    """A row whose expected value no longer holds is left alone, and the returned count says so
    on both databases (it is what change_statuses checks its optimistic locks against)."""
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ids = (
            conn.execute(
                insert(customers).returning(customers.c.id),
                [
                    {"organization_id": org["id"], "customer_number": f"C{n}", "name": f"Old {n}"}
                    for n in range(3)
                ],
            )
            .scalars()
            .all()
        )
    ids.sort()
    match = {"b_id": customers.c.id, "b_name": customers.c.name}
    rows = [
        {"name": f"New {n}", "email": f"c{n}@example.test", "b_id": ids[n], "b_name": f"Old {n}"}
        for n in range(3)
    ]
    rows[1]["b_name"] = "someone renamed it meanwhile"
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        changed = update_rows(conn, customers, match, rows)
    assert changed == 2
    with tenant_transaction(db.engine, org["id"]) as conn:
        stored = conn.execute(
            select(customers.c.name, customers.c.email)
            .where(customers.c.id.in_(ids))
            .order_by(customers.c.id)
        ).all()
    assert [tuple(r) for r in stored] == [
        ("New 0", "c0@example.test"),
        ("Old 1", None),
        ("New 2", "c2@example.test"),
    ]


def test_match_keys_that_are_column_names_are_refused(db):
    """With an executemany (SQLite) a match key named like a column would be set as well."""
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        with pytest.raises(ValueError, match="must not be columns"):
            update_rows(conn, customers, {"id": customers.c.id}, [{"name": "x", "id": 1}])
        with pytest.raises(ValueError, match="at least one row"):
            update_rows(conn, customers, {"b_id": customers.c.id}, [])
