"""The sales ledger's reads (sales_ledger.py) on SQLite and PostgreSQL: an invoice with its
customer and, for a credit note, the invoice it corrects; rows that point at invoices read with
their fields in the same query; the credit notes of invoices; lines and VAT breakdowns in order;
and many invoices in a fixed number of queries, one per CHUNK ids, never one per invoice."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from decimal import Decimal

from sqlalchemy import event, insert, select

from invoice_pipelines import sales_ledger
from invoice_pipelines.db.tables import (
    customers,
    qbo_push_queue,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import tenant_transaction

D = Decimal


def _invoice(conn, org_id: int, customer_id: int, number: str, **values) -> int:
    gross = values.pop("gross_total", D("119.00"))
    sequence = (
        conn.execute(
            select(sales_invoices.c.sequence_number)
            .where(sales_invoices.c.organization_id == org_id)
            .order_by(sales_invoices.c.sequence_number.desc())
        ).scalar()
        or 0
    ) + 1
    return conn.execute(
        insert(sales_invoices)
        .values(
            organization_id=org_id,
            invoice_number=number,
            sequence_number=sequence,
            customer_id=customer_id,
            issue_date=values.pop("issue_date", date(2026, 11, 2)),
            due_date=date(2026, 12, 1),
            currency="EUR",
            net_total=(gross / D("1.19")).quantize(D("0.01")),
            tax_total=gross - (gross / D("1.19")).quantize(D("0.01")),
            gross_total=gross,
            amount_due=gross,
            **values,
        )
        .returning(sales_invoices.c.id)
    ).scalar_one()


def _ledger(db):
    """An organization with a customer, two invoices (two lines and two VAT rows each, stored
    out of line order) and a credit note of the first."""
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        customer = conn.execute(
            insert(customers)
            .values(
                organization_id=org["id"],
                customer_number="K-7",
                name="Kunde Sieben GmbH",
                city="Köln",
                document_format="pdf",
            )
            .returning(customers.c.id)
        ).scalar_one()
        first = _invoice(conn, org["id"], customer, "RE-1")
        second = _invoice(conn, org["id"], customer, "RE-2", gross_total=D("238.00"))
        note = _invoice(
            conn,
            org["id"],
            customer,
            "GS-1",
            gross_total=D("-11.90"),
            type_code="381",
            corrects_invoice_id=first,
            credit_reason="one hour not worked",
            issue_date=date(2026, 11, 5),
        )
        for invoice_id in (first, second):
            for line_no in (2, 1):
                conn.execute(
                    insert(sales_invoice_lines).values(
                        organization_id=org["id"],
                        sales_invoice_id=invoice_id,
                        line_no=line_no,
                        description=f"line {line_no}",
                        quantity=D("1"),
                        unit_price=D("50.00"),
                        net_amount=D("50.00"),
                        vat_rate=D("19.00"),
                    )
                )
            for rate in ("19.00", "7.00"):
                conn.execute(
                    insert(sales_invoice_taxes).values(
                        organization_id=org["id"],
                        sales_invoice_id=invoice_id,
                        vat_category="S",
                        vat_rate=D(rate),
                        basis=D("50.00"),
                        amount=(D("50.00") * D(rate) / 100).quantize(D("0.01")),
                    )
                )
    return org["id"], customer, first, second, note


@contextmanager
def _queries(engine):
    """The statements sent to the database meanwhile (the list fills as they are sent)."""
    sent: list[str] = []

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def test_an_invoice_reads_with_its_customer_and_a_credit_note_with_its_invoice(db):
    org_id, _customer, first, second, note = _ledger(db)
    with tenant_transaction(db.engine, org_id) as conn:
        rows = sales_ledger.read_invoices(
            conn,
            org_id,
            [first, second, note],
            "invoice_number",
            "customer_name",
            "customer_number",
            "customer_document_format",
            "corrects_number",
            "corrects_date",
            total="gross_total",
        )
    by_number = {row.invoice_number: row for row in rows}
    assert set(by_number) == {"RE-1", "RE-2", "GS-1"}
    assert by_number["GS-1"].corrects_number == "RE-1"
    assert by_number["GS-1"].corrects_date == date(2026, 11, 2)
    assert by_number["GS-1"].total == D("-11.90")
    assert by_number["RE-2"].corrects_number is None  # an invoice corrects nothing
    assert {(r.customer_name, r.customer_number, r.customer_document_format) for r in rows} == {
        ("Kunde Sieben GmbH", "K-7", "pdf")
    }


def test_another_organizations_invoices_are_not_read(db):
    org_id, _customer, first, _second, _note = _ledger(db)
    other = db.new_organization()
    with tenant_transaction(db.engine, other["id"]) as conn:
        assert sales_ledger.read_invoices(conn, other["id"], [first], "invoice_number") == []
        assert sales_ledger.read_credit_notes(conn, other["id"], [first], "invoice_number") == []


def test_rows_that_point_at_invoices_read_their_fields_in_the_same_query(db):
    org_id, _customer, first, second, note = _ledger(db)
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            insert(qbo_push_queue),
            [
                {
                    "organization_id": org_id,
                    "sales_invoice_id": invoice_id,
                    "action": action,
                    "status": "pending",
                    "request_id": f"r-{invoice_id}-{action}",
                }
                for invoice_id, action in ((first, "create"), (note, "credit"))
            ],
        )
    q = qbo_push_queue.c
    read = ("invoice_number", "customer_name", "corrects_number")
    with tenant_transaction(db.engine, org_id) as conn, _queries(db.engine) as sent:
        rows = conn.execute(
            select(q.action, *sales_ledger.fields(*read))
            .select_from(sales_ledger.joined_to(qbo_push_queue, q.sales_invoice_id, *read))
            .where(q.organization_id == org_id)
            .order_by(q.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("create", "RE-1", "Kunde Sieben GmbH", None),
        ("credit", "GS-1", "Kunde Sieben GmbH", "RE-1"),
    ]
    assert len(sent) == 1


def test_the_credit_notes_of_invoices(db):
    org_id, _customer, first, second, note = _ledger(db)
    with tenant_transaction(db.engine, org_id) as conn:
        notes = sales_ledger.read_credit_notes(
            conn, org_id, [first, second], "id", "corrects_invoice_id", "gross_total"
        )
    assert [tuple(n) for n in notes] == [(note, first, D("-11.90"))]


def test_lines_and_vat_breakdowns_come_in_their_order_a_chunk_of_ids_to_a_query(db, monkeypatch):
    org_id, _customer, first, second, note = _ledger(db)
    monkeypatch.setattr(sales_ledger, "CHUNK", 2)
    ids = [first, second, note]
    with tenant_transaction(db.engine, org_id) as conn, _queries(db.engine) as sent:
        lines = sales_ledger.read_lines(conn, ids)
        taxes = sales_ledger.read_vat_breakdowns(conn, ids)
        invoices = sales_ledger.read_invoices(conn, org_id, ids, "id", "customer_name")
    assert {i: [line["line_no"] for line in lines[i]] for i in ids} == {
        first: [1, 2],
        second: [1, 2],
        note: [],
    }
    assert [rate for _category, rate, _basis, _amount in taxes[second]] == [D("19.00"), D("7.00")]
    assert {row.id for row in invoices} == set(ids)
    # three ids, two to a query: two queries for each read, whatever the number of invoices
    assert len(sent) == 6


def test_a_read_joins_only_what_its_fields_come_from():
    assert "customers" not in str(sales_ledger.select_invoices("id", "gross_total"))
    assert "corrected" not in str(sales_ledger.select_invoices("id", "customer_name"))
    assert "corrected" in str(sales_ledger.select_invoices("id", "corrects_number"))
