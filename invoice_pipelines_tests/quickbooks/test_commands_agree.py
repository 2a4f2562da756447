"""One truth in commands, checks and the UI (issue 56): counts count objects, the bill push's
vendors materialize qbo_vendors, the bills_waiting check and `qbo-payables` list the same
waiting invoices, and `qbo-sync` finds the demo's QuickBooks settings on its own and never
advises a key that would leave the stored tokens unreadable."""

from __future__ import annotations

import json
from pathlib import Path

from dagster import DagsterInstance, build_asset_check_context, materialize

from invoice_pipelines.cli import main
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.quickbooks.assets import SYNC_ASSETS
from invoice_pipelines.quickbooks.checks import qbo_bills_waiting_check
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines_devtools.demo.invoices import LOGISTICS_SUPPLIER, SOFTWARE_SUPPLIER
from invoice_pipelines_devtools.demo.quickbooks import demo_key, write_command_settings
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import Books, supplier_invoice, xml_of
from invoice_pipelines_tests.quickbooks.test_payables_defs import _resources

QBO_VARS = (
    "INVOICE_PIPELINES_QBO_BASE_URL",
    "INVOICE_PIPELINES_QBO_TOKEN_URL",
    "INVOICE_PIPELINES_QBO_TOKEN_KEY",
)


def _three_suppliers(books: Books) -> dict[str, dict]:
    """Three supplier invoices of three suppliers none of which QuickBooks knows yet."""
    return books.receive(
        {
            "a.xml": xml_of(supplier_invoice("RE-T1")),
            "b.xml": xml_of(supplier_invoice("NH-T2", seller=LOGISTICS_SUPPLIER)),
            "c.xml": xml_of(supplier_invoice("DW-T3", seller=SOFTWARE_SUPPLIER)),
        }
    )


def _books(database, simulator, tmp_path, **company) -> Books:
    options = {"currency": "EUR", "country": "DE", **company}
    return Books(connect(database, simulator, **options), tmp_path / "uploads")


def _materialize_bills(books: Books) -> dict[str, dict]:
    """qbo_bills alone materialized for the organization: each asset's latest metadata."""
    slug = books.qbo.org["slug"]
    with DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
        result = materialize(
            [SYNC_ASSETS["bills"]],
            instance=instance,
            partition_key=slug,
            resources=_resources(books),
        )
        assert result.success
        found = {}
        for name in ("qbo_bills", "qbo_vendors"):
            event = instance.get_latest_materialization_event(_key(name))
            if event is not None:
                materialization = event.asset_materialization
                assert materialization.partition == slug
                found[name] = {k: v.value for k, v in materialization.metadata.items()}
    return found


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def test_the_bill_push_counts_bills_not_the_vendors_it_made_on_the_way(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    _three_suppliers(books)
    books.allow()
    found = _materialize_bills(books)
    assert len(books.qbo_records("Bill")) == 3
    assert len(books.qbo_records("Vendor")) == 3
    assert found["qbo_bills"]["pushed"] == 3  # was 6: the three vendors counted as bills


def test_vendors_the_bill_push_creates_materialize_qbo_vendors(db, simulator, tmp_path):
    books = _books(db, simulator, tmp_path)
    _three_suppliers(books)
    books.allow()
    found = _materialize_bills(books)
    # qbo_vendors was "never materialized" although the run made three vendors
    assert found["qbo_vendors"]["pushed"] == 3
    assert found["qbo_vendors"]["held"] == 0


def _command_env(monkeypatch, books: Books, data_dir: Path | None = None) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", books.qbo.db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_STORAGE", "local")
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(books.root))
    monkeypatch.setenv("INVOICE_PIPELINES_DATA_DIR", str(data_dir or books.root.parent / "data"))
    for name in QBO_VARS:
        monkeypatch.delenv(name, raising=False)


def _use_simulator(monkeypatch, books: Books) -> None:
    sim = books.qbo.sim
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_BASE_URL", sim.base_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_URL", sim.token_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_KEY", TOKEN_KEY)


