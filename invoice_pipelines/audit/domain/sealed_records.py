"""What the audit chain seals besides the audit rows: the supplier register's history and every
hash recorded when a file was stored. Each is a table, the columns that must never change once
recorded, and when a row is ready to be sealed; a seal names its table and row id.

The recorded hashes are sealed with what they prove (the original's storage key beside its
`content_hash`, a document's key beside its `sha256`, a letter's beside `letter_sha256`, an
export's files and fingerprint), so changing a file together with its recorded hash is named.
Columns that change by design (a status, `purged_at` when housekeeping removes a file after its
retention) are not sealed.

A row deleted by the retention path is not a rewrite when the deletion was recorded: an audit row
of `RETENTION_DELETED` whose `entity_type` is the table and `entity_id` the row's id, written in
the transaction that deletes (tenants' offboarding and housekeeping, db/audit_log.py
`record_audit_entries`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Table

from invoice_pipelines.db.tables import (
    dunning_notices,
    exports,
    sales_invoice_documents,
    supplier_changes,
    uploads,
)

AUDIT_LOG = "audit_log"


@dataclass(frozen=True)
class SealedRecord:
    table: Table
    columns: tuple[str, ...]  # sealed, in this order (the first is the id)
    created: str  # the column saying when the row was written (sealed once SEAL_AFTER old)
    ready: tuple[str, ...] = ()  # columns that must be set before the row is sealed
    what: str = ""  # how a problem names the row

    @property
    def name(self) -> str:
        return self.table.name

    def ready_conditions(self) -> list:
        return [self.table.c[column].is_not(None) for column in self.ready]


# the order in which a round's new rows are sealed: audit rows (by id) first, then each table
RECORDS: tuple[SealedRecord, ...] = (
    SealedRecord(
        supplier_changes,
        (
            "id",
            "organization_id",
            "supplier_id",
            "action",
            "changed_by",
            "reason",
            "before",
            "after",
            "incoming_invoice_id",
            "changed_at",
        ),
        "changed_at",
        what="supplier change",
    ),
    SealedRecord(
        uploads,
        ("id", "organization_id", "filename", "storage_key", "size_bytes", "content_hash"),
        "created_at",
        what="recorded hash of an original",
    ),
    SealedRecord(
        sales_invoice_documents,
        ("id", "organization_id", "sales_invoice_id", "kind", "storage_key", "sha256"),
        "created_at",
        ready=("sha256", "storage_key"),
        what="recorded hash of a document",
    ),
    SealedRecord(
        dunning_notices,
        ("id", "organization_id", "sales_invoice_id", "level", "letter_key", "letter_sha256"),
        "created_at",
        ready=("letter_sha256", "letter_key"),
        what="recorded hash of a dunning letter",
    ),
    SealedRecord(
        exports,
        ("id", "organization_id", "direction", "period", "version", "fingerprint", "files"),
        "created_at",
        what="export's files and fingerprint",
    ),
)
BY_NAME = {record.name: record for record in RECORDS}


def _plain(value):
    """A column's value in one fixed form, whatever the database gave back."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def record_hash(record: SealedRecord, row) -> str:
    """SHA-256 of a sealed row's sealed columns, its table named first."""
    content = [record.name, *(_plain(getattr(row, column)) for column in record.columns)]
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def named(table: str, record_id: int) -> str:
    """How a problem names a sealed row: `audit row 7`, `supplier_changes row 3 (supplier
    change)`."""
    if table == AUDIT_LOG:
        return f"audit row {record_id}"
    record = BY_NAME.get(table)
    return f"{table} row {record_id}" + (f" ({record.what})" if record else "")
