"""Hostile text in what we send to QuickBooks (customer DisplayName, invoice line descriptions) and
in what we pull from it: the QBO simulator, over real HTTP, accepts it as written or refuses it,
and the refusal is a recorded per-item error; the sync run itself never fails."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from invoice_pipelines.db.tables import customers, qbo_push_queue
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.names import qbo_display_name
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines_devtools.qbo_simulator.wire import Fault
from invoice_pipelines_tests.quickbooks.conftest import connect

FRAGMENTS = (
    '=HYPERLINK("http://evil.example")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\x00",
    "\r",
    "\n",
    "\t",
    "\x1b[31m",
    "\u202e",
    "\u200b",
    "\ufeff",
    "😀",
    '"',
    "'",
    "<b>",
    "&amp;",
    ":",
    "\\",
    " ",
    "Ä" * 120,
)
hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(
            alphabet=st.characters(categories=("L", "N", "P", "S", "Zs", "Cc", "Cf")), max_size=8
        ),
    ),
    min_size=1,
    max_size=4,
).map("".join)
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _storable(db, text: str) -> str:
    # PostgreSQL text cannot hold NUL at all: such a customer cannot exist on our side there
    return text.replace("\x00", "") if db.kind == "postgresql" else text


@SETTINGS
@given(name=hostile, description=hostile)
@example(name="Evil\r\nGmbH =1+1", description="Zeile\x00zwei\r\n\u202e")
@example(name="   ", description="\x1b[31m")
def test_hostile_names_and_line_texts_are_pushed_or_refused_per_item(
    db, simulator, name, description
):
    qbo = connect(db, simulator)
    name = _storable(db, name)[:255]
    description = _storable(db, description)[:512]
    customer = qbo.add_customer(name or "x", customer_number="C-1")
    item = qbo.add_item("TOOL", "10.00")
    invoice = qbo.add_invoice("RE-1", customer, [(item, "1", "10.00")])
    with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
        from invoice_pipelines.db.tables import sales_invoice_lines

        conn.execute(
            sales_invoice_lines.update()
            .where(sales_invoice_lines.c.sales_invoice_id == invoice)
            .values(description=description)
        )
    with qbo.client() as client:  # an exception out of these is the failure looked for
        pushed = sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
        invoices = push_invoices(qbo.engine, qbo.organization, client)

    mapping = qbo.mapping("customer", customer)
    if mapping is not None and mapping.get("qbo_id"):
        record = next(
            r for r in qbo.sim.records(qbo.realm, "Customer") if r["Id"] == mapping["qbo_id"]
        )
        # accepted as written, or as QBO takes it (no colon, tab or line break)
        assert record["DisplayName"] == qbo_display_name(name or "x")
    else:
        assert pushed.failed >= 1 and any("C-1" in e for e in pushed.errors), pushed.errors
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        rows = (
            conn.execute(select(qbo_push_queue).where(qbo_push_queue.c.sales_invoice_id == invoice))
            .mappings()
            .all()
        )
    assert rows, "the invoice has no recorded push outcome"
    for row in rows:
        if row["status"] == "pushed":
            sent = next(
                r for r in qbo.sim.records(qbo.realm, "Invoice") if r["DocNumber"] == "RE-1"
            )
            assert sent["Line"][0]["Description"] == description
        else:
            assert row["status"] == "failed" and row["error_message"], dict(row)
            assert invoices.failed >= 1


@SETTINGS
@given(name=hostile)
@example(name="Null\x00Byte GmbH")
@example(name="Zeile\r\nzwei")
def test_hostile_names_pulled_from_quickbooks_are_stored_or_refused_per_record(db, simulator, name):
    qbo = connect(db, simulator)
    if not name.strip():
        return  # QBO itself refuses a blank DisplayName
    if any(ch in name[:500] for ch in ":\t\n\r"):
        # QBO refuses a colon, tab or line break in a DisplayName (2040): no one can enter it
        with pytest.raises(Fault) as refused:
            simulator.create_as_user(qbo.realm, "Customer", {"DisplayName": name[:500]})
        assert refused.value.code == "2040"
        return
    simulator.create_as_user(qbo.realm, "Customer", {"DisplayName": name[:500]})
    simulator.create_as_user(qbo.realm, "Customer", {"DisplayName": "Ordinary GmbH"})
    with qbo.client() as client:
        counts = sync_customers(qbo.engine, qbo.organization, client)  # must not raise
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        names = set(
            conn.execute(
                select(customers.c.name).where(customers.c.organization_id == qbo.org_id)
            ).scalars()
        )
    assert "Ordinary GmbH" in names  # one hostile record does not stop the others
    # QBO keeps the name stripped; we drop NUL, which PostgreSQL cannot store (found by this test:
    # a NUL in a DisplayName failed the whole customer sync on PostgreSQL)
    expected = name[:500].strip().replace("\x00", "")[:255]
    if expected.strip():
        assert expected in names or (counts.failed >= 1 and counts.errors), names
