"""`invoice-pipelines customer-skonto`: a customer's own early-payment discount steps, stored,
audited, returned to the organization's default; steps that cannot be refused in one line."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.core.skonto import customer_terms
from invoice_pipelines.db.tables import audit_log, customers
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines_tests.exports.books import customer


@pytest.fixture
def cli_db(db, monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    return db


def _stored(db, org, customer_id):
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(customers.c.skonto).where(customers.c.id == customer_id)
        ).scalar_one()


def test_a_customer_gets_its_own_steps_none_and_the_default_again(cli_db, capsys):
    org = cli_db.new_organization(settings={"skonto": [{"days": 10, "percent": "2"}]})
    kunde = customer(cli_db.engine, org["id"], "K-7", "Kunde Sieben")
    command = ["customer-skonto", "--org", org["slug"], "--customer", "K-7", "--created-by", "t"]

    assert main([*command, "--steps", "7:3, 30:1.5"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "customer": "K-7",
        "skonto": [{"days": 7, "percent": "3"}, {"days": 30, "percent": "1.5"}],
    }
    own = _stored(cli_db, org, kunde)
    assert [(t.days, str(t.percent)) for t in customer_terms(own, org["settings"])] == [
        (7, "3"),
        (30, "1.5"),
    ]
    assert main([*command, "--steps", "none"]) == 0
    assert customer_terms(_stored(cli_db, org, kunde), org["settings"]) == []
    assert main([*command, "--steps", "default"]) == 0
    capsys.readouterr()
    assert _stored(cli_db, org, kunde) is None
    assert [t.days for t in customer_terms(None, org["settings"])] == [10]
    with tenant_transaction(cli_db.engine, org["id"]) as conn:
        audited = conn.execute(
            select(audit_log.c.details["skonto"], audit_log.c.created_by)
            .where(
                audit_log.c.action == "customer.skonto",
                audit_log.c.organization_id == org["id"],  # SQLite has no row-level security
            )
            .order_by(audit_log.c.id)
        ).all()
    assert [who for _, who in audited] == ["t", "t", "t"]


@pytest.mark.parametrize(
    ("steps", "says"),
    [
        ("10:60", "a discount percentage must be above 0 and below 50"),
        ("10", "days:percent separated by commas"),
        ("zehn:2", "days:percent separated by commas"),
        ("10:2,10:1", "two discount steps have the same days"),
        ("400:2", "discount days must be a whole number 0..365"),
    ],
)
def test_steps_that_cannot_be_are_refused_in_one_line_and_nothing_changes(
    cli_db, capsys, steps, says
):
    org = cli_db.new_organization()
    kunde = customer(cli_db.engine, org["id"], "K-8", "Kunde Acht")
    code = main(["customer-skonto", "--org", org["slug"], "--customer", "K-8", "--steps", steps])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert says in err and err.count("\n") == 1
    assert _stored(cli_db, org, kunde) is None


def test_an_unknown_customer_is_named(cli_db, capsys):
    org = cli_db.new_organization()
    code = main(["customer-skonto", "--org", org["slug"], "--customer", "K-404", "--steps", "7:3"])
    assert code == 2
    assert "there is no customer 'K-404' in this organization" in capsys.readouterr().err
