"""The tour's promise: materializing the `dunning_notices` partition of the demo's
mueller-werkzeugbau mails its three overdue customers a reminder, a first dunning and a final
notice, each an e-mail with its PDF letter, into the folder of the demo's mail server (the SMTP
stand-in `make run` starts, here on a free port and a folder of the test's own)."""

from __future__ import annotations

import email
import email.policy
import io
import socket
import subprocess
import sys
import time
from pathlib import Path

import pypdf
from dagster import Definitions, instance_for_test

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.documents.domain.letter_writer import PdfaLetterWriter
from invoice_pipelines.overdue import assets as overdue_assets
from invoice_pipelines.overdue.jobs import dunning_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.messaging.mail import SmtpMailer
from invoice_pipelines.resources.messaging.text_message_provider import TextMessageProvider
from invoice_pipelines_devtools.demo.seed import DEMO_OVERDUE_ORGANIZATION, seed_demo

ORG = DEMO_OVERDUE_ORGANIZATION


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _mail_server(port: int, folder: Path) -> subprocess.Popen:
    """The demo's mail server as `make run` starts it, answering on `port`."""
    server = subprocess.Popen(
        [sys.executable, "-m", "invoice_pipelines_devtools.standins.smtp",
         "--port", str(port), "--maildir", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                raise RuntimeError("the demo's mail server did not start") from None
            time.sleep(0.1)
    server.kill()
    raise RuntimeError(f"the demo's mail server did not answer on {port}")


def test_the_demos_overdue_customers_get_their_letters_by_mail(tmp_path, sqlite_migrated_factory):
    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    seeded = seed_demo(engine, system=engine)
    assert len(seeded["overdue_invoices"]) == 3
    port, folder = _free_port(), tmp_path / "mail"
    folder.mkdir()
    server = _mail_server(port, folder)
    try:
        defs = Definitions(
            assets=[overdue_assets.dunning_notices],
            jobs=[dunning_job],
            resources={
                "database": Database(url=url),
                "system_database": SystemDatabase(url=url),
                "mailer": SmtpMailer(port=port, sender="mahnung@mueller-werkzeugbau.example"),
                "document_store": LocalFileStore(root=str(tmp_path / "documents")),
                "text_messages": TextMessageProvider(base_url="http://127.0.0.1:1"),
                "letter_writer": PdfaLetterWriter(),
            },
        )
        with instance_for_test() as instance:
            instance.add_dynamic_partitions("organizations", [ORG])
            job = defs.resolve_job_def("dunning_job")
            for _ in range(2):  # materialized twice: the second run sends nothing again
                assert job.execute_in_process(instance=instance, partition_key=ORG).success
        deadline = time.monotonic() + 60
        while len(list(folder.glob("*.eml"))) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(30)

    files = sorted(folder.glob("*.eml"))
    messages = [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default) for path in files
    ]
    assert len(messages) == 3
    titles = {}
    for message in messages:
        letter = next(
            part for part in message.iter_attachments() if part.get_filename().startswith("Mahnung")
        )
        reader = pypdf.PdfReader(io.BytesIO(letter.get_content()))
        text = reader.pages[0].extract_text()
        title = str(message["Subject"]).split(":")[0]
        titles[title] = text
        assert title in text and "Müller Werkzeugbau GmbH · Gewerbestraße 21" in text
        assert "Unser Schreiben" in message.get_body(("plain",)).get_content()
    assert set(titles) == {"Zahlungserinnerung", "1. Mahnung", "Letzte Mahnung"}
    # business customers in default: the flat fee of § 288(5) BGB, and the interest's base rate
    assert "Pauschale nach § 288 Abs. 5 BGB" in titles["Letzte Mahnung"]
    assert "Basiszinssatz 1,27 % + 9 Prozentpunkte" in titles["Letzte Mahnung"]