def test_qbo_sync_of_vendors_counts_each_vendor_once(db, simulator, tmp_path, monkeypatch, capsys):
    books = _books(db, simulator, tmp_path)
    _three_suppliers(books)
    books.allow()
    books.push()  # three vendors and three bills, no vendor sync yet
    _command_env(monkeypatch, books)
    _use_simulator(monkeypatch, books)
    capsys.readouterr()
    assert main(["qbo-sync", "--org", books.qbo.org["slug"], "--what", "vendors"]) == 0
    vendors = json.loads(capsys.readouterr().out)["vendors"]
    # the first pull imports them and then reads QBO's changes, which are the same three
    assert (vendors["unchanged"], vendors["pulled"], vendors["pushed"]) == (3, 0, 0)
    assert main(["qbo-sync", "--org", books.qbo.org["slug"], "--what", "vendors"]) == 0
    assert json.loads(capsys.readouterr().out)["vendors"]["unchanged"] == 3


def _payables_waiting(monkeypatch, books: Books, capsys) -> list[dict]:
    _command_env(monkeypatch, books)
    capsys.readouterr()
    assert main(["qbo-payables", "--org", books.qbo.org["slug"], "--json"]) == 0
    return json.loads(capsys.readouterr().out)["waiting_bills"]


def test_the_waiting_check_and_qbo_payables_name_the_same_invoices(
    fresh_db, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(fresh_db, simulator, tmp_path)
    docs = _three_suppliers(books)
    check = qbo_bills_waiting_check(
        build_asset_check_context(),
        database=Database(url=fresh_db.url),
        system_database=SystemDatabase(url=fresh_db.url),
    )
    listed = _payables_waiting(monkeypatch, books, capsys)
    # no expense account yet: the organization books no bills in QuickBooks (its supplier
    # invoices are for DATEV), so none of them waits, in both (issue 73)
    assert check.passed and check.metadata["waiting"].value == len(listed) == 0
    assert len(docs) == 3

    # an account, no vendors allowed: each waits for its vendor, in both
    books.allow(create_vendors=False)
    books.push()
    check = qbo_bills_waiting_check(
        build_asset_check_context(),
        database=Database(url=fresh_db.url),
        system_database=SystemDatabase(url=fresh_db.url),
    )
    listed = _payables_waiting(monkeypatch, books, capsys)
    assert check.metadata["waiting"].value == len(listed) == 3
    assert {row["waits_for"] for row in listed} == {"vendor"}


def test_qbo_sync_finds_the_demo_s_quickbooks_without_variables(
    db, simulator, tmp_path, monkeypatch, capsys
):
    data_dir = tmp_path / "data"
    # the demo's own key file, as seed-demo writes it (here the key the test connected with)
    (data_dir / "qbo").mkdir(parents=True)
    (data_dir / "qbo" / "token.key").write_text(TOKEN_KEY + "\n")
    assert demo_key(data_dir) == TOKEN_KEY
    books = _books(db, simulator, tmp_path)
    _three_suppliers(books)
    books.allow()
    # what the demo's simulator writes when it starts (make run)
    write_command_settings(data_dir, simulator.base_url, simulator.token_url)
    _command_env(monkeypatch, books, data_dir)
    capsys.readouterr()
    assert main(["qbo-sync", "--org", books.qbo.org["slug"], "--what", "bills"]) == 0
    bills = json.loads(capsys.readouterr().out)["bills"]
    assert bills["pushed"] == 3 and bills["vendors_on_the_way"]["pushed"] == 3
    assert len(books.qbo_records("Bill")) == 3


def test_a_missing_key_never_advises_one_that_leaves_the_tokens_unreadable(
    db, simulator, tmp_path, monkeypatch, capsys
):
    books = _books(db, simulator, tmp_path)
    _command_env(monkeypatch, books, tmp_path / "no-demo-here")
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_BASE_URL", simulator.base_url)
    monkeypatch.setenv("INVOICE_PIPELINES_QBO_TOKEN_URL", simulator.token_url)
    capsys.readouterr()
    assert main(["qbo-sync", "--org", books.qbo.org["slug"], "--what", "vendors"]) == 2
    error = capsys.readouterr().err
    assert "INVOICE_PIPELINES_QBO_TOKEN_KEY" in error
    assert "generate_key" not in error and "new key" in error  # says why not to make one
    assert "unreadable" in error
