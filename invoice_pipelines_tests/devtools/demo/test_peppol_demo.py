"""The demo on Peppol (devtools/demo/peppol.py) on SQLite and PostgreSQL: seed-demo puts
brandt-it-service and its customer Wiener Softwarehaus on Peppol; the demo's access point, started
as `make run` starts it (`python -m invoice_pipelines_devtools.demo.peppol`, a process of its own
on a loopback port), forwards an official Peppol example read from the samples folder to
brandt-it-service's intake once, and takes the invoices to Wiener Softwarehaus over real HTTP
from the production client: each one once, kept in the data dir."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.db.tables import customers, organizations, peppol_received
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoices
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.intake.domain.peppol_inbound import REPLAY
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.messaging.channels import MailTransport, PeppolChannel
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.peppol.transport import PeppolTransport
from invoice_pipelines_devtools.demo.peppol import (
    demo_instance_identifier,
    forward_received_invoice,
)
from invoice_pipelines_devtools.demo.seed import (
    DEMO_PEPPOL_CUSTOMERS,
    DEMO_PEPPOL_ORGANIZATIONS,
    seed_demo,
)
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR

ORG = "brandt-it-service"
WIENER = DEMO_PEPPOL_CUSTOMERS[(ORG, "D-304")]


@pytest.fixture(autouse=True)
def _peppol():
    if (
        not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file()
        or not (PEPPOL_SAMPLES_DIR / "base-example.xml").is_file()
    ):
        pytest.skip(f"Peppol rules or samples not found beside the repo ({PEPPOL_RULES_DIR})")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(predicate, seconds: float = 60.0, what: str = ""):
    deadline = time.monotonic() + seconds
    while True:
        found = predicate()
        if found or time.monotonic() > deadline:
            assert found, what
            return found
        time.sleep(0.2)


def _received(db):
    with system_transaction(db.engine) as conn:
        return conn.execute(
            select(peppol_received.c.instance_identifier, peppol_received.c.state)
        ).all()


def test_the_demos_access_point_forwards_a_received_invoice_and_takes_brandts_invoices(
    fresh_db, tmp_path
):
    db = fresh_db
    [job] = seed_demo(db.engine, system=db.system_engine)["batch_jobs"]
    with system_transaction(db.engine) as conn:
        participant = conn.execute(
            select(organizations.c.peppol_participant).where(organizations.c.slug == ORG)
        ).scalar_one()
        on_peppol = conn.execute(
            select(customers.c.customer_number).where(customers.c.peppol_participant == WIENER)
        ).all()
    assert participant == DEMO_PEPPOL_ORGANIZATIONS[ORG] and on_peppol == [("D-304",)]

    port = _free_port()
    data_dir, uploads = tmp_path / "data", tmp_path / "uploads"
    env = {
        **os.environ,
        "INVOICE_PIPELINES_DB_URL": db.url,
        "INVOICE_PIPELINES_UPLOAD_DIR": str(uploads),
        "INVOICE_PIPELINES_PEPPOL_AP_TOKEN": "demo-token",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "invoice_pipelines_devtools.demo.peppol", "--port", str(port),
         "--data-dir", str(data_dir), "--samples", str(PEPPOL_SAMPLES_DIR)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        # the received invoice: forwarded once it listens, registered for brandt-it-service
        [(key, state)] = _wait_for(lambda: _received(db), what="no invoice forwarded")
        assert (key, state) == (demo_instance_identifier(), "registered")
        again = forward_received_invoice(db.engine, LocalUploads(str(uploads)), PEPPOL_SAMPLES_DIR)
        assert again.startswith(REPLAY) and len(_received(db)) == 1

        # the queued job invoices the reviewed orders; Wiener's get Peppol BIS documents
        assert (
            process_batch_job(db.engine, job, system=db.system_engine, runner="test").status
            == "completed"
        )
        store = LocalFiles(str(tmp_path / "documents"))
        documents = generate_documents(db.engine, store, find_organization(db.engine, ORG))
        assert documents.peppol > 0 and not documents.peppol_failed and not documents.failed
        peppol = PeppolChannel(
            PeppolTransport(
                base_url=f"http://127.0.0.1:{port}", token="demo-token", timeout_seconds=10.0
            )
        )
        with SmtpSink() as sink:
            mailer = Smtp(port=sink.port, sender="buchhaltung@brandt-it.example")
            sent = send_invoices(
                db.engine,
                store,
                MailTransport(mailer),
                find_organization(db.engine, ORG),
                peppol=peppol,
                connections=1,
            )
            again = send_invoices(
                db.engine,
                store,
                MailTransport(mailer),
                find_organization(db.engine, ORG),
                peppol=peppol,
                connections=1,
            )
            recipients = {str(m["To"]) for m in sink.mailbox.messages}
        assert sent.by_channel["peppol"] == documents.peppol and not sent.fallbacks
        assert not sent.failed and not sent.unknown and again.sent == 0
        assert "office@wiener-softwarehaus.at" not in recipients
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert f"listening on http://127.0.0.1:{port}" in out
    assert "Peppol demo: registered" in err
    lines = [
        json.loads(line)
        for line in (data_dir / "peppol" / "messages.jsonl").read_text().splitlines()
    ]
    assert len(lines) == documents.peppol
    assert {line["receiver"] for line in lines} == {f"iso6523-actorid-upis::{WIENER}"}
    for line in lines:
        assert (data_dir / "peppol" / line["document"]).read_bytes().startswith(b"<?xml")
