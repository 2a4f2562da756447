"""The audit trail as a chain of seals: each organization's `audit_log` rows (in the order of their
ids), its supplier register's history and the hashes recorded when its files were stored
(audit/domain/sealed_records.py) are sealed one after the other (`audit_seals`), each seal naming
its table and row, holding the SHA-256 of the row's sealed content and the chain hash: an
HMAC-SHA256, under a key of the system side (audit/domain/seal_keys.py, its id on the seal), of
the seal's key id, position, table, row id, row hash and the previous seal's chain hash.

Checking the chain recomputes both: a seal whose row is gone names the row removed (unless the
retention path recorded the deletion), a row whose content no longer has its hash names the row
changed, a position missing or a chain hash that does not follow names where the chain broke. The
runtime login can write the seal table but holds no key, so seals it recomputes do not follow.
Seals made before the chain was keyed (migration 0057: no key id, a plain SHA-256 of the previous
chain hash and the row hash) still verify and are counted as legacy; an unkeyed seal after a keyed
one is named.

What the chain in the database cannot show alone, the newest seals removed or every seal
emptied, the heads anchored outside it show (audit/domain/anchors.py): each is compared here.

Rows are sealed once they are `SEAL_AFTER` old, so a transaction still open with a lower id than
a committed row is sealed in its place; an audit row that arrives below the head all the same is
named (unsealed, below the head) rather than sealed out of order. A chain found broken is not
extended until a person has looked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, exists, func, insert, select

from invoice_pipelines.audit.domain.anchors import Anchored
from invoice_pipelines.audit.domain.seal_keys import Keyring
from invoice_pipelines.audit.domain.sealed_records import (
    AUDIT_LOG,
    BY_NAME,
    RECORDS,
    named,
    record_hash,
)
from invoice_pipelines.db.audit_log import RETENTION_DELETED
from invoice_pipelines.db.tables import audit_log, audit_seals

SEAL_AFTER = timedelta(minutes=5)
CHUNK = 5000


def genesis(organization_id: int) -> str:
    return hashlib.sha256(f"invoice_pipelines audit chain {organization_id}".encode()).hexdigest()


def row_hash(row) -> str:
    """SHA-256 of an audit row's content, every column, in a fixed form."""
    created = row.created_at
    if created is not None and created.tzinfo is not None:
        created = created.astimezone(UTC)
    content = [
        row.id,
        row.organization_id,
        row.created_by,
        row.action,
        row.entity_type,
        row.entity_id,
        row.details,
        None if created is None else created.replace(tzinfo=None).isoformat(),
    ]
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def link(previous: str, row: str) -> str:
    """A legacy seal's chain hash (before migration 0057): plain SHA-256, no key."""
    return hashlib.sha256(f"{previous}{row}".encode()).hexdigest()


def keyed_link(
    key: bytes, key_id: str, position: int, table: str, record_id: int, row: str, previous: str
) -> str:
    """A seal's chain hash: HMAC-SHA256 under `key` of everything the seal says."""
    message = f"{key_id}|{position}|{table}|{record_id}|{row}|{previous}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


@dataclass
class ChainReport:
    sealed: int = 0  # seals checked
    newly_sealed: int = 0
    head_position: int = 0
    head_hash: str = ""
    head_key_id: str | None = None
    legacy: int = 0  # seals made before the chain was keyed (no key id)
    sealed_by_table: dict[str, int] = field(default_factory=dict)
    retention_deleted: int = 0  # sealed rows the retention path deleted, as recorded
    anchors_checked: int = 0
    anchored: str = ""  # where the head was anchored this time, if it was
    problems: list[str] = field(default_factory=list)


def _seals(conn: Connection, organization_id: int) -> list:
    s = audit_seals
    return conn.execute(
        select(
            s.c.position,
            s.c.record_table,
            s.c.audit_log_id,
            s.c.record_id,
            s.c.row_hash,
            s.c.chain_hash,
            s.c.key_id,
        )
        .where(s.c.organization_id == organization_id)
        .order_by(s.c.position)
    ).all()


def _record_of(seal) -> tuple[str, int]:
    table = seal.record_table or AUDIT_LOG
    return table, seal.audit_log_id if table == AUDIT_LOG else seal.record_id


def _hashes_now(conn: Connection, organization_id: int, wanted: dict[str, list[int]]) -> dict:
    """(table, id) -> the SHA-256 of the row's sealed content now, for the rows still there."""
    found = {}
    for table, ids in wanted.items():
        record = BY_NAME.get(table)
        if table != AUDIT_LOG and record is None:
            continue  # a table this code does not seal: named removed
        t = audit_log if record is None else record.table
        columns = [t] if record is None else [t.c[c] for c in record.columns]
        for first in range(0, len(ids), CHUNK):
            chunk = ids[first : first + CHUNK]
            for row in conn.execute(
                select(*columns).where(t.c.organization_id == organization_id, t.c.id.in_(chunk))
            ):
                found[table, row.id] = row_hash(row) if record is None else record_hash(record, row)
    return found


