"""What a person sees of supplier invoices paid in QuickBooks (the simulator over real HTTP):
`incoming list` and `incoming show` say paid (with the day, the money and the Skonto taken),
partly paid (with what is open) or open; the qbo_bill_payments asset's metadata lists what was
paid, a bounded table however many invoices one pull changed."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import pytest
from dagster import DagsterInstance, materialize

from invoice_pipelines.cli import main
from invoice_pipelines.core.money import round_cents
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS, paid_metadata
from invoice_pipelines.quickbooks.domain.figures import PAID_ROWS_SHOWN
from invoice_pipelines.quickbooks.resources import QuickBooks
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import (
    ISSUED,
    Books,
    supplier_invoice,
    xml_of,
)

D = Decimal
IN_TIME = ISSUED + timedelta(days=10)
LATER = ISSUED + timedelta(days=20)


@pytest.fixture
def books(db, simulator, tmp_path, monkeypatch) -> Books:
    books = Books(connect(db, simulator, currency="EUR", country="DE"), tmp_path / "uploads")
    books.allow()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    return books


def _three_bills(books: Books) -> dict[str, dict]:
    """RE-P1 paid less its 2 % Skonto in time, RE-P2 paid 100.00 of it, RE-P3 not paid: each
    pushed as a bill, the payments made in QBO."""
    files = {
        f"{n}.xml": xml_of(supplier_invoice(n, skonto=((10, "2"),)))
        for n in ("RE-P1", "RE-P2", "RE-P3")
    }
    docs = {d["invoice_number"]: d for d in books.receive(files).values()}
    books.push()
    bills = {b["DocNumber"]: b for b in books.qbo_records("Bill")}
    gross = docs["RE-P1"]["gross_total"]
    books.pay(bills["RE-P1"], str(gross - round_cents(gross * D("0.02"))), IN_TIME)
    books.pay(bills["RE-P2"], "100.00", LATER)
    return docs


def _line_after(out: str, document_id: int) -> str:
    """The line under a document's line in `incoming list`."""
    lines = out.splitlines()
    (at,) = [i for i, line in enumerate(lines) if line.strip().startswith(f"{document_id} ")]
    return lines[at + 1].strip()


def test_incoming_list_and_show_say_paid_partly_paid_and_open(books, capsys):
    docs = _three_bills(books)
    books.pull_payments()
    slug = books.qbo.org["slug"]
    one, two, three = docs["RE-P1"], docs["RE-P2"], docs["RE-P3"]
    skonto = round_cents(one["gross_total"] * D("0.02"))

    assert main(["incoming", "list", "--org", slug]) == 0
    out = capsys.readouterr().out
    assert _line_after(out, one["id"]) == (
        f"paid {IN_TIME}: {one['gross_total'] - skonto} EUR, Skonto {skonto} EUR (2 %) taken"
    )
    assert _line_after(out, two["id"]) == (
        f"partly paid: 100.00 EUR (last {LATER}), {two['gross_total'] - D('100.00')} EUR open"
    )
    assert _line_after(out, three["id"]) == f"open: {three['gross_total']} EUR"

    assert main(["incoming", "list", "--org", slug, "--json"]) == 0
    listed = {
        d["invoice_number"]: d["payment"]
        for d in map(json.loads, capsys.readouterr().out.splitlines())
    }
    assert {n: p["status"] for n, p in listed.items()} == {
        "RE-P1": "paid",
        "RE-P2": "partially_paid",
        "RE-P3": "open",
    }
    assert (D(listed["RE-P1"]["discount"]), listed["RE-P1"]["last_paid_on"]) == (
        skonto,
        IN_TIME.isoformat(),
    )

    assert main(["incoming", "show", "--org", slug, "--id", str(one["id"])]) == 0
    shown = json.loads(capsys.readouterr().out)["payment"]
    assert (shown["status"], D(shown["amount_paid"]), D(shown["discount"])) == (
        "paid",
        one["gross_total"] - skonto,
        skonto,
    )
    assert [(p["paid_on"], D(p["amount"])) for p in shown["payments"]] == [
        (IN_TIME.isoformat(), one["gross_total"] - skonto)
    ]


def test_a_document_never_in_quickbooks_shows_no_payment(books, capsys):
    (doc,) = books.receive({"RE-N.xml": xml_of(supplier_invoice("RE-N"))}).values()
    assert main(["incoming", "list", "--org", books.qbo.org["slug"], "--json"]) == 0
    (listed,) = map(json.loads, capsys.readouterr().out.splitlines())
    assert (listed["id"], listed["payment"]) == (doc["id"], None)


def _resources(books: Books) -> dict:
    sim = books.qbo.sim
    return {
        "database": Database(url=books.qbo.db.url),
        "system_database": SystemDatabase(url=books.qbo.db.url),
        "quickbooks": QuickBooks(
            base_url=sim.base_url,
            token_url=sim.token_url,
            token_key=TOKEN_KEY,
            time_scale=TIME_SCALE,
        ),
    }


def test_the_bill_payments_asset_lists_what_was_paid(books):
    docs = _three_bills(books)
    slug = books.qbo.org["slug"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        result = materialize(
            [SYNC_ASSETS["bill_payments"]],
            instance=instance,
            partition_key=slug,
            resources=_resources(books),
        )
        assert result.success
        (event,) = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        assert metadata["invoices_paid_changed"].value == 2
        table = metadata["paid"].value
        one = docs["RE-P1"]
        skonto = round_cents(one["gross_total"] * D("0.02"))
        assert f"| {slug} | RE-P1 |" in table and f"| {IN_TIME} | {skonto} EUR |" in table
        assert "partly paid" in table and "RE-P2" in table and "RE-P3" not in table
        # nothing paid since: the table says so
        again = materialize(
            [SYNC_ASSETS["bill_payments"]],
            instance=instance,
            partition_key=slug,
            resources=_resources(books),
        )
        (event,) = again.get_asset_materialization_events()
        assert event.materialization.metadata["invoices_paid_changed"].value == 0


def test_the_paid_table_is_bounded_however_many_invoices_a_pull_changed():
    rows = [
        ("acme", f"RE-{i}", "Supplier", "paid", "10.00 EUR", date(2026, 11, 2), "", "0.00 EUR")
        for i in range(PAID_ROWS_SHOWN + 25)
    ]
    metadata = paid_metadata(rows)
    assert metadata["invoices_paid_changed"].value == PAID_ROWS_SHOWN + 25
    table = metadata["paid"].value
    assert table.count("| acme |") == PAID_ROWS_SHOWN
    assert "25 more" in table
