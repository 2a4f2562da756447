"""History (invoices a migration brought in) never goes to QuickBooks Online on its own: the sales
push leaves its invoices and credit notes out, the push sensor asks no run for it, the bill push
makes no bill and no vendor of a supplier invoice that is history, the bill sensor and the check
`bills_waiting` do not count it as waiting. A person who chooses it in the launchpad pushes it."""

from __future__ import annotations

from dagster import (
    DagsterInstance,
    build_asset_check_context,
    build_sensor_context,
)
from sqlalchemy import update

from invoice_pipelines.billing.domain.credit_notes import issue_credit_note
from invoice_pipelines.db.tables import incoming_invoices, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.checks import qbo_bills_waiting_check
from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
from invoice_pipelines.quickbooks.domain.sync.invoices import push_invoices
from invoice_pipelines.quickbooks.domain.sync.items import sync_items
from invoice_pipelines.quickbooks.jobs import qbo_push_bills_job
from invoice_pipelines.quickbooks.sensors import qbo_bill_push_sensor, qbo_push_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_devtools.demo.invoices import LOGISTICS_SUPPLIER
from invoice_pipelines_tests.quickbooks.conftest import connect
from invoice_pipelines_tests.quickbooks.payables_books import supplier_invoice, xml_of
from invoice_pipelines_tests.quickbooks.test_invoices import _queue
from invoice_pipelines_tests.quickbooks.test_payables_defs import _books, _resources


def _history(engine, org_id: int, table, *ids: int) -> None:
    with tenant_transaction(engine, org_id, write=True) as conn:
        conn.execute(update(table).where(table.c.id.in_(ids)).values(history=True))


def _synced(qbo):
    buyer = qbo.add_customer("Historie GmbH", email="buch@historie.example")
    hour = qbo.add_item("HOUR", "78.50")
    with qbo.client() as client:
        sync_customers(qbo.engine, qbo.organization, client)
        sync_items(qbo.engine, qbo.organization, client)
    return buyer, hour


def _push(qbo):
    with qbo.client() as client:
        return push_invoices(qbo.engine, qbo.organization, client)


def test_the_push_leaves_history_invoices_and_credit_notes_out(qbo):
    buyer, hour = _synced(qbo)
    past = qbo.add_invoice("RE-2024-0001", buyer, [(hour, "1", "78.50")])
    today = qbo.add_invoice("RE-2026-0001", buyer, [(hour, "2", "78.50")])
    _history(qbo.engine, qbo.org_id, sales_invoices, past)

    assert _push(qbo).pushed == 1
    assert [r["DocNumber"] for r in qbo.sim.records(qbo.realm, "Invoice")] == ["RE-2026-0001"]
    assert (past, "create") not in _queue(qbo)
    # a credit note the migration brought in (of an invoice in QBO) is no CreditMemo either
    note = issue_credit_note(
        qbo.engine,
        find_organization(qbo.engine, qbo.org_id),
        "RE-2026-0001",
        reason="migrated",
        lines=None,
    )
    _history(qbo.engine, qbo.org_id, sales_invoices, note.id)
    assert _push(qbo).pushed == 0
    assert qbo.sim.records(qbo.realm, "CreditMemo") == []
    assert {invoice for invoice, _ in _queue(qbo)} == {today}


def _asked(sensor, db, slug: str) -> list:
    """The run requests of one tick of `sensor` over the organization `slug`."""
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            result = sensor(context)
    if isinstance(result, list):
        return result
    return list(getattr(result, "run_requests", None) or [])  # a SkipReason: none


def test_the_push_sensor_asks_no_run_for_history_alone(db, simulator):
    qbo = connect(db, simulator)
    buyer, hour = _synced(qbo)
    past = [qbo.add_invoice(f"RE-2024-{n:04d}", buyer, [(hour, "1", "78.50")]) for n in (1, 2)]
    _history(qbo.engine, qbo.org_id, sales_invoices, *past)
    assert _asked(qbo_push_sensor, db, qbo.org["slug"]) == []

    qbo.add_invoice("RE-2026-0001", buyer, [(hour, "1", "78.50")])
    [request] = _asked(qbo_push_sensor, db, qbo.org["slug"])
    assert request.partition_key == qbo.org["slug"]


