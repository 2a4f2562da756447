"""A command's change is in the UI without a run (issue 73): against the real Dagster webserver
on loopback (the instance make run uses), `incoming review --confirm` and `qbo-sync --what
bill_payments` (the QuickBooks simulator over real HTTP) each leave a runless materialization of
their assets for the organization's partition, with the figures a run records, read back as the
UI reads it (GraphQL: the asset's latest materialization of that partition). With no webserver,
the command answers as ever, with one line on stderr."""

from __future__ import annotations

import json
import os
import urllib.request
from decimal import Decimal

import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.core.money import round_cents
from invoice_pipelines_tests.browser import ui
from invoice_pipelines_tests.intake.test_review import basic_wl, run_intake
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY, connect
from invoice_pipelines_tests.quickbooks.payables_books import (
    ISSUED,
    Books,
    supplier_invoice,
    xml_of,
)

LATEST = """
query Latest($key: AssetKeyInput!, $partition: String!) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset {
      assetMaterializations(partitions: [$partition], limit: 1) {
        runId
        partition
        metadataEntries {
          label
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, sqlite_database):
    home = tmp_path_factory.mktemp("webserver")
    ui.write_instance(home)
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": sqlite_database.url}
    with ui.webserver(home, env, home / "webserver.log") as server:
        try:
            server.wait_until_up(180)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server.base


def _latest(webserver: str, asset: str, partition: str) -> dict | None:
    """The asset's latest materialization of the partition as the UI reads it: its run id
    (empty: recorded without a run) and its metadata by label."""
    request = urllib.request.Request(
        f"{webserver}/graphql",
        data=json.dumps(
            {"query": LATEST, "variables": {"key": {"path": [asset]}, "partition": partition}}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)
    assert "errors" not in data, data["errors"]
    found = data["data"]["assetOrError"]
    if found["__typename"] != "Asset" or not found["assetMaterializations"]:
        return None
    (latest,) = found["assetMaterializations"]
    shown = {e["label"]: e.get("intValue", e.get("text")) for e in latest["metadataEntries"]}
    return {"run": latest["runId"], "partition": latest["partition"], **shown}


def test_a_review_confirmation_is_in_the_ui_without_a_run(
    webserver, sqlite_database, tmp_path, monkeypatch, capsys
):
    db = sqlite_database
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("TELL-1")})["r.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    assert _latest(webserver, "incoming_invoices", org["slug"]) is None
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", webserver)
    review = ["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]), "--by", "anna"]
    argv = [*review, "--confirm", "--version", str(doc["processing_version"])]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["status"] == "VALIDATED" and said.err == ""

    shown = _latest(webserver, "incoming_invoices", org["slug"])
    assert shown is not None and shown["run"] == "" and shown["partition"] == org["slug"]
    assert (shown["count_validated"], shown["waiting_for_review"], shown["total"]) == (1, 0, 1)
    assert shown["recorded_by"] == "incoming review by anna"
    # the confirmation taught the register the seller: the register's asset shows it now
    register = _latest(webserver, "supplier_register", org["slug"])
    assert register is not None and register["run"] == ""
    assert doc["seller_name"] in register["suppliers_table"]
    assert register["recorded_by"] == "incoming review by anna"


def test_a_payment_pull_is_in_the_ui_without_a_run(
    webserver, sqlite_database, simulator, tmp_path, monkeypatch, capsys
):
    books = Books(connect(sqlite_database, simulator, currency="EUR", country="DE"), tmp_path)
    books.allow()
    (doc,) = books.receive({"p.xml": xml_of(supplier_invoice("RE-TELL"))}).values()
    books.push()
    (bill,) = books.qbo_records("Bill")
    paid = round_cents(Decimal("100.00"))
    books.pay(bill, str(paid), ISSUED)
    slug = books.qbo.org["slug"]
    for name, value in {
        "INVOICE_PIPELINES_DB_URL": sqlite_database.url,
        "INVOICE_PIPELINES_QBO_BASE_URL": simulator.base_url,
        "INVOICE_PIPELINES_QBO_TOKEN_URL": simulator.token_url,
        "INVOICE_PIPELINES_QBO_TOKEN_KEY": TOKEN_KEY,
        "INVOICE_PIPELINES_DAGSTER_URL": webserver,
    }.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["qbo-sync", "--org", slug, "--what", "bill_payments"]) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["bill_payments"]["failed"] == 0 and said.err == ""

    shown = _latest(webserver, "qbo_bill_payments", slug)
    assert shown is not None and shown["run"] == "" and shown["partition"] == slug
    assert (shown["organizations"], shown["invoices_paid_changed"]) == (1, 1)
    assert "RE-TELL" in shown["paid"] and "partly paid" in shown["paid"]
    assert f"{paid} EUR" in shown["paid"]
    assert shown["recorded_by"] == "qbo-sync"


def test_without_a_webserver_a_command_answers_and_says_so_in_one_line(
    sqlite_database, tmp_path, monkeypatch, capsys
):
    db = sqlite_database
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("TELL-2")})["r.xml"]
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    # a port nothing listens on (the webserver fixture's is taken; ui picks a free one)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", f"http://127.0.0.1:{ui.free_port()}")
    review = ["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]), "--by", "anna"]
    argv = [*review, "--confirm", "--version", str(doc["processing_version"])]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["status"] == "VALIDATED"
    (line,) = said.err.splitlines()
    assert line.startswith("note: Dagster not told of this change") and "incoming_invoices" in line
