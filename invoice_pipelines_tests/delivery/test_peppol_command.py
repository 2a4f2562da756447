"""`invoice-pipelines peppol lookup` and `peppol send` through the console script's entry
(`cli.main`), against the access point stand-in over loopback (devtools/standins/peppol.py) and a
real SMTP server, the application database on SQLite and PostgreSQL.

`lookup` answers what the SMP holds (ACCEPTS, NOT_THIS_DOCUMENT, NOT_ON_PEPPOL) with its exit code,
refuses an id the Peppol rules refuse naming the rule, and says when the access point could not
be asked. `send` sends one invoice at most once through the outbox: a second send sends nothing,
`--resend` sends it again; an unknown outcome is not sent again without `--resend`; an invoice
that cannot go over Peppol is e-mailed as the e-mail run would, saying why. In a fresh interpreter
neither command loads Dagster."""

from __future__ import annotations

import json
import socket
import uuid

import pytest
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import customers, organizations, sales_invoices
from invoice_pipelines.db.tenancy import system_transaction, tenant_transaction
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR
from invoice_pipelines_tests.delivery.test_peppol_sending import (
    BAECKEREI,
    BRASSERIE,
    TOKEN,
    _network,
    _rows,
    _shop,
)
from invoice_pipelines_tests.test_cli_lazy import KIND_AREAS, _check_imports, _run_each


def _lookup(capsys, *argv: str) -> tuple[int, str]:
    code = main(["peppol", "lookup", *argv])
    return code, capsys.readouterr().out


def _settings(monkeypatch, url: str, token: str = TOKEN) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_PEPPOL_AP_URL", url)
    monkeypatch.setenv("INVOICE_PIPELINES_PEPPOL_AP_TOKEN", token)


def test_lookup_says_what_the_smp_holds_and_refuses_a_malformed_id(monkeypatch, capsys):
    with AccessPointStandIn(network=_network()) as ap:
        _settings(monkeypatch, ap.url)
        accepts = _lookup(capsys, BRASSERIE)
        prefixed = _lookup(capsys, f"iso6523-actorid-upis::{BRASSERIE}")
        credit_note = _lookup(capsys, BRASSERIE, "--document", "credit-note")
        unknown = _lookup(capsys, BAECKEREI)
        checksum = _lookup(capsys, "0208:0123456700")
        scheme = _lookup(capsys, "9999:12345")
        _settings(monkeypatch, ap.url, token="wrong")
        refused = _lookup(capsys, BRASSERIE)
    assert accepts == (0, f"ACCEPTS: {BRASSERIE} takes Peppol BIS Billing 3.0 invoices\n")
    assert prefixed == accepts
    assert credit_note[0] == 1
    assert credit_note[1].startswith(f"NOT_THIS_DOCUMENT: {BRASSERIE} is on Peppol")
    assert "credit notes" in credit_note[1]
    assert unknown == (1, f"NOT_ON_PEPPOL: {BAECKEREI} is not registered in the Peppol SMP\n")
    assert checksum[0] == 2 and "PEPPOL-COMMON-R043" in checksum[1]
    assert scheme[0] == 2 and "PEPPOL-EN16931-CL008" in scheme[1]
    assert refused[0] == 3 and "could not be asked" in refused[1] and "403" in refused[1]


def test_lookup_of_an_access_point_that_does_not_answer_is_said(monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on once closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _settings(monkeypatch, f"http://127.0.0.1:{port}")
    code, said = _lookup(capsys, BRASSERIE)
    assert code == 3
    assert "the access point could not be asked" in said and "try again later" in said


@pytest.fixture
def shop(db, tmp_path, monkeypatch):
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")
    shop = _shop(db, tmp_path)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_STORAGE", "local")
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path / "documents"))
    monkeypatch.setenv("INVOICE_PIPELINES_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("INVOICE_PIPELINES_SMTP_FROM", "rechnung@mueller.example")
    return shop


def _number(db, org_id: int, invoice_id: int) -> str:
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(sales_invoices.c.invoice_number).where(sales_invoices.c.id == invoice_id)
        ).scalar_one()


def _send(capsys, shop, invoice: str, *more: str) -> tuple[int, dict]:
    code = main(["peppol", "send", "--org", shop.org["slug"], "--invoice", invoice, *more])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_send_sends_one_invoice_once_and_again_only_when_asked(db, shop, monkeypatch, capsys):
    number = _number(db, shop.org["id"], shop.invoice)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url)
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        first = _send(capsys, shop, number)
        [message] = ap.network.take_messages()
        again = _send(capsys, shop, str(shop.invoice))  # by its id: the same invoice
        nothing = ap.network.take_messages()
        resent = _send(capsys, shop, number, "--resend")
        [second] = ap.network.take_messages()
        mails = list(sink.mailbox.messages)
    assert first == (
        0,
        {
            "invoice": number,
            "id": shop.invoice,
            "outcome": "sent",
            "channel": "peppol",
            "message_id": message["message_id"],
        },
    )
    assert message["receiver"] == f"iso6523-actorid-upis::{BRASSERIE}"
    assert again[0] == 3 and again[1]["outcome"] == "not sent"
    assert "already sent" in again[1]["reason"] and nothing == []
    assert resent[0] == 0 and resent[1]["message_id"] == second["message_id"]
    assert second["message_id"] != message["message_id"]
    assert second["document"] == message["document"]
    assert mails == []  # nothing went by e-mail
    rows = _rows(db, shop.org["id"])
    assert sorted(key for key in rows if key[0] == shop.invoice) == [
        (shop.invoice, "peppol", 0),
        (shop.invoice, "peppol", 1),
    ]
    assert rows[(shop.invoice, "peppol", 1)].transport_message_id == second["message_id"]


