"""An organization's number series (`invoice_number_sequences`): invoice numbers and credit note
numbers each have one, locked by the transaction that takes numbers from it, so only a commit
moves it and a rolled back transaction leaves no gap. Batch invoicing and credit notes (billing/)
and the history import (history/) take their numbers through it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import invoice_number_sequences

INVOICES = "sales_invoices"
CREDIT_NOTES = "credit_notes"


def lock_sequence(
    conn: Connection, organization_id: int, name: str, *, nowait: bool = False
) -> int:
    """Lock the organization's series `name` for this transaction; its last value (0 when new).

    PostgreSQL: a row lock (FOR UPDATE) that every transaction taking numbers of the series
    queues on; `nowait` raises (SQLSTATE 55P03) instead of queueing. SQLite: the transaction
    already holds the database write lock (BEGIN IMMEDIATE).
    """
    params = {"org": organization_id, "name": name}
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                "INSERT INTO invoice_number_sequences (organization_id, name, last_value) "
                "VALUES (:org, :name, 0) ON CONFLICT DO NOTHING"
            ),
            params,
        )
        return conn.execute(
            text(
                "SELECT last_value FROM invoice_number_sequences "
                "WHERE organization_id = :org AND name = :name FOR UPDATE"
                + (" NOWAIT" if nowait else "")
            ),
            params,
        ).scalar_one()
    conn.execute(
        text(
            "INSERT OR IGNORE INTO invoice_number_sequences (organization_id, name, last_value) "
            "VALUES (:org, :name, 0)"
        ),
        params,
    )
    return read_sequence(conn, organization_id, name)


def read_sequence(conn: Connection, organization_id: int, name: str) -> int:
    """The series' committed last value, without a lock (0 before the first number)."""
    value = conn.execute(
        select(invoice_number_sequences.c.last_value).where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == name,
        )
    ).scalar()
    return value or 0


def set_sequence(
    conn: Connection, organization_id: int, name: str, last_value: int, now: datetime
) -> None:
    """Move the series to `last_value` (under the lock `lock_sequence` took)."""
    conn.execute(
        update(invoice_number_sequences)
        .where(
            invoice_number_sequences.c.organization_id == organization_id,
            invoice_number_sequences.c.name == name,
        )
        .values(last_value=last_value, updated_at=now)
    )
