"""Is the archive as it was stored? `audit-verify` and the scheduled `archive_unchanged` check: every
original an upload stored (`uploads.content_hash`), every document written for a sales invoice
(`sales_invoice_documents.sha256`) and every dunning letter (`dunning_notices.letter_sha256`) is
read again and hashed, and the audit trail's chain of hashes (audit/domain/chain.py) is recomputed; each
file changed or missing and each audit row removed or changed is named (a letter written before
its hash was recorded is listed apart), and compared with every chain head anchored outside the
database (audit/domain/anchors.py). Afterwards the rows written since are sealed under the
keyring's current key and the new head is anchored.

Files removed by housekeeping after their retention (`purged_at`) are not looked for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, select

from invoice_pipelines.audit.domain.anchors import Head, anchors_of
from invoice_pipelines.audit.domain.chain import (
    ChainReport,
    chain_head,
    check_chain,
    seal_new_rows,
)
from invoice_pipelines.audit.domain.seal_keys import Keyring, seal_keyring
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.locks import Lock, xact_lock
from invoice_pipelines.db.tables import (
    dunning_notices,
    sales_invoice_documents,
    sales_invoices,
    uploads,
)
from invoice_pipelines.db.tenancy import tenant_transaction


@dataclass
class VerifyReport:
    organization: str
    year: int | None
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)
    # files stored before their hash was recorded (dunning letters before migration 0054)
    not_recorded: list[str] = field(default_factory=list)
    chain: ChainReport = field(default_factory=ChainReport)

    @property
    def passed(self) -> bool:
        return not self.problems and not self.chain.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "organization": self.organization,
            "year": self.year,
            "passed": self.passed,
            "files_checked": self.files_checked,
            "files": self.problems,
            "files_without_recorded_hash": self.not_recorded,
            "audit_rows_sealed": self.chain.sealed,
            "audit_rows_newly_sealed": self.chain.newly_sealed,
            "audit_seals_by_table": self.chain.sealed_by_table,
            "audit_seals_legacy": self.chain.legacy,
            "audit_rows_deleted_by_retention": self.chain.retention_deleted,
            "audit_chain_head": {
                "position": self.chain.head_position,
                "hash": self.chain.head_hash,
                "key_id": self.chain.head_key_id,
            },
            "anchored_heads_checked": self.chain.anchors_checked,
            "anchored": self.chain.anchored,
            "audit_trail": self.chain.problems,
        }


def _stored(conn, organization: Organization, year: int | None):
    u, d, n = uploads, sales_invoice_documents, dunning_notices
    if year is not None:
        zone = ZoneInfo(organization.timezone or "Europe/Berlin")
        start, end = datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone)

    def where(table, *conditions):
        """The organization's rows of `table` that meet `conditions`, stored in the year if one."""
        if year is not None:
            conditions += (and_(table.c.created_at >= start, table.c.created_at < end),)
        return (table.c.organization_id == organization.id, *conditions)

    def of_invoices(table, conditions, *columns):
        """Rows of `table` (each naming a sales invoice): id, the invoice's number, `columns`."""
        si = sales_invoices
        return conn.execute(
            select(table.c.id, si.c.invoice_number, *columns)
            .select_from(table.join(si, si.c.id == table.c.sales_invoice_id))
            .where(*conditions)
            .order_by(table.c.id)
        ).all()

    originals = conn.execute(
        select(u.c.id, u.c.filename, u.c.storage_key, u.c.content_hash)
        .where(*where(u, u.c.purged_at.is_(None)))
        .order_by(u.c.id)
    ).all()
    documents = of_invoices(
        d,
        where(d, d.c.status == "generated", d.c.storage_key.is_not(None)),
        d.c.kind,
        d.c.storage_key,
        d.c.sha256,
    )
    letters = of_invoices(
        n,
        where(n, n.c.letter_status == "written", n.c.letter_key.is_not(None)),
        n.c.level,
        n.c.letter_key,
        n.c.letter_sha256,
    )
    return originals, documents, letters


