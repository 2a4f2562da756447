"""Tenancy in the keys (issue 54, migration 0034): a row that refers to another tenant row refers to
one of its own organization, and the database says so, not only the policies.

Seventeen foreign keys between tenant tables named the parent's `id` alone: a document of one
organization could point at another organization's upload (`UPDATE 1`). Every such key is now
`(organization_id, <column>)` -> `parent (organization_id, id)`. The checks below read the table
definitions and the migrated databases, so a tenant table added later with a key that forgets the
organization fails here. PostgreSQL and SQLite.
"""

from __future__ import annotations

import uuid
from datetime import date

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import current_revision, upgrade
from invoice_pipelines.db.tables import (
    TENANT_TABLES,
    customers,
    incoming_invoices,
    metadata,
    organizations,
    processing_errors,
    sales_orders,
    uploads,
)
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction

ORG = "organization_id"


def _keys_without_the_organization(keys: dict[str, list[dict]], tenant: set[str]) -> list[str]:
    """`table(columns) -> parent(columns)` for each foreign key from a tenant table to another
    tenant table that does not pair the row's organization_id with its parent's.

    `keys`: table -> its foreign keys as SQLAlchemy's inspector gives them (constrained_columns,
    referred_table, referred_columns)."""
    bad = []
    for table, foreign_keys in sorted(keys.items()):
        if table not in tenant:
            continue
        for key in foreign_keys:
            if key["referred_table"] not in tenant:
                continue
            pairs = set(zip(key["constrained_columns"], key["referred_columns"], strict=True))
            if (ORG, ORG) not in pairs:
                bad.append(
                    f"{table}({', '.join(key['constrained_columns'])}) -> "
                    f"{key['referred_table']}({', '.join(key['referred_columns'])})"
                )
    return bad


def _metadata_keys(meta: sa.MetaData) -> dict[str, list[dict]]:
    return {
        table.name: [
            {
                "constrained_columns": [element.parent.name for element in key.elements],
                "referred_table": key.referred_table.name,
                "referred_columns": [element.column.name for element in key.elements],
            }
            for key in table.foreign_key_constraints
        ]
        for table in meta.tables.values()
    }


def test_the_check_names_a_key_that_forgets_the_organization() -> None:
    """The check below can fail: a later tenant table with a plain `parent_id` key is named."""
    meta = sa.MetaData()
    sa.Table("organizations", meta, sa.Column("id", sa.Integer, primary_key=True))
    for name in ("parents", "children"):
        sa.Table(
            name,
            meta,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column(ORG, sa.Integer, sa.ForeignKey("organizations.id")),
            sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id")),
            sa.UniqueConstraint(ORG, "id"),
        )
    assert _keys_without_the_organization(_metadata_keys(meta), {"parents", "children"}) == [
        "children(parent_id) -> parents(id)",
        "parents(parent_id) -> parents(id)",
    ]


def test_every_key_between_tenant_tables_carries_the_organization() -> None:
    assert _keys_without_the_organization(_metadata_keys(metadata), set(TENANT_TABLES)) == []
    # and there are such keys to check: the 17 of 0034 among them
    keys = _metadata_keys(metadata)
    assert {k["referred_table"] for k in keys["sales_invoices"]} >= {"customers", "sales_orders"}


def test_the_migrated_database_has_them_too(db) -> None:
    """What the migrations made, read back from the database (tables only a migration knows
    included): every key from a tenant table to another carries the organization."""
    inspector = sa.inspect(db.owner_engine)
    tables = [t for t in inspector.get_table_names() if not t.startswith("invoice_pipelines_")]
    tenant = {
        t
        for t in tables
        if t != "organizations" and ORG in {c["name"] for c in inspector.get_columns(t)}
    }
    keys = {t: inspector.get_foreign_keys(t) for t in tables}
    assert set(TENANT_TABLES) <= tenant
    assert _keys_without_the_organization(keys, tenant) == [], db.kind
    # the report's case, as the database has it now
    assert {
        (tuple(k["constrained_columns"]), tuple(k["referred_columns"]))
        for k in keys["incoming_invoices"]
        if k["referred_table"] == "uploads"
    } == {((ORG, "upload_id"), (ORG, "id"))}, db.kind


def _upload(conn, organization_id: int) -> int:
    key = uuid.uuid4().hex
    return conn.execute(
        sa.insert(uploads)
        .values(
            organization_id=organization_id,
            filename="rechnung.pdf",
            storage_key=f"{organization_id}/{key}",
            size_bytes=10,
            content_hash=key,
        )
        .returning(uploads.c.id)
    ).scalar_one()


def _document(conn, organization_id: int, upload_id: int | None) -> int:
    return conn.execute(
        sa.insert(incoming_invoices)
        .values(organization_id=organization_id, upload_id=upload_id, content_hash=uuid.uuid4().hex)
        .returning(incoming_invoices.c.id)
    ).scalar_one()


def _customer(conn, organization_id: int) -> int:
    return conn.execute(
        sa.insert(customers)
        .values(organization_id=organization_id, customer_number=uuid.uuid4().hex, name="Kunde")
        .returning(customers.c.id)
    ).scalar_one()