def test_send_of_a_lost_answer_is_unknown_and_not_sent_again_without_resend(
    db, shop, monkeypatch, capsys
):
    number = _number(db, shop.org["id"], shop.invoice)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url)
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        ap.network.keep_then_answer.append(0)  # kept, then the connection closed: no answer
        lost = _send(capsys, shop, number)
        assert len(ap.network.take_messages()) == 1
        again = _send(capsys, shop, number)
        assert ap.network.take_messages() == []
        resent = _send(capsys, shop, number, "--resend")
        assert len(ap.network.take_messages()) == 1
        assert list(sink.mailbox.messages) == []
    assert lost[0] == 1 and (lost[1]["outcome"], lost[1]["channel"]) == ("unknown", "peppol")
    assert again[0] == 3 and "already unknown" in again[1]["reason"]
    assert resent[0] == 0 and resent[1]["outcome"] == "sent"


def test_send_of_what_cannot_go_over_peppol_is_emailed_saying_why(db, shop, monkeypatch, capsys):
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url)
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        # the Brasserie's SMP registration takes invoices, not credit notes
        note = _send(capsys, shop, str(shop.credit_note))
        missing = main(["peppol", "send", "--org", shop.org["slug"], "--invoice", "RE-NO"])
        refused = capsys.readouterr()
        assert ap.network.take_messages() == []
        [mail] = sink.mailbox.messages
    assert note[0] == 0 and (note[1]["outcome"], note[1]["channel"]) == ("sent", "email")
    assert "does not take Peppol BIS Billing 3.0 credit notes" in note[1]["reason"]
    assert str(mail["To"]) == "compta@brasserie.example"
    assert missing == 2 and "has no invoice 'RE-NO'" in refused.err and refused.out == ""


def test_send_when_the_access_point_cannot_be_asked_sends_nothing(db, shop, monkeypatch, capsys):
    number = _number(db, shop.org["id"], shop.invoice)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url, token="wrong")
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        code, said = _send(capsys, shop, number)
        assert ap.network.take_messages() == [] and list(sink.mailbox.messages) == []
    assert code == 3 and said["outcome"] == "not sent" and "403" in said["reason"]
    assert _rows(db, shop.org["id"]) == {}


def test_the_peppol_commands_import_no_dagster(db, shop, tmp_path):
    number = _number(db, shop.org["id"], shop.invoice)
    slug = shop.org["slug"]
    commands = {
        # command: (argv, the areas it may import, its exit code)
        "peppol lookup": (["peppol", "lookup", BRASSERIE], {"delivery"}, 0),
        "peppol send": (["peppol", "send", "--org", slug, "--invoice", number], KIND_AREAS, 0),
        "peppol participant": (["peppol", "participant", "--org", slug], {"delivery"}, 0),
    }
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        ran = _run_each(
            [argv for argv, _, _ in commands.values()],
            db.url,
            INVOICE_PIPELINES_DOCUMENT_DIR=str(tmp_path / "documents"),
            INVOICE_PIPELINES_SMTP_HOST="127.0.0.1",
            INVOICE_PIPELINES_SMTP_PORT=str(sink.port),
            INVOICE_PIPELINES_PEPPOL_AP_URL=ap.url,
            INVOICE_PIPELINES_PEPPOL_AP_TOKEN=TOKEN,
        )
        sent = ap.network.take_messages()
    found = dict(zip(commands, ran, strict=True))
    _check_imports(commands, found)
    assert found["peppol lookup"][1].startswith("ACCEPTS")
    assert (
        json.loads(found["peppol participant"][1])["participant"] == shop.org["peppol_participant"]
    )
    assert len(sent) == 1


def test_send_to_a_receiver_that_rejects_fails_with_its_message_id_printed_escaped(
    db, shop, monkeypatch, capsys
):
    number = _number(db, shop.org["id"], shop.invoice)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        _settings(monkeypatch, ap.url)
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        ap.network.rejecting[BRASSERIE] = "not processed \u202egnp.exe \x9b31m"
        code = main(["peppol", "send", "--org", shop.org["slug"], "--invoice", number])
        out = capsys.readouterr().out
        [rejected] = ap.network.take_messages()
        assert list(sink.mailbox.messages) == []  # no e-mail in its place
    assert code == 1 and "\u202e" not in out and "\x9b" not in out
    said = json.loads(out.strip().splitlines()[-1])
    assert (said["outcome"], said["channel"]) == ("failed", "peppol")
    assert said["message_id"] == rejected["message_id"]
    assert "AS4_ERROR_MESSAGE_RECEIVED" in said["reason"]
    assert "not processed \u202egnp.exe \x9b31m" in said["reason"]  # the same text once read


