"""The seal key in a deployment (issue 83's leftover): on PostgreSQL, where several machines may
seal one database's chain, the key generated into one machine's data folder is refused in one
sentence unless INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY=true says one machine is all there is;
nothing is sealed and no key is generated. SQLite, one machine's file, uses the local key as
before. `audit-verify` and the daily `archive_unchanged` check alike."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from invoice_pipelines.audit.domain.seal_keys import LOCAL_KEYS
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import audit_seals
from invoice_pipelines_tests.audit.test_archive_check import _check, _Year2026
from invoice_pipelines_tests.audit.year_of_history import configure_commands, seed_year

REFUSED = (
    "INVOICE_PIPELINES_AUDIT_SEAL_KEY is not set: on PostgreSQL several machines may seal the "
    "audit chain"
)


def _no_key(monkeypatch, data) -> None:
    monkeypatch.delenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY", raising=False)
    monkeypatch.delenv("INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY", raising=False)
    monkeypatch.setenv("INVOICE_PIPELINES_DATA_DIR", str(data))


def _sealed(db, org: dict) -> int:
    with db.owner_engine.connect() as conn:
        return conn.execute(
            select(func.count())
            .select_from(audit_seals)
            .where(audit_seals.c.organization_id == org["id"])
        ).scalar_one()


def test_audit_verify_refuses_a_local_key_on_postgresql_unless_allowed(
    db, tmp_path, monkeypatch, capsys
):
    history = seed_year(db, tmp_path / "stores")
    configure_commands(monkeypatch, db, tmp_path / "stores")
    _no_key(monkeypatch, tmp_path / "data")
    code = main(["audit-verify", "--org", history.org["slug"]])
    said = capsys.readouterr().out
    if db.kind == "postgresql":
        assert code == 2
        [line] = said.splitlines()
        assert line.startswith(f"invoice-pipelines audit-verify: {REFUSED}")
        assert "INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY=true" in line
        assert _sealed(db, history.org) == 0
        assert not (tmp_path / "data" / LOCAL_KEYS).exists()
        monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_LOCAL_KEY", "true")
        code = main(["audit-verify", "--org", history.org["slug"]])
        said = capsys.readouterr().out
    # SQLite, or PostgreSQL on one machine: the generated key seals
    assert code == 0, said
    assert _sealed(db, history.org) > 0
    assert (tmp_path / "data" / LOCAL_KEYS).exists()


@pytest.mark.parametrize("fresh_db", ["postgresql"], indirect=True)
def test_the_daily_check_says_which_key_to_set_on_postgresql(fresh_db, tmp_path, monkeypatch):
    history = seed_year(fresh_db, tmp_path / "stores")
    monkeypatch.setattr("invoice_pipelines.audit.checks.datetime", _Year2026)
    _no_key(monkeypatch, tmp_path / "data")
    evaluation = _check(fresh_db, tmp_path)
    assert not evaluation.passed
    assert evaluation.description.startswith(REFUSED)
    assert evaluation.metadata["files_checked"].value == 0
    assert _sealed(fresh_db, history.org) == 0
