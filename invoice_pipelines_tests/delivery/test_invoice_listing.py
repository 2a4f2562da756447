"""`invoice-pipelines invoices list` (delivery/commands/invoice_listing.py) and the step docs/demo.md's
Peppol section takes with it: find a customer's invoices by a part of its name, then `peppol
send` one of them. On SQLite and PostgreSQL, through the console script's entry (`cli.main`).

The listing: a header, the customer's invoices newest first with number, date, total, status and
the newest delivery's state, filtered by that state or the invoice's status, the rest of a batch
to other customers left out; a name no customer has is said (exit 1). The send after a batch:
exactly the chosen invoice goes over the access point stand-in, once; a second send sends
nothing. In a fresh interpreter the listing loads no Dagster and no document writer."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import insert, select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import (
    DELIVERY_STATUSES,
    SALES_INVOICE_STATUSES,
    deliveries,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.commands.cli import DELIVERY_STATES, INVOICE_STATUSES
from invoice_pipelines.delivery.commands.invoice_listing import HEADER, NOT_SENT
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_peppol_command import _number, _send, _settings
from invoice_pipelines_tests.delivery.test_peppol_command import shop as shop  # noqa: F401
from invoice_pipelines_tests.delivery.test_peppol_sending import BRASSERIE, _network, _rows
from invoice_pipelines_tests.exports.books import customer, sales_invoice
from invoice_pipelines_tests.test_cli_lazy import _areas, _loaded, _run_each

BATCH = 12  # a batch's invoices to other customers, none of them to be listed or sent


def _delivered(db, org_id: int, invoice_id: int, channel: str, status: str) -> None:
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            insert(deliveries).values(
                organization_id=org_id,
                sales_invoice_id=invoice_id,
                channel=channel,
                recipient="office@wiener-softwarehaus.at",
                status=status,
            )
        )


@pytest.fixture
def wiener(db, monkeypatch):
    """An organization with two Viennese customers and a batch to others: (org, the invoices to
    Wiener Softwarehaus oldest first)."""
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    softwarehaus = customer(db.engine, org["id"], "K-AT-1", "Wiener Softwarehaus GmbH")
    bau = customer(db.engine, org["id"], "K-AT-2", "Wiener Bau GmbH")
    bio = customer(db.engine, org["id"], "K-3", "100% Bio_Markt")
    days = [date(2026, 11, 2), date(2026, 11, 9), date(2026, 11, 16)]
    invoices = [sales_invoice(db.engine, org["id"], softwarehaus, day=day) for day in days]
    sales_invoice(db.engine, org["id"], bau)
    sales_invoice(db.engine, org["id"], bio)
    for n in range(BATCH):
        other = customer(db.engine, org["id"], f"B-{n}", f"Batch Kunde {n} GmbH")
        sales_invoice(db.engine, org["id"], other, day=date(2026, 11, 20))
    _delivered(db, org["id"], invoices[0], "email", "failed")
    _delivered(db, org["id"], invoices[0], "peppol", "sent")  # the newest row is its state
    _delivered(db, org["id"], invoices[1], "peppol", "unknown")
    return org, invoices


def _list(capsys, org: dict, *argv: str) -> tuple[int, list[str]]:
    code = main(["invoices", "list", "--org", org["slug"], *argv])
    return code, capsys.readouterr().out.splitlines()


def _ids(lines: list[str]) -> list[int]:
    return [int(line.split()[0]) for line in lines[1:] if line.split()[0].isdigit()]


def test_list_finds_a_customers_invoices_by_a_part_of_its_name(wiener, capsys):
    org, (oldest, middle, newest) = wiener
    code, lines = _list(capsys, org, "--customer", "wiener softwarehaus")
    assert code == 0
    assert lines[0].split() == list(HEADER)
    assert _ids(lines) == [newest, middle, oldest]  # newest first; the batch is not listed
    shown = {int(line.split()[0]): line for line in lines[1:]}
    assert "2026-11-16" in shown[newest] and "RE-2026-000003" in shown[newest]
    assert "Wiener Softwarehaus GmbH" in shown[newest] and "238.00 EUR" in shown[newest]
    assert shown[newest].endswith("open           not sent")
    assert shown[middle].endswith("peppol unknown")
    assert shown[oldest].endswith("peppol sent")

    assert _ids(_list(capsys, org, "--customer", "K-AT-1")[1]) == [newest, middle, oldest]
    # Wiener Bau's (issued 2026-11-10, after Softwarehaus' three) among them
    unsent = _ids(_list(capsys, org, "--customer", "Wiener", "--delivery", "not-sent")[1])
    assert unsent == [newest, newest + 1]
    unsent = _ids(_list(capsys, org, "--customer", "softwarehaus", "--delivery", "not-sent")[1])
    assert unsent == [newest]
    assert _ids(_list(capsys, org, "--customer", "Softwarehaus", "--delivery", "sent")[1]) == [
        oldest
    ]
    assert _ids(_list(capsys, org, "--customer", "Softwarehaus", "--status", "paid")[1]) == []


def test_list_names_matches_literally_limits_and_says_what_it_did_not_find(wiener, capsys):
    org, (oldest, middle, newest) = wiener
    both = _list(capsys, org, "--customer", "Wiener")[1]
    assert len(_ids(both)) == 4 and "Wiener Bau GmbH" in "\n".join(both)
    # % and _ are letters of a name, not patterns
    percent = _list(capsys, org, "--customer", "0% bio_")[1]
    assert len(_ids(percent)) == 1 and "100% Bio_Markt" in percent[1]
    assert _list(capsys, org, "--customer", "%")[1][1:] == percent[1:]
    code, limited = _list(capsys, org, "--customer", "softwarehaus", "--limit", "2")
    assert code == 0 and _ids(limited) == [newest, middle]
    assert limited[-1] == "... and more: the newest 2 shown (--limit)"
    code, nobody = _list(capsys, org, "--customer", "Grazer")
    assert code == 1 and nobody == [f"invoice-pipelines invoices list: {org['slug']} has no "
                                    "customer named 'Grazer'"]  # fmt: skip
    code, none = _list(capsys, org, "--customer", "Bau", "--delivery", "sent")
    assert code == 0 and none == ["no invoices of a customer named 'Bau' match"]
    code, rows = _list(capsys, org, "--customer", "softwarehaus", "--json")
    said = [json.loads(row) for row in rows]
    assert [s["id"] for s in said] == [newest, middle, oldest]
    assert said[1] | {"id": 0, "number": ""} == {
        "id": 0,
        "number": "",
        "date": "2026-11-09",
        "customer": "Wiener Softwarehaus GmbH",
        "customer_number": "K-AT-1",
        "gross": "238.00",
        "currency": "EUR",
        "status": "open",
        "delivery": "peppol unknown",
    }


def test_the_listing_loads_no_dagster_and_no_document_writer(db, wiener):
    org, _ = wiener
    argv = ["invoices", "list", "--org", org["slug"], "--customer", "Wiener"]
    [(code, said, modules)] = _run_each([argv], db.url)
    assert code == 0 and "Wiener Softwarehaus GmbH" in said
    # no Dagster, no migrations, no PDF, XML or Saxon, no e-invoice reader or writer
    for package in ("dagster", "alembic", "fpdf", "lxml", "saxonche", "invoice_pipelines.einvoice"):
        assert not _loaded(modules, package), package
    assert _areas(modules) == {"delivery"}  # of the others, only what --help reads (area.py)
    delivery = {m for m in modules if m.startswith("invoice_pipelines.delivery")}
    assert delivery == {
        "invoice_pipelines.delivery",
        "invoice_pipelines.delivery.area",
        "invoice_pipelines.delivery.commands",
        "invoice_pipelines.delivery.commands.cli",
        "invoice_pipelines.delivery.commands.cli_peppol",
        "invoice_pipelines.delivery.commands.invoice_listing",
    }


def test_the_demo_step_sends_the_one_invoice_listed_once_after_a_batch(
    db,
    shop,  # noqa: F811
    monkeypatch,
    capsys,
):
    """After a batch (invoices to other customers, all with documents, none sent), a person finds
    the Brasserie's invoices by name and sends the newest one over Peppol: that one goes, once;
    nothing else goes, by Peppol or e-mail; a second send says it was sent."""
    brasserie_id = _customer_of(db, shop)
    later = sales_invoice(db.engine, shop.org["id"], brasserie_id, day=date(2026, 11, 25))
    summary = generate_documents(
        db.engine, shop.store, find_organization(db.engine, shop.org["slug"])
    )
    assert summary.generated == 1 and summary.peppol == 1
    code, lines = _list(capsys, shop.org, "--customer", "brasserie", "--delivery", "not-sent")
    assert code == 0 and _ids(lines)[0] == later
    assert set(_ids(lines)) == {later, shop.invoice, shop.credit_note}
    number = lines[1].split()[1]
    assert number == _number(db, shop.org["id"], later)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url)
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        first = _send(capsys, shop, number)
        sent = ap.network.take_messages()
        again = _send(capsys, shop, number)
        nothing = ap.network.take_messages()
        mails = list(sink.mailbox.messages)
    assert first[0] == 0 and (first[1]["id"], first[1]["channel"]) == (later, "peppol")
    assert [m["message_id"] for m in sent] == [first[1]["message_id"]]
    assert sent[0]["receiver"] == f"iso6523-actorid-upis::{BRASSERIE}"
    assert again[0] == 3 and "already sent" in again[1]["reason"] and nothing == []
    assert mails == []
    assert list(_rows(db, shop.org["id"])) == [(later, "peppol", 0)]
    code, lines = _list(capsys, shop.org, "--customer", "brasserie")
    assert lines[1].split()[0] == str(later) and lines[1].endswith("peppol sent")


def _customer_of(db, shop) -> int:
    with tenant_transaction(db.engine, shop.org["id"]) as conn:
        return conn.execute(
            select(sales_invoices.c.customer_id).where(sales_invoices.c.id == shop.invoice)
        ).scalar_one()


def test_the_parsers_choices_are_the_tables_states():
    """`--status` and `--delivery` offer what the tables hold (written in delivery/commands/cli.py so
    `--help` imports no SQLAlchemy)."""
    assert INVOICE_STATUSES == SALES_INVOICE_STATUSES
    assert DELIVERY_STATES == (NOT_SENT, *DELIVERY_STATUSES)