def test_peppol_is_one_group_of_two_areas_verbs():
    """Intake adds `peppol receive`, `route` and `listen`, delivery `peppol lookup`,
    `participant` and `send` to the one `peppol` group: `--help` lists it once with both helps, whichever verb is named; a verb loads only the
    parsers of its own area (the fresh-interpreter tests read which)."""
    import argparse

    from invoice_pipelines import cli

    every = cli.build_parser().format_help()
    for command, verb in [("peppol", None), ("peppol", "lookup"), ("peppol", "receive")]:
        assert cli.build_parser(command, verb).format_help() == every, verb
    assert "once; route held ones; listen for them; look a participant up in the SMP" in " ".join(
        every.split()
    )
    group = cli.build_parser("peppol")._subparsers._group_actions[0].choices["peppol"]
    [verbs] = [a for a in group._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(verbs.choices) == ["receive", "route", "listen", "lookup", "participant", "send"]
    assert cli._verb_in(["peppol", "lookup", "0208:1"]) == "lookup"
    assert cli._verb_in(["peppol", "--help"]) is None


def _participant_command(capsys, *argv: str) -> tuple[int, str]:
    code = main(["peppol", "participant", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _stored(db, org_id: int, customer_id: int | None = None) -> str | None:
    if customer_id is None:
        with system_transaction(db.engine) as conn:
            return conn.execute(
                select(organizations.c.peppol_participant).where(organizations.c.id == org_id)
            ).scalar_one()
    with tenant_transaction(db.engine, org_id) as conn:
        return conn.execute(
            select(customers.c.peppol_participant).where(customers.c.id == customer_id)
        ).scalar_one()


def test_participant_sets_shows_and_clears_ids_the_peppol_rules_accept(db, monkeypatch, capsys):
    """`peppol participant` is how an organization and its customers get onto Peppol: the id is
    checked as lookup checks it and stored as the sending run reads it; one the rules refuse, a
    receiving address another organization has and an unknown customer are refused, changing
    nothing."""
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    # ids of their own: the shared database has other tests' organizations (a German VAT number
    # has no check digits in the Peppol rules)
    ours, theirs = (f"9930:de{uuid.uuid4().int % 10**9:09d}" for _ in range(2))
    org = db.new_organization()
    other = db.new_organization(peppol_participant=theirs.upper())
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        customer = conn.execute(
            customers.insert()
            .values(organization_id=org["id"], customer_number="K-7", name="Brasserie du Parc SA")
            .returning(customers.c.id)
        ).scalar_one()
    slug = org["slug"]

    assert _participant_command(capsys, "--org", slug, ours) == (
        0,
        json.dumps({"organization": slug, "customer": None, "participant": ours, "before": None})
        + "\n",
    )
    code, said = _participant_command(
        capsys, "--org", slug, "--customer", "K-7", f"iso6523-actorid-upis::{BRASSERIE}"
    )
    assert code == 0 and json.loads(said)["participant"] == BRASSERIE  # the scheme dropped
    assert (_stored(db, org["id"]), _stored(db, org["id"], customer)) == (
        ours,
        BRASSERIE,
    )
    code, said = _participant_command(capsys, "--org", slug, "--customer", str(customer))
    assert code == 0 and json.loads(said)["participant"] == BRASSERIE  # shown, by its id

    # refused, nothing changed: a wrong check digit, a scheme off the EAS list, another
    # organization's receiving address (in another case), a customer the organization lacks
    wrong = _participant_command(capsys, "--org", slug, "--customer", "K-7", "0208:0123456700")
    scheme = _participant_command(capsys, "--org", slug, "9999:12345")
    taken = _participant_command(capsys, "--org", slug, theirs)
    missing = _participant_command(capsys, "--org", slug, "--customer", "K-8", BRASSERIE)
    assert wrong[0] == 2 and "PEPPOL-COMMON-R043" in wrong[1]
    assert scheme[0] == 2 and "PEPPOL-EN16931-CL008" in scheme[1]
    assert taken[0] == 2 and f"organization {other['slug']} has" in taken[1]
    assert missing[0] == 1 and "has no customer 'K-8'" in missing[1]
    assert (_stored(db, org["id"]), _stored(db, org["id"], customer)) == (
        ours,
        BRASSERIE,
    )

    code, said = _participant_command(capsys, "--org", slug, "--customer", "K-7", "--clear")
    assert code == 0 and json.loads(said)["before"] == BRASSERIE
    assert _stored(db, org["id"], customer) is None
    assert _stored(db, org["id"]) == ours
