"""What the QBO push reads of the sales ledger (sales_ledger.py): the same few queries for a run of
any size, never one per invoice or per batch, on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import event

from invoice_pipelines.quickbooks.domain.client import MAX_BATCH
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items

LEDGER_TABLES = ("sales_invoices", "sales_invoice_lines", "sales_invoice_taxes")


@contextmanager
def _ledger_reads(engine):
    """The SELECTs of the sales ledger's tables sent meanwhile."""
    sent: list[str] = []

    def seen(conn, cursor, statement, *args):
        text = statement.lstrip()
        if text.upper().startswith("SELECT") and any(t in text for t in LEDGER_TABLES):
            sent.append(text)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", seen)


def _push(qbo) -> tuple[int, int]:
    """(invoices pushed, ledger reads) of one push run."""
    with _ledger_reads(qbo.engine) as sent, qbo.client() as client:
        counts = push_invoices(qbo.engine, qbo.organization, client, workers=2)
    assert counts.failed == 0, counts.errors
    return counts.pushed, len(sent)


def test_a_push_reads_the_ledger_in_as_many_queries_for_two_batches_as_for_one_invoice(qbo):
    customer = qbo.add_customer("Lesezahl GmbH", email="ap@lesezahl.example")
    item = qbo.add_item("READ", "10.00")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    qbo.add_invoice("RE-R-0000", customer, [(item, "1", "10.00"), (item, "2", "10.00")])
    one, reads_for_one = _push(qbo)
    for n in range(1, MAX_BATCH + 6):
        qbo.add_invoice(f"RE-R-{n:04d}", customer, [(item, "1", "10.00"), (item, "2", "10.00")])
    many, reads_for_many = _push(qbo)

    assert (one, many) == (1, MAX_BATCH + 5)  # two batches in the second run
    assert reads_for_many == reads_for_one
    pushed = {r["DocNumber"]: r for r in qbo.sim.records(qbo.realm, "Invoice")}
    assert len(pushed) == MAX_BATCH + 6
    assert [line["LineNum"] for line in pushed["RE-R-0007"]["Line"][:2]] == [1, 2]
