"""The audit chain against the rewrites of issue 83, on SQLite and PostgreSQL: whoever can write the
database but holds no seal key (the runtime login) cannot make `audit-verify` pass after changing
what was sealed. Each rewrite is done through the owner engine (the tables' owner, past any
trigger), as the strongest writer a run could be; `audit-verify` must name it.

- audit row changed and every seal recomputed by plain SHA-256 (keeping the key ids, or posing as
  legacy seals): named by the keyed chain, or by the heads anchored outside the database;
- the seal table emptied; the newest rows deleted with their seals: named by the anchors;
- an original changed together with `uploads.content_hash`: named by the chain (the recorded hash
  is sealed);
- a supplier's IBAN replaced and its `supplier_changes` deleted: named (the register's history is
  sealed); a deletion the retention path recorded is not;
- a key rotated: old seals verify under their key id, new ones under the new; a key the keyring
  lost is named; seals of before migration 0057 verify as legacy.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, insert, select, update

from invoice_pipelines.audit.domain.anchors import Head, LocalAnchors
from invoice_pipelines.audit.domain.chain import genesis, link, row_hash
from invoice_pipelines.audit.domain.seal_keys import keyring_from, local_keyring
from invoice_pipelines.audit.domain.sealed_records import BY_NAME, RECORDS, record_hash
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.cli import main
from invoice_pipelines.db.audit_log import RETENTION_DELETED, SEALED_TABLES
from invoice_pipelines.db.tables import audit_log, audit_seals, supplier_changes, suppliers, uploads
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.settings import ConfigError
from invoice_pipelines_tests.audit.year_of_history import configure_commands, seed_year

LATER = datetime.now(UTC) + timedelta(hours=1)  # every row old enough to be sealed
K1 = keyring_from("11" * 32, "k1")


def _sealed(db, tmp_path, keyring=K1):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    first = verify_archive(db.engine, history.stores, org, now=LATER, keyring=keyring)
    assert first.passed, first.as_dict()
    assert first.chain.anchored  # the head went beside the archive
    return history, org


def _verify(db, history, org, keyring=K1):
    return verify_archive(db.engine, history.stores, org, now=LATER, keyring=keyring)


def _audit_row(db, org_id: int, action: str = "test.later") -> int:
    with db.owner_engine.begin() as conn:
        return conn.execute(
            insert(audit_log)
            .values(organization_id=org_id, created_by="anna", action=action, details={})
            .returning(audit_log.c.id)
        ).scalar_one()


def _current_hash(conn, org_id: int, table: str, record_id: int) -> str | None:
    if table == "audit_log":
        row = conn.execute(select(audit_log).where(audit_log.c.id == record_id)).first()
        return None if row is None else row_hash(row)
    record = BY_NAME[table]
    row = conn.execute(
        select(*(record.table.c[c] for c in record.columns)).where(record.table.c.id == record_id)
    ).first()
    return None if row is None else record_hash(record, row)


def _recompute_without_key(db, org_id: int, *, as_legacy: bool) -> None:
    """What a writer without the key can do: every seal's row hash taken anew, the chain
    recomputed by plain SHA-256 (its key ids kept, or dropped to pass for legacy seals)."""
    s = audit_seals
    with db.owner_engine.begin() as conn:
        seals = conn.execute(
            select(s).where(s.c.organization_id == org_id).order_by(s.c.position)
        ).all()
        previous = genesis(org_id)
        for seal in seals:
            record_id = seal.audit_log_id if seal.record_table == "audit_log" else seal.record_id
            hashed = _current_hash(conn, org_id, seal.record_table, record_id)
            previous = link(previous, hashed)
            values = {"row_hash": hashed, "chain_hash": previous}
            if as_legacy:
                values["key_id"] = None
            conn.execute(
                update(s)
                .where(s.c.organization_id == org_id, s.c.position == seal.position)
                .values(**values)
            )


def _third_audit_row(db, org_id: int) -> int:
    with db.owner_engine.begin() as conn:
        ids = conn.execute(
            select(audit_log.c.id).where(audit_log.c.organization_id == org_id).order_by("id")
        ).scalars()
        third = list(ids)[2]
        conn.execute(update(audit_log).where(audit_log.c.id == third).values(created_by="mallory"))
    return third


def test_a_row_changed_and_the_seals_recomputed_without_the_key_is_named(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    third = _third_audit_row(db, org.id)
    _recompute_without_key(db, org.id, as_legacy=False)

    report = _verify(db, history, org)

    assert not report.passed
    assert any(
        p.startswith(f"audit chain broken at audit row {third} (position 3)")
        and "under key 'k1'" in p
        for p in report.chain.problems
    ), report.chain.problems
    assert report.chain.newly_sealed == 0  # a broken chain is not extended


def test_seals_recomputed_as_legacy_are_named_by_the_anchored_head(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    _third_audit_row(db, org.id)
    _recompute_without_key(db, org.id, as_legacy=True)  # a valid unkeyed chain

    report = _verify(db, history, org)

    assert not report.passed
    assert report.chain.anchors_checked == 1
    assert any(
        p.startswith("anchored chain head at position") and "no longer matches the chain" in p
        for p in report.chain.problems
    ), report.chain.problems


def test_an_emptied_seal_table_is_named(db, tmp_path, monkeypatch, capsys):
    history, org = _sealed(db, tmp_path)
    with db.owner_engine.begin() as conn:
        conn.execute(delete(audit_seals).where(audit_seals.c.organization_id == org.id))

    report = _verify(db, history, org)

    assert not report.passed and report.chain.sealed == 0 and report.chain.newly_sealed == 0
    assert any(
        p.startswith("audit seals emptied: 1 chain head(s) anchored") for p in report.chain.problems
    )

    # the command says it too, with the (default, local) keyring of its data folder
    configure_commands(monkeypatch, db, tmp_path / "stores")
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY", "11" * 32)
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID", "k1")
    assert main(["audit-verify", "--org", org.slug]) == 1
    said = json.loads(capsys.readouterr().out)
    assert said["passed"] is False and said["anchored_heads_checked"] == 1
    assert any(p.startswith("audit seals emptied") for p in said["audit_trail"])


def test_the_newest_rows_deleted_with_their_seals_are_named(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    newest = [_audit_row(db, org.id), _audit_row(db, org.id)]
    second = _verify(db, history, org)
    assert second.passed and second.chain.newly_sealed == 2 and second.chain.anchored
    with db.owner_engine.begin() as conn:
        conn.execute(delete(audit_seals).where(audit_seals.c.audit_log_id.in_(newest)))
        conn.execute(delete(audit_log).where(audit_log.c.id.in_(newest)))

    report = _verify(db, history, org)

    assert not report.passed
    head = second.chain.head_position
    assert any(
        p.startswith("audit chain's tail missing")
        and f"at position {head}, the chain ends at position {head - 2}" in p
        for p in report.chain.problems
    ), report.chain.problems


def test_an_original_changed_with_its_recorded_hash_is_named(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    path = tmp_path / "stores" / "uploads" / history.original["key"]
    forged = path.read_bytes() + b"\n% a changed total"
    path.write_bytes(forged)
    upload = history.original["upload_id"]
    with db.owner_engine.begin() as conn:
        conn.execute(
            update(uploads)
            .where(uploads.c.id == upload)
            .values(content_hash=hashlib.sha256(forged).hexdigest(), size_bytes=len(forged))
        )

    report = _verify(db, history, org)

    assert report.problems == []  # the file has the hash recorded now
    assert (
        f"uploads row {upload} (recorded hash of an original) changed since it was sealed"
        in report.chain.problems
    )


def _supplier_changes_of(conn, org_id: int) -> list[int]:
    sc = supplier_changes
    return conn.execute(select(sc.c.id).where(sc.c.organization_id == org_id)).scalars().all()


def test_an_iban_replaced_with_its_register_history_deleted_is_named(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    with db.owner_engine.begin() as conn:
        changes = _supplier_changes_of(conn, org.id)
        conn.execute(
            update(suppliers)
            .where(suppliers.c.organization_id == org.id)
            .values(bank_accounts=["DE02120300000000202051"])
        )
        conn.execute(delete(supplier_changes).where(supplier_changes.c.id.in_(changes)))

    report = _verify(db, history, org)

    assert changes and not report.passed
    for change in changes:
        assert f"supplier_changes row {change} (supplier change) removed" in "\n".join(
            report.chain.problems
        ), report.chain.problems


def test_a_deletion_the_retention_path_recorded_is_not_named(db, tmp_path):
    history, org = _sealed(db, tmp_path)
    with db.owner_engine.begin() as conn:
        changes = _supplier_changes_of(conn, org.id)
        conn.execute(
            insert(audit_log),
            [
                {
                    "organization_id": org.id,
                    "created_by": "system:retention",
                    "action": RETENTION_DELETED,
                    "entity_type": "supplier_changes",
                    "entity_id": str(change),
                    "details": {"class": "books", "kept_until": "2035-12-31"},
                }
                for change in changes
            ],
        )
        conn.execute(delete(supplier_changes).where(supplier_changes.c.id.in_(changes)))

    report = _verify(db, history, org)

    assert report.passed, report.chain.problems
    assert report.chain.retention_deleted == len(changes) > 0


def test_a_rotated_key_verifies_old_and_new_seals_by_their_ids(db, tmp_path):
    history, org = _sealed(db, tmp_path)  # sealed under k1
    k2 = keyring_from("22" * 32, "k2", f"k1={'11' * 32}")
    _audit_row(db, org.id)

    rotated = _verify(db, history, org, keyring=k2)

    assert rotated.passed and rotated.chain.newly_sealed == 1
    assert rotated.chain.head_key_id == "k2"
    with db.owner_engine.begin() as conn:
        ids = conn.execute(
            select(audit_seals.c.key_id, audit_seals.c.position)
            .where(audit_seals.c.organization_id == org.id)
            .order_by(audit_seals.c.position)
        ).all()
    assert {key_id for key_id, _ in ids[:-1]} == {"k1"} and ids[-1].key_id == "k2"
    assert _verify(db, history, org, keyring=k2).passed

    # a keyring that lost the old key cannot vouch for its seals, and says so
    lost = _verify(db, history, org, keyring=keyring_from("22" * 32, "k2"))
    assert not lost.passed
    assert any(
        "made with key 'k1', which the keyring does not hold" in p for p in lost.chain.problems
    )


def test_seals_of_before_the_key_verify_as_legacy(db, tmp_path):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    # the seals migration 0053 made: audit rows only, plain SHA-256, no key id
    with db.owner_engine.begin() as conn:
        rows = conn.execute(
            select(audit_log).where(audit_log.c.organization_id == org.id).order_by(audit_log.c.id)
        ).all()
        previous, seals = genesis(org.id), []
        for position, row in enumerate(rows, start=1):
            previous = link(previous, row_hash(row))
            seals.append(
                {"organization_id": org.id, "position": position, "audit_log_id": row.id,
                 "row_hash": row_hash(row), "chain_hash": previous}
            )  # fmt: skip
        conn.execute(insert(audit_seals), seals)

    report = _verify(db, history, org)

    assert report.passed, report.chain.problems
    assert report.chain.legacy == len(rows) and report.as_dict()["audit_seals_legacy"] == len(rows)
    assert report.chain.newly_sealed > 0 and report.chain.head_key_id == "k1"
    again = _verify(db, history, org)
    assert again.passed and again.chain.legacy == len(rows)


def test_local_anchors_are_read_only_and_never_overwritten(tmp_path):
    anchors = LocalAnchors(tmp_path)
    at = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    head = Head(7, 12, "a" * 64, "k1", at)
    where = anchors.put(head)
    assert stat.S_IMODE(os.stat(where).st_mode) == 0o444
    written = open(where, "rb").read()
    assert json.loads(written)["position"] == 12

    with pytest.raises(FileExistsError):
        anchors.put(head)  # written again: refused, the first stays
    assert open(where, "rb").read() == written
    anchors.put(Head(7, 13, "c" * 64, "k1", at + timedelta(seconds=1)))
    assert [(a.position, a.chain_hash[0]) for a in anchors.heads(7)] == [(12, "a"), (13, "c")]
    assert anchors.heads(8) == []


def test_a_local_key_is_generated_once_owner_only_and_rotates(tmp_path):
    first = local_keyring(tmp_path)
    path = tmp_path / "audit" / "seal-keys"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert local_keyring(tmp_path).keys == first.keys  # read again, not made anew
    assert first.current.hex() not in repr(first)
    rotated = local_keyring(tmp_path, rotate=True)
    assert rotated.current_id != first.current_id
    assert rotated.keys[first.current_id] == first.current  # the old key kept to verify


@pytest.mark.parametrize(
    ("key", "key_id", "old", "says"),
    [
        ("11" * 32, "", "", "INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID is empty"),
        ("11" * 8, "k1", "", "shorter than 32 bytes"),
        ("zz" * 32, "k1", "", "is not hexadecimal"),
        ("11" * 32, "k 1", "", "must be 1-40 letters"),
        ("11" * 32, "k2", "k1", "is no id=hex pair"),
        ("11" * 32, "k2", f"k2={'33' * 32}", "given twice"),
    ],
)
def test_a_bad_key_setting_is_one_sentence(key, key_id, old, says):
    with pytest.raises(ConfigError, match=says) as raised:
        keyring_from(key, key_id, old)
    assert "11" * 32 not in str(raised.value) and "33" * 32 not in str(raised.value)


def test_a_key_that_cannot_be_kept_or_read_is_one_sentence(db, tmp_path, monkeypatch, capsys):
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("a file where the data folder should be")
    with pytest.raises(
        ConfigError, match="cannot be kept in .*: set INVOICE_PIPELINES_AUDIT_SEAL_KEY"
    ):
        local_keyring(not_a_folder)

    history = seed_year(db, tmp_path / "stores")
    configure_commands(monkeypatch, db, tmp_path / "stores")
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY", "11" * 8)
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID", "k1")
    assert main(["audit-verify", "--org", history.org["slug"]]) == 2
    said = capsys.readouterr().out
    assert said == (
        "invoice-pipelines audit-verify: INVOICE_PIPELINES_AUDIT_SEAL_KEY is shorter than 32 "
        "bytes (64 hex digits)\n"
    )
    with db.owner_engine.begin() as conn:  # nothing sealed without a key
        sealed = select(audit_seals.c.position).where(
            audit_seals.c.organization_id == history.org["id"]
        )
        assert conn.execute(sealed).first() is None


def test_the_retention_path_knows_every_table_the_chain_seals():
    """Offboarding records its deletions of the tables db/audit_log.py lists: a table sealed and
    not listed there would be named removed after every lawful deletion."""
    assert set(SEALED_TABLES) == {record.name for record in RECORDS}