def _check(report: VerifyReport, what: str, digest, recorded: str | None, done: str):
    """One file: `digest()` its SHA-256 now, `recorded` the one recorded when it was `done`
    ("stored", "written"); a file without a recorded hash is listed apart."""
    report.files_checked += 1
    try:
        found = digest()
    except (FileNotFoundError, OSError):
        report.problems.append(f"{what} is missing")
        return
    if not recorded:
        report.not_recorded.append(what)
    elif found != recorded:
        report.problems.append(f"{what} changed: not the SHA-256 recorded when it was {done}")


def _sha256_of(store, key: str):
    """The SHA-256 of a file of a store without a digest of its own, read whole."""
    return lambda: hashlib.sha256(store.read(key)).hexdigest()


def verify_archive(
    engine: Engine,
    stores: dict[str, Any],
    organization: Organization,
    year: int | None = None,
    *,
    seal: bool = True,
    now: datetime | None = None,
    keyring: Keyring | None = None,
    chain: bool = True,
) -> VerifyReport:
    """Check the organization's stored files (of `year`, by when they were stored; all without)
    and, unless `chain` is False (a caller checking several years checks it once), its whole
    audit chain against its anchored heads; then seal the rows written since (`seal`) and anchor
    the new head."""
    report = VerifyReport(organization.slug, year)
    _check_files(report, engine, stores, organization, year)
    if chain:
        keyring = keyring or seal_keyring(engine.dialect.name)
        _check_chain(report, engine, stores, organization, seal, now, keyring)
    return report


def _check_files(report: VerifyReport, engine: Engine, stores, organization, year) -> None:
    """Each original, document and letter of `year` hashed again and compared with its record."""
    with tenant_transaction(engine, organization) as conn:
        originals, documents, letters = _stored(conn, organization, year)
    upload_store, document_store = stores["upload_store"], stores["document_store"]
    for upload_id, filename, key, recorded in originals:
        what = f"original {key} (upload {upload_id}, {filename})"
        # uploads.content_hash is NOT NULL: every original has its hash recorded
        _check(report, what, partial(upload_store.digest, key), recorded, "stored")
    written = [
        (f"document {key} ({kind} of invoice {number}, document {document_id})", key, recorded)
        for document_id, number, kind, key, recorded in documents
    ] + [
        (f"letter {key} (level {level} of invoice {number}, notice {notice_id})", key, recorded)
        for notice_id, number, level, key, recorded in letters
    ]
    for what, key, recorded in written:
        _check(report, what, _sha256_of(document_store, key), recorded, "written")


def _check_chain(report: VerifyReport, engine, stores, organization, seal, now, keyring) -> None:
    """The whole chain against every anchored head; then the rows written since sealed (`seal`)
    and the new head anchored."""
    anchors = anchors_of(stores.get("export_store"))
    anchored = anchors.heads(organization.id) if anchors is not None else []
    head = None
    with tenant_transaction(engine, organization, write=seal) as conn:
        if seal:  # a second verification waits, then checks what this one sealed
            xact_lock(conn, Lock.AUDIT_SEALS, organization.id)
        report.chain = check_chain(conn, organization.id, keyring, anchored)
        if seal and not report.chain.problems:
            report.chain.newly_sealed = seal_new_rows(
                conn, organization.id, keyring, now or datetime.now(UTC)
            )
            head = chain_head(conn, organization.id)
    if head is None:
        return
    chain = report.chain
    chain.head_position, chain.head_hash, chain.head_key_id = head
    latest = max((a.position for a in anchored), default=0)
    # anchored once committed: a head anchored but never committed would name a missing tail
    if anchors is not None and head.position > latest:
        _anchor(report, anchors, Head(organization.id, *head, datetime.now(UTC)))


def _anchor(report: VerifyReport, anchors, head: Head) -> None:
    """Write the head beside the archive; a store that refuses is named (the seals stay, and the
    next verification anchors the head again)."""
    try:
        report.chain.anchored = anchors.put(head)
    except Exception as exc:  # a store's refusal in any form: one sentence, the check goes on
        report.chain.problems.append(
            f"the chain's head (position {head.position}) could not be anchored in "
            f"{anchors.where()}: {type(exc).__name__}: {exc}"
        )
