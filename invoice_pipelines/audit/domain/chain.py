"""The audit trail as a chain of hashes: each organization's `audit_log` rows sealed in the order
of their ids (`audit_seals`), each seal holding the row's SHA-256 and the chain hash, the SHA-256
of the previous seal's chain hash and this row's hash. Checking the chain recomputes both: a seal
whose row is gone names the row removed, a row whose content no longer has its hash names the row
changed, a position missing or a chain hash that does not follow names where the chain broke
(a row removed together with its seal).

Why a chain and not a signed daily manifest: a chain needs no key to keep secret and no
infrastructure to sign, shows which row went or changed, and proves the order of the rows. What
it cannot show alone is the removal of the newest rows together with their seals: every check
and `audit-verify` report the chain's head (position and hash), and the scheduled check records
it in Dagster's event log, a second place the application's database logins cannot rewrite, to
compare with. A chain found broken is not extended until a person has looked.

Rows are sealed once they are `SEAL_AFTER` old, so a transaction still open with a lower id than
a committed row is sealed in its place; a row that arrives below the head all the same is named
(unsealed, below the head) rather than sealed out of order.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, func, insert, select

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
    return hashlib.sha256(f"{previous}{row}".encode()).hexdigest()


@dataclass
class ChainReport:
    sealed: int = 0  # seals checked
    newly_sealed: int = 0
    head_position: int = 0
    head_hash: str = ""
    problems: list[str] = field(default_factory=list)


def _rows(conn: Connection, organization_id: int, ids: list[int]) -> dict:
    a = audit_log
    found = {}
    for first in range(0, len(ids), CHUNK):
        chunk = ids[first : first + CHUNK]
        for row in conn.execute(
            select(a).where(a.c.organization_id == organization_id, a.c.id.in_(chunk))
        ):
            found[row.id] = row
    return found


def check_chain(conn: Connection, organization_id: int) -> ChainReport:
    """Recompute the organization's chain from its first seal: what was removed, changed, broken."""
    s = audit_seals
    seals = conn.execute(
        select(s.c.position, s.c.audit_log_id, s.c.row_hash, s.c.chain_hash)
        .where(s.c.organization_id == organization_id)
        .order_by(s.c.position)
    ).all()
    rows = _rows(conn, organization_id, [seal.audit_log_id for seal in seals])
    report = ChainReport(sealed=len(seals))
    previous, expected_position = genesis(organization_id), 1
    for seal in seals:
        if seal.position != expected_position:
            report.problems.append(
                f"audit chain broken: position(s) {expected_position}..{seal.position - 1} "
                f"missing before audit row {seal.audit_log_id} (rows removed with their seals)"
            )
        elif link(previous, seal.row_hash) != seal.chain_hash:
            report.problems.append(
                f"audit chain broken at audit row {seal.audit_log_id} (position {seal.position}): "
                "its seal does not follow the one before"
            )
        row = rows.get(seal.audit_log_id)
        if row is None:
            report.problems.append(
                f"audit row {seal.audit_log_id} removed (sealed at position {seal.position})"
            )
        elif row_hash(row) != seal.row_hash:
            report.problems.append(f"audit row {seal.audit_log_id} changed since it was sealed")
        previous, expected_position = seal.chain_hash, seal.position + 1
    if seals:
        report.head_position, report.head_hash = seals[-1].position, seals[-1].chain_hash
        late = conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(
                audit_log.c.organization_id == organization_id,
                audit_log.c.id < seals[-1].audit_log_id,
                audit_log.c.id.not_in(
                    select(s.c.audit_log_id).where(s.c.organization_id == organization_id)
                ),
            )
        ).scalar_one()
        if late:
            report.problems.append(f"{late} audit row(s) below the chain's head were never sealed")
    return report


def seal_new_rows(conn: Connection, organization_id: int, now: datetime | None = None) -> int:
    """Seal the organization's audit rows written since the last seal (and older than SEAL_AFTER),
    in the order of their ids; how many."""
    s, a = audit_seals, audit_log
    now = now or datetime.now(UTC)
    head = conn.execute(
        select(s.c.position, s.c.audit_log_id, s.c.chain_hash)
        .where(s.c.organization_id == organization_id)
        .order_by(s.c.position.desc())
        .limit(1)
    ).first()
    position, last_id, previous = (0, 0, genesis(organization_id)) if head is None else head
    new = conn.execute(
        select(a)
        .where(
            a.c.organization_id == organization_id,
            a.c.id > last_id,
            a.c.created_at < now - SEAL_AFTER,
        )
        .order_by(a.c.id)
    ).all()
    seals = []
    for row in new:
        position += 1
        hashed = row_hash(row)
        previous = link(previous, hashed)
        seals.append(
            {
                "organization_id": organization_id,
                "position": position,
                "audit_log_id": row.id,
                "row_hash": hashed,
                "chain_hash": previous,
            }
        )
    for first in range(0, len(seals), CHUNK):
        conn.execute(insert(s), seals[first : first + CHUNK])
    return len(seals)