def test_a_document_cannot_point_at_another_organizations_upload(db) -> None:
    """The report's reproduction: organization 3's document set to organization 1's upload."""
    ours, theirs = db.new_organization()["id"], db.new_organization()["id"]
    with tenant_transaction(db.engine, theirs, write=True) as conn:
        their_upload = _upload(conn, theirs)
    with tenant_transaction(db.engine, ours, write=True) as conn:
        our_upload = _upload(conn, ours)
        document = _document(conn, ours, our_upload)

    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        with tenant_transaction(db.engine, ours, write=True) as conn:
            conn.execute(
                sa.update(incoming_invoices)
                .where(incoming_invoices.c.id == document)
                .values(upload_id=their_upload)
            )
    with pytest.raises(IntegrityError, match="(?i)foreign key"):
        with tenant_transaction(db.engine, ours, write=True) as conn:
            _document(conn, ours, their_upload)

    with tenant_transaction(db.engine, ours) as conn:
        kept = conn.execute(
            sa.select(incoming_invoices.c.upload_id).where(incoming_invoices.c.id == document)
        ).scalar_one()
    assert kept == our_upload
    # a document without an upload is not checked against one (MATCH SIMPLE), as before
    with tenant_transaction(db.engine, ours, write=True) as conn:
        assert _document(conn, ours, None) > 0


def test_rows_of_one_organization_refer_to_their_own_organizations_rows(db) -> None:
    """Two more of the 17: an order for another organization's customer, a finding on another
    organization's document; each refused, each accepted for its own organization's row."""
    ours, theirs = db.new_organization()["id"], db.new_organization()["id"]
    with tenant_transaction(db.engine, theirs, write=True) as conn:
        their_customer = _customer(conn, theirs)
        their_document = _document(conn, theirs, None)
    with tenant_transaction(db.engine, ours, write=True) as conn:
        our_customer = _customer(conn, ours)
        our_document = _document(conn, ours, None)

    def order(customer_id: int) -> dict:
        return {
            "organization_id": ours,
            "order_number": uuid.uuid4().hex,
            "customer_id": customer_id,
            "order_date": date(2026, 11, 26),
        }

    def finding(document_id: int) -> dict:
        return {
            "organization_id": ours,
            "incoming_invoice_id": document_id,
            "stage": "parse",
            "message": "unreadable",
        }

    for table, crossing, own in (
        (sales_orders, order(their_customer), order(our_customer)),
        (processing_errors, finding(their_document), finding(our_document)),
    ):
        with pytest.raises(IntegrityError, match="(?i)foreign key"):
            with tenant_transaction(db.engine, ours, write=True) as conn:
                conn.execute(sa.insert(table).values(crossing))
        with tenant_transaction(db.engine, ours, write=True) as conn:
            conn.execute(sa.insert(table).values(own))


def test_the_upgrade_names_rows_that_cross_and_changes_nothing(tmp_path, pg_scratch_factory):
    """A database at 0033 holding rows that refer across organizations: 0034 stops, naming each
    table, column and (a sample of) the row ids, and the database stays at 0033. With the rows
    corrected, the upgrade goes through and keeps them."""
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0033") == "0033"
        with system_transaction(engine, write=True) as conn:
            first, second = (
                conn.execute(
                    sa.insert(organizations)
                    .values(slug=slug, name=slug.title())
                    .returning(organizations.c.id)
                ).scalar_one()
                for slug in ("erste", "zweite")
            )
            upload = _upload(conn, first)
            own_document = _document(conn, first, upload)
            crossing_document = _document(conn, second, upload)
            conn.execute(
                sa.insert(processing_errors),
                [
                    {
                        "organization_id": second,
                        "incoming_invoice_id": own_document,
                        "stage": "parse",
                        "message": f"finding {i}",
                    }
                    for i in range(12)
                ],
            )
            findings = (
                conn.execute(sa.select(processing_errors.c.id).order_by(processing_errors.c.id))
                .scalars()
                .all()
            )

        with pytest.raises(RuntimeError) as stopped:
            upgrade(engine, "0034")
        message = str(stopped.value)
        assert f"incoming_invoices.upload_id -> uploads: 1 row (id {crossing_document})" in (
            message
        ), kind
        shown = ", ".join(str(i) for i in findings[:10])
        assert (
            "processing_errors.incoming_invoice_id -> incoming_invoices: 12 rows "
            f"(ids {shown} and 2 more)"
        ) in message, kind
        assert "sales_orders" not in message, kind
        assert current_revision(engine) == "0033", kind

        with system_transaction(engine, write=True) as conn:
            conn.execute(
                sa.update(incoming_invoices)
                .where(incoming_invoices.c.id == crossing_document)
                .values(upload_id=None)
            )
            conn.execute(sa.delete(processing_errors))
        assert upgrade(engine, "0034") == "0034", kind
        with system_transaction(engine) as conn:
            documents = conn.execute(
                sa.select(incoming_invoices.c.id, incoming_invoices.c.upload_id).order_by(
                    incoming_invoices.c.id
                )
            ).all()
        assert [tuple(d) for d in documents] == [
            (own_document, upload),
            (crossing_document, None),
        ], kind
        engine.dispose()
