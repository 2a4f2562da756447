"""A command that would write an offboarded organization's rows or settings (issue 83's leftover):
refused before any work with the sentence a run's refusal says (tenants/domain/lifecycle.py
`writable`), exit 2, no traceback and nothing written, instead of the database's refusal half-way
through (0055, 0056), or, for a setting the system login writes, a change nobody may make. Reading
stays open. On both databases."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from invoice_pipelines.cli import main
from invoice_pipelines_tests.tenants.test_offboarded_runs import READ_ONLY, _offboard

WHO = ["--by", "anna", "--reason", "the supplier asked"]


def _settings_and_suppliers(db, org: dict) -> tuple:
    with db.owner_engine.connect() as conn:
        settings = conn.execute(
            text("SELECT settings FROM organizations WHERE id = :id"), {"id": org["id"]}
        ).scalar()
        suppliers = conn.execute(
            text("SELECT count(*) FROM suppliers WHERE organization_id = :id"), {"id": org["id"]}
        ).scalar()
    return json.dumps(settings, sort_keys=True, default=str), suppliers


@pytest.fixture
def offboarded(db, tmp_path, monkeypatch) -> dict:
    org = db.new_organization()
    _offboard(db, org, tmp_path)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    return org


@pytest.mark.parametrize(
    "argv",
    [
        ["suppliers", "policy", "--set", "first_invoice", *WHO],
        ["suppliers", "add", "--name", "Neu Lieferant GmbH", *WHO],
        ["incoming", "policy", "--set", "einvoice_with_errors=review", *WHO],
        ["dunning-base-rate", "--from", "2027-01-01", "--percent", "2.27"],
        ["dunning-block", "--customers", "1", "--reason", "disputed"],
        ["peppol", "participant", "--clear"],
        ["qbo-payables", "--create-vendors", "yes", *WHO],
        ["overdue"],
        ["qbo-sync"],
        ["qbo-import"],
        [
            "mailbox",
            "set",
            "--host",
            "imap.example.org",
            "--user",
            "rechnungen",
            "--secret-name",
            "MAILBOX_PASSWORD",
            "--processed-folder",
            "Done",
        ],
        ["mailbox", "remove"],
    ],
    ids=lambda argv: " ".join(argv[:2]),
)
def test_a_write_to_an_offboarded_organization_is_one_sentence(db, offboarded, capsys, argv):
    before = _settings_and_suppliers(db, offboarded)
    at = 2 if argv[0] in ("suppliers", "incoming", "peppol", "mailbox") else 1
    code = main([*argv[:at], "--org", offboarded["slug"], *argv[at:]])
    said = capsys.readouterr()
    assert code == 2
    [line] = said.err.strip().splitlines()
    assert f"{offboarded['slug']} {READ_ONLY}" in line
    assert line.startswith(f"invoice-pipelines {argv[0]}: ")
    assert "Traceback" not in said.err and said.out == ""
    assert _settings_and_suppliers(db, offboarded) == before


def test_reading_an_offboarded_organization_stays_open(db, offboarded, capsys):
    for argv in (["suppliers", "policy"], ["suppliers", "list"]):
        assert main([*argv, "--org", offboarded["slug"]]) == 0
    assert READ_ONLY not in capsys.readouterr().err