def _deleted_by_retention(conn: Connection, organization_id: int, gone: list) -> set:
    """Of the (table, id) gone, those whose deletion the retention path recorded."""
    if not gone:
        return set()
    a = audit_log
    recorded = set()
    for first in range(0, len(gone), CHUNK):
        chunk = gone[first : first + CHUNK]
        rows = conn.execute(
            select(a.c.entity_type, a.c.entity_id).where(
                a.c.organization_id == organization_id,
                a.c.action == RETENTION_DELETED,
                a.c.entity_id.in_({str(record_id) for _, record_id in chunk}),
            )
        )
        recorded |= {(table, entity_id) for table, entity_id in rows}
    return {(table, record_id) for table, record_id in gone if (table, str(record_id)) in recorded}


def _follows(report: ChainReport, keyring: Keyring, seal, previous: str, keyed: bool) -> None:
    """Name the seal when its chain hash does not follow `previous`."""
    table, record_id = _record_of(seal)
    where = f"{named(table, record_id)} (position {seal.position})"
    if seal.key_id is None:
        if keyed:
            report.problems.append(
                f"audit chain broken at {where}: sealed without a key after keyed seals "
                "(the seals were recomputed by someone who does not hold the key)"
            )
        elif link(previous, seal.row_hash) != seal.chain_hash:
            report.problems.append(
                f"audit chain broken at {where}: its seal does not follow the one before"
            )
        else:
            report.legacy += 1
        return
    key = keyring.keys.get(seal.key_id)
    if key is None:
        report.problems.append(
            f"audit seal at {where} was made with key {seal.key_id!r}, which the keyring does "
            "not hold: it cannot be verified (INVOICE_PIPELINES_AUDIT_SEAL_OLD_KEYS)"
        )
        return
    expected = keyed_link(
        key, seal.key_id, seal.position, table, record_id, seal.row_hash, previous
    )
    if not hmac.compare_digest(expected, seal.chain_hash):
        report.problems.append(
            f"audit chain broken at {where}: its seal does not follow the one before under key "
            f"{seal.key_id!r} (recomputed without the key, or changed)"
        )


def _compare_anchors(report: ChainReport, seals: list, anchored: list[Anchored]) -> None:
    """Name what the heads anchored outside the database say the chain lost or rewrote."""
    report.anchors_checked = len(anchored)
    if not anchored:
        return
    if not seals:
        last = anchored[-1]
        report.problems.append(
            f"audit seals emptied: {len(anchored)} chain head(s) anchored outside the database, "
            f"the latest at position {last.position} ({last.at}), but the database holds no seal"
        )
        return
    hashes = {seal.position: seal.chain_hash for seal in seals}
    mismatched = [
        a for a in anchored if a.position in hashes and hashes[a.position] != a.chain_hash
    ]
    if mismatched:
        first = mismatched[0]
        report.problems.append(
            f"anchored chain head at position {first.position} ({first.at}) no longer matches the "
            f"chain (and {len(mismatched) - 1} later head(s)): the chain was rewritten at or "
            "before that position"
        )
    beyond = [a for a in anchored if a.position > report.head_position]
    if beyond:
        last = beyond[-1]
        report.problems.append(
            f"audit chain's tail missing: a head anchored at {last.at} is at position "
            f"{last.position}, the chain ends at position {report.head_position} (the newest "
            "rows removed with their seals)"
        )


