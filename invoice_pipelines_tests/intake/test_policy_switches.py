"""A switch of a money-path policy (issue 83), on SQLite and on PostgreSQL: `suppliers policy
--set` (whether a first invoice registers its supplier confirmed and books its bills with no
person), `incoming policy --set` (which documents are booked without a person) and
`qbo-payables --create-vendors` (whether a bill may reach a vendor no person made) name who and
why, and leave an audit row with the policy before and after; without them nothing changes."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import audit_log, organizations
from invoice_pipelines.db.tenancy import system_transaction


def _run(db, monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _switches(db, org_id: int) -> list[dict]:
    with system_transaction(db.engine) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(audit_log)
                .where(
                    audit_log.c.organization_id == org_id, audit_log.c.action == "policy_changed"
                )
                .order_by(audit_log.c.id)
            ).mappings()
        ]


def _settings(db, org_id: int) -> dict:
    with system_transaction(db.engine) as conn:
        return (
            conn.execute(
                select(organizations.c.settings).where(organizations.c.id == org_id)
            ).scalar()
            or {}
        )


SWITCHES = {
    "suppliers": ["suppliers", "policy", "--set", "first_invoice_books"],
    "incoming": ["incoming", "policy", "--set", "einvoice_with_errors=accept"],
}


@pytest.mark.parametrize("command", sorted(SWITCHES))
@pytest.mark.parametrize(
    "who", [[], ["--by", "anna"], ["--reason", "faster"], ["--by", " ", "--reason", "faster"]]
)
def test_a_switch_without_who_and_why_is_refused_and_changes_nothing(
    db, monkeypatch, capsys, command, who
):
    org = db.new_organization()
    argv = [*SWITCHES[command], "--org", org["slug"], *who]
    code, out, err = _run(db, monkeypatch, capsys, *argv)
    assert code == 2 and out == ""
    [sentence] = err.strip().splitlines()
    assert "--by" in sentence or "--reason" in sentence
    assert "Traceback" not in err
    assert _settings(db, org["id"]) == {} and _switches(db, org["id"]) == []


def test_a_supplier_policy_switch_leaves_an_audit_row_with_before_and_after(
    db, monkeypatch, capsys
):
    org = db.new_organization()
    base = ["suppliers", "policy", "--org", org["slug"]]
    why = ["--by", "Anna", "--reason", "the bookkeeper asked for it in ticket 12"]
    code, out, _ = _run(db, monkeypatch, capsys, *base, "--set", "first_invoice_books", *why)
    assert code == 0 and json.loads(out) == {"supplier_policy": "first_invoice_books"}
    code, out, _ = _run(db, monkeypatch, capsys, *base, "--set", "review", "--by", "Ben",
                        "--reason", "back to a person confirming")  # fmt: skip
    assert code == 0

    first, second = _switches(db, org["id"])
    assert first["created_by"] == "Anna"
    assert first["details"] == {
        "setting": "supplier_policy",
        "before": None,
        "after": "first_invoice_books",
        "reason": "the bookkeeper asked for it in ticket 12",
    }
    assert (second["created_by"], second["details"]["before"], second["details"]["after"]) == (
        "Ben",
        "first_invoice_books",
        "review",
    )
    # the same policy again changes nothing and records nothing
    assert _run(db, monkeypatch, capsys, *base, "--set", "review", *why)[0] == 0
    assert len(_switches(db, org["id"])) == 2


def test_an_intake_policy_switch_leaves_an_audit_row_with_before_and_after(db, monkeypatch, capsys):
    org = db.new_organization()
    base = ["incoming", "policy", "--org", org["slug"]]
    code, out, _ = _run(
        db, monkeypatch, capsys, *base, "--set", "einvoice_with_errors=review",
        "--by", "anna", "--reason", "a person looks at every broken e-invoice",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["einvoice_with_errors"] == "review"
    code, _, _ = _run(
        db, monkeypatch, capsys, *base, "--set", "einvoice_with_errors=accept",
        "--set", "valid_einvoice=review", "--by", "ben", "--reason", "month-end rush",
    )  # fmt: skip
    assert code == 0

    first, second = _switches(db, org["id"])
    assert first["created_by"] == "anna" and first["details"]["before"] is None
    assert first["details"]["after"] == {"einvoice_with_errors": "review"}
    assert second["details"] == {
        "setting": "intake_policy",
        "before": {"einvoice_with_errors": "review"},
        "after": {"einvoice_with_errors": "accept", "valid_einvoice": "review"},
        "reason": "month-end rush",
    }
    # showing the policy needs no one and records nothing
    assert _run(db, monkeypatch, capsys, *base)[0] == 0
    assert len(_switches(db, org["id"])) == 2


def test_a_create_vendors_switch_needs_who_and_why_and_is_audited(db, monkeypatch, capsys):
    from cryptography.fernet import Fernet

    from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

    org = db.new_organization()
    save_connection(
        db.engine,
        org["id"],
        system=db.system_engine,
        realm_id="9130350000000098",
        client_id="app",
        client_secret="secret",
        refresh_token="refresh",
        cipher=token_cipher(Fernet.generate_key().decode()),
    )
    base = ["qbo-payables", "--org", org["slug"], "--create-vendors", "yes", "--json"]
    code, out, err = _run(db, monkeypatch, capsys, *base, "--by", "anna")
    assert code == 2 and out == "" and "--reason" in err and len(err.strip().splitlines()) == 1
    assert _switches(db, org["id"]) == []

    code, out, _ = _run(db, monkeypatch, capsys, *base, "--by", "anna", "--reason", "ticket 7")
    assert code == 0 and json.loads(out.strip().splitlines()[-1])["create_vendors"] is True
    [switch] = _switches(db, org["id"])
    assert switch["created_by"] == "anna"
    assert switch["details"] == {
        "setting": "create_vendors",
        "before": False,
        "after": True,
        "reason": "ticket 7",
    }
