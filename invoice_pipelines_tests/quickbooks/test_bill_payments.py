"""Bill payments pulled from the simulator onto our incoming invoices: paid with the day and the
amount, partly paid, a supplier's Skonto taken by paying in time (and not when late), a voided
payment undone, a bill deleted in QuickBooks held for a person; a webhook about a bill payment
asks for the pull, the sensor launches it."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dagster import DagsterInstance, build_sensor_context

from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.domain.sync.common import read_cursor
from invoice_pipelines.quickbooks.domain.webhooks import receiver
from invoice_pipelines.quickbooks.sensors import qbo_webhook_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.payables_books import (
    ISSUED,
    Books,
    supplier_invoice,
    xml_of,
)

D = Decimal
VERIFIER = "verifier-token-of-the-app"


@pytest.fixture
def books(db, simulator, tmp_path) -> Books:
    books = Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    return books


def _pushed(books: Books, number: str, **invoice) -> tuple[dict, dict]:
    (doc,) = books.receive({f"{number}.xml": xml_of(supplier_invoice(number, **invoice))}).values()
    books.push()
    (bill,) = [b for b in books.qbo_records("Bill") if b["DocNumber"] == number]
    return books.document(doc["id"]), bill


def _pay(books: Books, bill: dict, amount: str, day: date) -> dict:
    return books.pay(bill, amount, day)


def test_a_bill_paid_in_quickbooks_marks_the_invoice_paid_with_day_and_amount(books):
    doc, bill = _pushed(books, "RE-1")
    first = _pay(books, bill, "100.00", ISSUED + timedelta(days=20))
    assert books.pull_payments().pulled == 1
    settled = books.settlements()[doc["id"]]
    assert (settled["status"], settled["amount_paid"], settled["amount_open"]) == (
        "partially_paid",
        D("100.00"),
        doc["gross_total"] - D("100.00"),
    )
    second = _pay(books, bill, str(doc["gross_total"] - D("100.00")), ISSUED + timedelta(days=25))
    books.pull_payments()
    settled = books.settlements()[doc["id"]]
    assert (settled["status"], settled["amount_open"], settled["last_paid_on"]) == (
        "paid",
        D("0"),
        ISSUED + timedelta(days=25),
    )
    assert settled["discount"] is None
    assert sorted((p["qbo_payment_id"], p["paid_on"], p["amount"]) for p in books.payments()) == [
        (first["Id"], ISSUED + timedelta(days=20), D("100.00")),
        (second["Id"], ISSUED + timedelta(days=25), doc["gross_total"] - D("100.00")),
    ]
    assert books.bills()[doc["id"]]["balance"] == D("0")
    # nothing changed in QBO: nothing changes here
    assert books.pull_payments().pulled == 0


def test_paying_in_time_takes_the_suppliers_skonto_and_late_does_not(books):
    doc, bill = _pushed(books, "RE-S", skonto=((10, "2"),))
    late_doc, late_bill = _pushed(books, "RE-L", skonto=((10, "2"),))
    discount = (doc["gross_total"] * D("0.02")).quantize(D("0.01"))
    _pay(books, bill, str(doc["gross_total"] - discount), ISSUED + timedelta(days=10))
    _pay(books, late_bill, str(late_doc["gross_total"] - discount), ISSUED + timedelta(days=11))
    books.pull_payments()
    settled = books.settlements()
    taken = settled[doc["id"]]
    assert (taken["status"], taken["amount_open"], taken["discount"]) == ("paid", D("0"), discount)
    assert (taken["discount_percent"], taken["discount_last_day"], taken["discount_paid_on"]) == (
        D("2.00"),
        ISSUED + timedelta(days=10),
        ISSUED + timedelta(days=10),
    )
    # the Skonto taken closes the bill in QBO too (test_bill_discounts.py): nothing open there
    assert books.bills()[doc["id"]]["balance"] == D("0")
    missed = settled[late_doc["id"]]
    assert (missed["status"], missed["discount"], missed["amount_open"]) == (
        "partially_paid",
        None,
        discount,
    )


def test_a_voided_payment_opens_the_invoice_again(books):
    doc, bill = _pushed(books, "RE-V")
    payment = _pay(books, bill, str(doc["gross_total"]), ISSUED + timedelta(days=3))
    books.pull_payments()
    assert books.settlements()[doc["id"]]["status"] == "paid"
    with books.qbo.client() as client:
        client.void_bill_payment(payment["Id"], payment["SyncToken"], requestid="void-it-once")
    books.pull_payments()
    settled = books.settlements()[doc["id"]]
    assert (settled["status"], settled["amount_paid"], settled["amount_open"]) == (
        "open",
        D("0"),
        doc["gross_total"],
    )
    assert books.payments() == []


def test_a_bill_deleted_in_quickbooks_is_held_for_a_person(books):
    doc, bill = _pushed(books, "RE-D")
    books.pull_payments()  # the first pull reads every bill; CDC's tombstones come after it
    with books.qbo.client() as client:
        client.delete_bill(bill["Id"], bill["SyncToken"], requestid="deleted-by-a-person")
    assert books.pull_payments().conflicts == 1
    assert books.bills()[doc["id"]]["state"] == "deleted"


def test_a_webhook_about_a_bill_payment_asks_for_the_pull_the_sensor_launches(books):
    doc, bill = _pushed(books, "RE-W")
    books.pull_payments()
    server = receiver(books.qbo.engine, books.qbo.db.system_engine, VERIFIER)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/qbo/webhooks"
        books.qbo.sim.configure_webhook(books.qbo.realm, url, VERIFIER, "cloudevents")
        _pay(books, bill, "10.00", ISSUED + timedelta(days=1))
        deliveries = books.qbo.sim.webhook_deliveries(books.qbo.realm)
        assert deliveries and deliveries[-1]["status"] == 200
    finally:
        books.qbo.sim.configure_webhook(books.qbo.realm, None)
        server.shutdown()
        server.server_close()
    assert read_cursor(books.qbo.engine, books.qbo.org_id, "bill_payment")["pull_requested_at"]
    slug = books.qbo.org["slug"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=books.qbo.db.url),
                "system_database": SystemDatabase(url=books.qbo.db.url),
            },
        ) as context:
            jobs = {r.job_name for r in qbo_webhook_sensor(context) if r.partition_key == slug}
    assert jobs == {"qbo_bill_payments_job"}
    assert books.pull_payments().pulled == 1
    assert books.settlements()[doc["id"]]["amount_paid"] == D("10.00")
    assert (
        read_cursor(books.qbo.engine, books.qbo.org_id, "bill_payment")["pull_requested_at"] is None
    )
