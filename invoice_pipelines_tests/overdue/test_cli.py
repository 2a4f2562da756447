"""`invoice-pipelines overdue` and `dunning-block` on the configured database."""

from __future__ import annotations

import io
import json
from datetime import date
from pathlib import Path

import pypdf

from invoice_pipelines.cli import main
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.overdue.helpers import (
    customer,
    invoice,
    levels_by_invoice,
    set_settings,
)
from invoice_pipelines_tests.overdue.test_letters import EMAIL_LEVELS
from invoice_pipelines_tests.test_cli_lazy import _areas, _run_each


def test_block_then_notice_from_the_command_line(db, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path))
    org = db.new_organization(timezone="UTC")
    kunde, other = customer(db, org), customer(db, org)
    held = invoice(db, org, kunde, date(2026, 11, 1))
    noticed = invoice(db, org, other, date(2026, 11, 1))

    block = ["dunning-block", "--org", org["slug"], "--customers", f"{kunde},424242"]
    assert main([*block, "--reason", "Ratenzahlung"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "changed": [kunde],
        "not_found": [424242],
        "blocked": True,
    }
    overdue = ["overdue", "--org", org["slug"], "--as-of", "2026-11-20"]
    assert main([*overdue, "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["notices_by_level"] == {"first_dunning": 1}
    assert levels_by_invoice(db, org) == {}

    assert main(overdue) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["status"], report["notices_created"], report["fees_charged"]) == (
        "SUCCESS",
        1,
        "2.50",  # the German default fee of a first dunning (a consumer: no flat fee)
    )
    assert levels_by_invoice(db, org) == {noticed: ["first_dunning"]}
    assert held not in levels_by_invoice(db, org)
    # the notice's letter, written by the runs' letter writer into the document store
    [letter] = report["letters_written"]
    assert letter["pages"] == 1 and letter["path"].startswith(str(tmp_path))
    pdf = Path(letter["path"]).read_bytes()
    assert len(pdf) == letter["size_bytes"] and pdf.startswith(b"%PDF-1.7")
    assert "1. Mahnung" in pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()

    assert main(["overdue", "--org", "no-such-org"]) == 2
    assert "there is no organization 'no-such-org'" in capsys.readouterr().err


def test_the_overdue_command_writes_and_sends_letters_without_dagster(db, tmp_path):
    """The letter writer is the documents area's: the console script hands the plain writer to the
    command, as definitions.py hands its resource to the runs (before: the command imported
    definitions.py, and with it Dagster and every area; then the resource classes of the letter
    writer, the file store and the mailer still imported Dagster). The notice goes out by e-mail
    to an SMTP server on loopback, its letter attached."""
    org = db.new_organization(timezone="UTC")
    set_settings(db, org, {"dunning": EMAIL_LEVELS})
    invoice(db, org, customer(db, org, email="einkauf@kunde.example"), date(2026, 11, 1))
    argv = ["overdue", "--org", org["slug"], "--as-of", "2026-11-20"]
    with SmtpSink() as sink:
        [(code, said, modules)] = _run_each(
            [argv],
            db.url,
            INVOICE_PIPELINES_DOCUMENT_DIR=str(tmp_path),
            INVOICE_PIPELINES_SMTP_HOST="127.0.0.1",
            INVOICE_PIPELINES_SMTP_PORT=str(sink.port),
            INVOICE_PIPELINES_SMTP_FROM="mahnung@mueller.example",
        )
        received = list(sink.mailbox.messages)
    assert code == 0, said
    report = json.loads(said.splitlines()[-1])
    [letter] = report["letters_written"]
    pdf = Path(letter["path"]).read_bytes()
    assert pdf.startswith(b"%PDF-1.7")
    assert report["notices_sent"] == 1 and report["notices_send_failed"] == {}
    [mail] = received
    assert mail["To"] == "einkauf@kunde.example"
    [attached] = [part.get_payload(decode=True) for part in mail.walk() if part.get_filename()]
    assert attached == pdf
    assert "invoice_pipelines.definitions" not in modules
    assert not any(m == "dagster" or m.startswith(("dagster.", "alembic")) for m in modules)
    assert _areas(modules) <= {"overdue", "documents"}, _areas(modules)
