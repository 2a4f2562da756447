"""`invoice-pipelines audit-verify` on SQLite and PostgreSQL: an untouched archive passes; one
byte of an original changed names that file (so does a document gone and a letter changed); an
audit row deleted or changed names that row."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import audit_log
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines_tests.audit.year_of_history import configure_commands, seed_year

LATER = datetime.now(UTC) + timedelta(hours=1)  # every row old enough to be sealed


def _sealed_history(db, tmp_path):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    first = verify_archive(db.engine, history.stores, org, now=LATER)
    assert first.passed, first.as_dict()
    assert first.files_checked == 3 and first.chain.newly_sealed >= 3
    assert first.not_recorded == []
    return history, org


def _audit_ids(db, org_id: int) -> list[int]:
    with db.owner_engine.begin() as conn:
        return list(
            conn.execute(
                select(audit_log.c.id)
                .where(audit_log.c.organization_id == org_id)
                .order_by(audit_log.c.id)
            ).scalars()
        )


def test_an_untouched_archive_passes_and_stays_sealed(db, tmp_path):
    history, org = _sealed_history(db, tmp_path)
    again = verify_archive(db.engine, history.stores, org, now=LATER)
    assert again.passed and again.chain.newly_sealed == 0
    assert again.chain.sealed_by_table["audit_log"] == len(_audit_ids(db, org.id))


def test_one_byte_of_an_original_changed_names_the_file(db, tmp_path):
    history, org = _sealed_history(db, tmp_path)
    path = tmp_path / "stores" / "uploads" / history.original["key"]
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    history.document_path.unlink()
    history.letter_path.write_bytes(history.letter_path.read_bytes() + b"%%EOF")

    report = verify_archive(db.engine, history.stores, org, now=LATER)

    assert not report.passed
    key, upload = history.original["key"], history.original["upload_id"]
    assert any(p.startswith(f"original {key} (upload {upload}") and "changed" in p
               for p in report.problems), report.problems  # fmt: skip
    assert any("RE-1.pdf" in p and p.endswith("is missing") for p in report.problems)
    assert any(p.startswith("letter ") and "dn-1.pdf (level 1 of invoice" in p and "changed" in p
               for p in report.problems), report.problems  # fmt: skip
    assert len(report.problems) == 3 and report.chain.problems == []


def test_a_deleted_or_changed_audit_row_is_named(db, tmp_path, capsys, monkeypatch):
    history, org = _sealed_history(db, tmp_path)
    first, second, *_ = _audit_ids(db, org.id)
    with db.owner_engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == first))
        conn.execute(update(audit_log).where(audit_log.c.id == second).values(created_by="mallory"))

    report = verify_archive(db.engine, history.stores, org, now=LATER)

    assert report.problems == []
    assert f"audit row {first} removed (sealed at position 1)" in report.chain.problems
    assert f"audit row {second} changed since it was sealed" in report.chain.problems
    assert report.chain.newly_sealed == 0  # a broken chain is not extended

    # the same from the command line, which exits 1 and says it in its JSON
    configure_commands(monkeypatch, db, tmp_path / "stores")
    assert main(["audit-verify", "--org", org.slug]) == 1
    said = json.loads(capsys.readouterr().out)
    assert said["passed"] is False and said["files"] == []
    assert f"audit row {first} removed (sealed at position 1)" in said["audit_trail"]