def check_chain(
    conn: Connection,
    organization_id: int,
    keyring: Keyring,
    anchored: list[Anchored] | None = None,
) -> ChainReport:
    """Recompute the organization's chain from its first seal and compare it with the heads
    anchored outside the database: what was removed, changed, broken, cut or emptied."""
    seals = _seals(conn, organization_id)
    wanted: dict[str, list[int]] = defaultdict(list)
    for seal in seals:
        table, record_id = _record_of(seal)
        wanted[table].append(record_id)
    now = _hashes_now(conn, organization_id, wanted)
    report = ChainReport(sealed=len(seals))
    report.sealed_by_table = {table: len(ids) for table, ids in wanted.items()}
    previous, expected_position, keyed, gone = genesis(organization_id), 1, False, []
    for seal in seals:
        if seal.position != expected_position:
            report.problems.append(
                f"audit chain broken: position(s) {expected_position}..{seal.position - 1} "
                f"missing before {named(*_record_of(seal))} (rows removed with their seals)"
            )
        else:
            _follows(report, keyring, seal, previous, keyed)
        keyed = keyed or seal.key_id is not None
        record = _record_of(seal)
        hashed = now.get(record)
        if hashed is None:
            gone.append((record, seal.position))
        elif hashed != seal.row_hash:
            report.problems.append(f"{named(*record)} changed since it was sealed")
        previous, expected_position = seal.chain_hash, seal.position + 1
    retained = _deleted_by_retention(conn, organization_id, [record for record, _ in gone])
    report.retention_deleted = len(retained)
    for record, position in gone:
        if record not in retained:
            report.problems.append(f"{named(*record)} removed (sealed at position {position})")
    if seals:
        head = seals[-1]
        report.head_position, report.head_hash = head.position, head.chain_hash
        report.head_key_id = head.key_id
        _late_audit_rows(conn, organization_id, report)
    _compare_anchors(report, seals, anchored or [])
    return report


def _late_audit_rows(conn: Connection, organization_id: int, report: ChainReport) -> None:
    s = audit_seals
    sealed = select(s.c.audit_log_id).where(
        s.c.organization_id == organization_id, s.c.audit_log_id.is_not(None)
    )
    last = conn.execute(
        select(func.max(s.c.audit_log_id)).where(s.c.organization_id == organization_id)
    ).scalar()
    if last is None:
        return
    late = conn.execute(
        select(func.count())
        .select_from(audit_log)
        .where(
            audit_log.c.organization_id == organization_id,
            audit_log.c.id < last,
            audit_log.c.id.not_in(sealed),
        )
    ).scalar_one()
    if late:
        report.problems.append(f"{late} audit row(s) below the chain's head were never sealed")


def _unsealed(conn: Connection, organization_id: int, cutoff: datetime):
    """(table, id, row hash) of every row due a seal, in sealing order: audit rows after the last
    sealed one, then each sealed table's rows that have none yet."""
    s, a = audit_seals, audit_log
    last_id = conn.execute(
        select(func.max(s.c.audit_log_id)).where(s.c.organization_id == organization_id)
    ).scalar()
    for row in conn.execute(
        select(a)
        .where(
            a.c.organization_id == organization_id, a.c.id > (last_id or 0), a.c.created_at < cutoff
        )
        .order_by(a.c.id)
    ):
        yield AUDIT_LOG, row.id, row_hash(row)
    for record in RECORDS:
        t = record.table
        sealed = exists().where(
            s.c.organization_id == organization_id,
            s.c.record_table == record.name,
            s.c.record_id == t.c.id,
        )
        for row in conn.execute(
            select(*(t.c[c] for c in record.columns))
            .where(
                t.c.organization_id == organization_id,
                t.c[record.created] < cutoff,
                *record.ready_conditions(),
                ~sealed,
            )
            .order_by(t.c.id)
        ):
            yield record.name, row.id, record_hash(record, row)


def seal_new_rows(
    conn: Connection, organization_id: int, keyring: Keyring, now: datetime | None = None
) -> int:
    """Seal the organization's rows written since the last seals (and older than SEAL_AFTER)
    under the keyring's current key; how many. Only ever INSERTs seals."""
    s = audit_seals
    now = now or datetime.now(UTC)
    head = conn.execute(
        select(s.c.position, s.c.chain_hash)
        .where(s.c.organization_id == organization_id)
        .order_by(s.c.position.desc())
        .limit(1)
    ).first()
    position, previous = (0, genesis(organization_id)) if head is None else head
    key, key_id = keyring.current, keyring.current_id
    seals = []
    for table, record_id, hashed in list(_unsealed(conn, organization_id, now - SEAL_AFTER)):
        position += 1
        previous = keyed_link(key, key_id, position, table, record_id, hashed, previous)
        seals.append(
            {
                "organization_id": organization_id,
                "position": position,
                "record_table": table,
                "audit_log_id": record_id if table == AUDIT_LOG else None,
                "record_id": None if table == AUDIT_LOG else record_id,
                "row_hash": hashed,
                "chain_hash": previous,
                "key_id": key_id,
            }
        )
    for first in range(0, len(seals), CHUNK):
        conn.execute(insert(s), seals[first : first + CHUNK])
    return len(seals)


def chain_head(conn: Connection, organization_id: int):
    """(position, chain hash, key id) of the organization's last seal, or None."""
    s = audit_seals
    return conn.execute(
        select(s.c.position, s.c.chain_hash, s.c.key_id)
        .where(s.c.organization_id == organization_id)
        .order_by(s.c.position.desc())
        .limit(1)
    ).first()
