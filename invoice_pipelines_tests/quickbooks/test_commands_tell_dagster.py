"""A command's change is in the UI without a run (issue 73): against the real Dagster webserver
on loopback (the instance make run uses), `incoming review --confirm` and `qbo-sync --what
bill_payments` (the QuickBooks simulator over real HTTP) each leave a runless materialization of
their assets for the organization's partition, with the figures a run records, read back as the
UI reads it (GraphQL: the asset's latest materialization of that partition); and each check of
those assets evaluated on that materialization (GraphQL's `executionForLatestMaterialization`,
what the UI shows beside the asset: null is "Not evaluated"), with the finding the run's check
makes; `suppliers confirm` the same for the register. With no webserver, the command answers as
ever, with one line on stderr."""

from __future__ import annotations

import json
import os
import urllib.request
from decimal import Decimal

import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.core.money import round_cents
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.supplier_register import add_supplier
from invoice_pipelines_devtools.browser import local_ui
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


CHECKS = """
query Checks($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      assetChecksOrError {
        __typename
        ... on AssetChecks {
          checks {
            name
            executionForLatestMaterialization {
              runId
              status
              evaluation {
                severity
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
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def webserver(tmp_path_factory, sqlite_database):
    home = tmp_path_factory.mktemp("webserver")
    local_ui.write_instance(home)
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": sqlite_database.url}
    with local_ui.webserver(home, env, home / "webserver.log") as server:
        try:
            server.wait_until_up(180)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield server.base


def _graphql(webserver: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{webserver}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = json.load(response)
    assert "errors" not in data, data["errors"]
    return data["data"]


def _checks_shown(webserver: str, asset: str) -> dict[str, dict | None]:
    """Each check of the asset as the UI shows it beside the asset's latest materialization:
    its status, severity, partition, run (empty: recorded without one) and metadata by label;
    None where the UI says "Not evaluated"."""
    node = _graphql(webserver, CHECKS, {"key": {"path": [asset]}})["assetNodeOrError"]
    assert node["__typename"] == "AssetNode", node
    shown = {}
    for check in node["assetChecksOrError"]["checks"]:
        execution = check["executionForLatestMaterialization"]
        if execution is None:
            shown[check["name"]] = None
            continue
        evaluation = execution["evaluation"]
        shown[check["name"]] = {
            "status": execution["status"],
            "run": execution["runId"],
            "severity": evaluation["severity"],
            "partition": evaluation["partition"],
            **{e["label"]: e.get("intValue", e.get("text")) for e in evaluation["metadataEntries"]},
        }
    return shown


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

    # every check of both assets is evaluated on what the review reported (none "Not
    # evaluated"), recorded by the command: the organization's three judge its documents ...
    checks = _checks_shown(webserver, "incoming_invoices")
    assert None not in checks.values() and len(checks) == 5, checks
    assert {c["run"] for c in checks.values()} == {""}
    judging = (
        "no_failed_documents",
        "no_documents_waiting_for_review",
        "validated_invoices_exportable",
    )
    for name in judging:
        assert (checks[name]["status"], checks[name]["partition"]) == ("SUCCEEDED", org["slug"])
    assert checks["no_failed_documents"]["processed"] == 1
    assert checks["no_documents_waiting_for_review"]["in_review"] == 0
    # ... and the two over every organization (the session's database: others' documents too)
    # are evaluated as their runs evaluate them, failing only with what they count
    for name, count in (("no_stuck_documents", "stuck_documents"),
                        ("discounts_not_expiring", "expiring_discounts")):  # fmt: skip
        assert checks[name]["partition"] is None and checks[name]["severity"] == "WARN"
        assert (checks[name]["status"] == "SUCCEEDED") == (checks[name][count] == 0)
    register_checks = _checks_shown(webserver, "supplier_register")
    assert {n: c["status"] for n, c in register_checks.items()} == {
        "suppliers_told_apart": "SUCCEEDED",
        "booked_documents_from_registered_suppliers": "SUCCEEDED",
    }


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
    # qbo_bill_payments has no check of its own; the pull read each bill's total and balance
    # anew, which qbo_bills' checks read: both are evaluated now, by the command
    assert _checks_shown(webserver, "qbo_bill_payments") == {}
    bills = _checks_shown(webserver, "qbo_bills")
    assert set(bills) == {"bills_waiting", "bill_amounts_agree"} and None not in bills.values()
    # over every organization of the session's database: this one's bill is at its total and
    # waits for nothing, and each check fails only with what it lists
    for name, count, table in (("bills_waiting", "waiting", "documents"),
                               ("bill_amounts_agree", "differing", "bills")):  # fmt: skip
        check = bills[name]
        assert (check["run"], check["partition"]) == ("", None)
        assert (check["status"] == "SUCCEEDED") == (check[count] == 0)
        assert slug not in (check.get(table) or "")


def test_a_supplier_confirmation_evaluates_the_registers_checks_on_what_it_reported(
    webserver, sqlite_database, monkeypatch, capsys
):
    db = sqlite_database
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        real = add_supplier(conn, org["id"], name="Bürobedarf Schroder GmbH",
                            vat_id="DE111111111", changed_by="anna", reason="contract")  # fmt: skip
        # registered by its first invoice: a look-alike of the real one (a digit for a
        # letter), unconfirmed
        twin = add_supplier(conn, org["id"], name="Bürobedarf Schr0der GmbH",
                            vat_id="DE900000001", changed_by="policy:first_invoice",
                            reason="first invoice", origin="first_invoice")  # fmt: skip
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", webserver)
    argv = ["suppliers", "confirm", "--org", org["slug"], "--id", str(twin), "--version", "1"]
    argv += ["--by", "anna", "--reason", "called them", "--despite-lookalike"]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["confirmed"] is True and said.err == ""

    register = _latest(webserver, "supplier_register", org["slug"])
    assert register is not None and register["run"] == ""
    assert register["recorded_by"] == "suppliers confirm by anna"
    checks = _checks_shown(webserver, "supplier_register")
    # the two look alike (a person confirmed it despite that): the check warns, naming both
    told_apart = checks["suppliers_told_apart"]
    assert (told_apart["status"], told_apart["severity"]) == ("FAILED", "WARN")
    assert told_apart["run"] == "" and told_apart["partition"] == org["slug"]
    assert told_apart["look_alike_groups"] == 1
    assert f"{real}: " in told_apart["groups"] and f"{twin}: " in told_apart["groups"]
    assert "share a name" in told_apart["description"]
    assert checks["booked_documents_from_registered_suppliers"]["status"] == "SUCCEEDED"


def test_without_a_webserver_a_command_answers_and_says_so_in_one_line(
    sqlite_database, tmp_path, monkeypatch, capsys
):
    db = sqlite_database
    org = db.new_organization()
    doc = run_intake(db, tmp_path, org, {"r.xml": basic_wl("TELL-2")})["r.xml"]
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    # a port nothing listens on (the webserver fixture's is taken; ui picks a free one)
    monkeypatch.setenv("INVOICE_PIPELINES_DAGSTER_URL", f"http://127.0.0.1:{local_ui.free_port()}")
    review = ["incoming", "review", "--org", org["slug"], "--id", str(doc["id"]), "--by", "anna"]
    argv = [*review, "--confirm", "--version", str(doc["processing_version"])]
    assert main(argv) == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["status"] == "VALIDATED"
    (line,) = said.err.splitlines()
    assert line.startswith("note: Dagster not told of this change") and "incoming_invoices" in line
