"""A sending process SIGKILLed mid-send over Peppol, on SQLite and PostgreSQL: `send-invoices`
in a process of its own, the production client over real HTTP to the access point stand-in on
127.0.0.1. The kill comes the moment the access point has kept the invoice and before it answers:
between the outbox's claim (the `sending` row, committed before the document leaves) and the
answer. The delivery is neither lost nor sent twice: the next run reports it `unknown` and sends
it neither over Peppol nor by e-mail, a run that names it still does not, and only a deliberate
`--resend` sends it again, as the next sequence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from sqlalchemy import select

from invoice_pipelines.db.tables import deliveries
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.delivery.test_peppol_sending import (
    TOKEN,
    _network,
    _peppol_rules,  # noqa: F401 (the fixture: skipped without OpenPEPPOL's rules)
    _rows,
    _shop,
)


def _command(org: str, *more: str) -> list[str]:
    return [sys.executable, "-m", "invoice_pipelines.cli", "send-invoices", "--org", org, *more]


def _report(done: subprocess.CompletedProcess) -> dict:
    assert done.stdout.strip(), done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_sender_killed_between_the_claim_and_the_answer_neither_loses_nor_doubles(db, tmp_path):
    shop = _shop(db, tmp_path)
    with AccessPointStandIn(network=_network()) as ap, SmtpSink() as sink:
        env = {
            **os.environ,
            "INVOICE_PIPELINES_DB_URL": db.url,
            "INVOICE_PIPELINES_DOCUMENT_DIR": str(tmp_path / "documents"),
            "INVOICE_PIPELINES_SMTP_PORT": str(sink.port),
            "INVOICE_PIPELINES_PEPPOL_AP_URL": ap.url,
            "INVOICE_PIPELINES_PEPPOL_AP_TOKEN": TOKEN,
        }
        sender = subprocess.Popen(
            _command(shop.org["slug"], "--connections", "1"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        under_way: dict = {}

        def kill_before_answering(message: dict) -> None:
            # the access point has the document; the sender has not had its answer
            with tenant_transaction(db.engine, shop.org["id"]) as conn:
                under_way.update(
                    conn.execute(
                        select(deliveries.c.status, deliveries.c.message_id).where(
                            deliveries.c.sales_invoice_id == shop.invoice,
                            deliveries.c.channel == "peppol",
                        )
                    )
                    .mappings()
                    .one()
                )
            os.kill(sender.pid, signal.SIGKILL)
            sender.wait(30)

        ap.network.on_message = kill_before_answering
        sender.communicate(timeout=180)
        assert sender.returncode == -signal.SIGKILL
        ap.network.on_message = None
        [kept] = ap.network.take_messages()
        # the claim was committed before the document left
        assert under_way["status"] == "sending" and under_way["message_id"].startswith("peppol-")
        assert _rows(db, shop.org["id"])[(shop.invoice, "peppol", 0)].status == "sending"

        # the next run: the row is the dead run's, its outcome unknown; it is not sent again
        resumed = _report(
            subprocess.run(
                _command(shop.org["slug"]), env=env, capture_output=True, text=True, timeout=180
            )
        )
        named = _report(
            subprocess.run(
                _command(shop.org["slug"], "--invoices", str(shop.invoice)),
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        )
        assert ap.network.take_messages() == []
        assert resumed["unknown"] == {str(shop.invoice): under_way["message_id"]}
        assert named["sent"] == 0
        rows = _rows(db, shop.org["id"])
        assert rows[(shop.invoice, "peppol", 0)].status == "unknown"
        assert (shop.invoice, "email", 0) not in rows  # not e-mailed in its place
        # every other invoice arrived once, over its channel (the Brasserie's is its credit
        # note's: the invoice was not e-mailed in its place)
        assert sorted(str(m["To"]) for m in sink.mailbox.messages) == [
            "buchhaltung@baeckerei.example",
            "compta@brasserie.example",
            "einkauf@kunde.example",
        ]

        # sending it again is a person's decision: the next sequence, over Peppol
        resent = _report(
            subprocess.run(
                _command(shop.org["slug"], "--invoices", str(shop.invoice), "--resend"),
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        )
        [again] = ap.network.take_messages()
    assert resent["sent"] == 1
    assert again["document"] == kept["document"] and again["message_id"] != kept["message_id"]
    row = _rows(db, shop.org["id"])[(shop.invoice, "peppol", 1)]
    assert row.status == "sent" and row.transport_message_id == again["message_id"]