def test_the_bill_push_leaves_history_alone_and_the_launchpad_pushes_it(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    docs = books.receive(
        {
            "past.xml": xml_of(supplier_invoice("NH-2024-1", seller=LOGISTICS_SUPPLIER)),
            "today.xml": xml_of(supplier_invoice("RE-2026-1")),
        }
    )
    past, today = docs["past.xml"]["id"], docs["today.xml"]["id"]
    _history(books.qbo.engine, books.qbo.org_id, incoming_invoices, past)
    books.allow()
    slug = books.qbo.org["slug"]

    books.pull_vendors()  # no vendor is made for the history's supplier
    books.push()
    assert [b["DocNumber"] for b in books.qbo_records("Bill")] == ["RE-2026-1"]
    assert LOGISTICS_SUPPLIER.name not in {v["DisplayName"] for v in books.qbo_records("Vendor")}
    assert books.document(past)["status"] == "VALIDATED"
    assert books.document(today)["status"] == "EXPORTED"
    # nothing is left to push: no run
    assert _asked(qbo_bill_push_sensor, db, slug) == []

    # a person chooses the history document in the launchpad: it becomes a bill
    result = qbo_push_bills_job.execute_in_process(
        run_config={
            "ops": {"push_chosen_bills": {"config": {"organization": slug, "document_ids": [past]}}}
        },
        resources=_resources(books),
    )
    assert result.success
    assert result.output_for_node("push_chosen_bills")["documents"][str(past)].startswith("Bill ")
    assert sorted(b["DocNumber"] for b in books.qbo_records("Bill")) == ["NH-2024-1", "RE-2026-1"]


def test_the_check_does_not_count_history_as_waiting_to_become_a_bill(
    fresh_db, simulator, tmp_path
):
    books = _books(fresh_db, simulator, tmp_path)
    (past,) = books.receive({"past.xml": xml_of(supplier_invoice("RE-2024-9"))}).values()
    _history(books.qbo.engine, books.qbo.org_id, incoming_invoices, past["id"])
    database = Database(url=fresh_db.url)
    system_database = SystemDatabase(url=fresh_db.url)
    # the organization books bills in QuickBooks, but nothing but history is there: no run,
    # nothing waits
    books.allow(create_vendors=False)
    assert qbo_bills_waiting_check(
        build_asset_check_context(), database=database, system_database=system_database
    ).passed
    assert _asked(qbo_bill_push_sensor, fresh_db, books.qbo.org["slug"]) == []

    books.receive({"today.xml": xml_of(supplier_invoice("RE-2026-9"))})
    assert len(_asked(qbo_bill_push_sensor, fresh_db, books.qbo.org["slug"])) == 1
    books.push()  # no vendor to create: today's invoice waits for a person, the history does not
    waiting = qbo_bills_waiting_check(
        build_asset_check_context(), database=database, system_database=system_database
    )
    assert not waiting.passed and waiting.metadata["waiting"].value == 1


def test_a_person_who_names_a_history_invoice_pushes_it(qbo):
    """`qbo-sync --what invoices --invoice ID`: the named invoice is queued, history or not, and
    the push sends it; the history beside it that nobody named stays out."""
    from invoice_pipelines.quickbooks.domain.sync.invoices import enqueue

    buyer, hour = _synced(qbo)
    named = qbo.add_invoice("RE-2024-0007", buyer, [(hour, "1", "78.50")])
    other = qbo.add_invoice("RE-2024-0008", buyer, [(hour, "3", "78.50")])
    _history(qbo.engine, qbo.org_id, sales_invoices, named, other)

    assert enqueue(qbo.engine, qbo.org_id, named=[named])["queued_creates"] == 1
    assert _push(qbo).pushed == 1
    assert [r["DocNumber"] for r in qbo.sim.records(qbo.realm, "Invoice")] == ["RE-2024-0007"]
    assert {invoice for invoice, _ in _queue(qbo)} == {named}


def test_naming_an_invoice_is_for_the_invoice_push_only(sqlite_database, monkeypatch, capsys):
    from invoice_pipelines.cli import main

    org = sqlite_database.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", sqlite_database.url)
    assert main(["qbo-sync", "--org", org["slug"], "--what", "bills", "--invoice", "7"]) == 2
    assert "--what invoices" in capsys.readouterr().err
