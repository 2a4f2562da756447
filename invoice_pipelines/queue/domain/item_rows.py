"""Writing `batch_job_items` for a kind that runs its chunks itself (invoicing): the items a
request expands to, and each item's outcome. The kind passes its open connection (its chunk's
transaction, under its locks) and set-based SQL or many rows at once: one statement per chunk,
never one per item. The queue's own runners (`items.py`, `atomic.py`) write theirs beside these;
nothing outside the queue writes the table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select

from invoice_pipelines.db.tables import batch_job_items

# what an item expanded from SQL carries (`add_items_sql`)
ORDER_ITEM_COLUMNS = (
    "organization_id",
    "batch_job_id",
    "position",
    "sales_order_id",
    "payload",
    "status",
)


def add_items(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Items from rows (one executemany)."""
    if rows:
        conn.execute(insert(batch_job_items), list(rows))


def add_items_from(conn: Connection, columns: Sequence[str], query: Select) -> None:
    """Items from a SELECT giving `columns`, in one INSERT ... SELECT."""
    conn.execute(insert(batch_job_items).from_select(list(columns), query))


def add_items_sql(conn: Connection, select_sql: str, params: Mapping[str, Any]) -> None:
    """Items from a SELECT in SQL text giving ORDER_ITEM_COLUMNS, in one INSERT ... SELECT (for a
    request read straight from the stored JSON: its ids never travel as bind parameters)."""
    conn.execute(
        text(f"INSERT INTO batch_job_items ({', '.join(ORDER_ITEM_COLUMNS)}) {select_sql}"),
        dict(params),
    )


def record_items(conn: Connection, outcomes: Sequence[Mapping[str, Any]], now: datetime) -> None:
    """Each item's outcome (one executemany): rows of `b_id` (the item), `b_status`, `b_code`,
    `b_message` and `b_invoice` (the sales invoice it made or found)."""
    if not outcomes:
        return
    conn.execute(
        update(batch_job_items)
        .where(batch_job_items.c.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            error_code=bindparam("b_code"),
            error_message=bindparam("b_message"),
            sales_invoice_id=bindparam("b_invoice"),
            updated_at=now,
        ),
        list(outcomes),
    )


def record_items_statement(source_sql: str) -> str:
    """The UPDATE `record_items_from` runs for a source SELECT (its plan can be looked at)."""
    return f"""
        UPDATE batch_job_items bi
        SET status = s.status, error_code = s.error_code, error_message = s.error_message,
            sales_invoice_id = s.sales_invoice_id, updated_at = :now
        FROM ({source_sql}) AS s
        WHERE bi.id = s.item_id
          -- the chunk's window on the (batch_job_id, position) index, not every job's items
          AND bi.batch_job_id = :job AND bi.position > :after AND bi.position <= :up_to
          AND bi.status = 'pending'
        """


def record_items_from(conn: Connection, source_sql: str, params: Mapping[str, Any]) -> int:
    """The outcomes of a chunk's items from a SELECT in SQL text (PostgreSQL) giving `item_id`,
    `status`, `error_code`, `error_message` and `sales_invoice_id`, in one UPDATE ... FROM; how
    many items it recorded. Only items still pending in the chunk's window count (`:job`,
    `:after`, `:up_to`, `:now` in `params`): one another runner recorded meanwhile is left as it
    is, which the caller sees in the count."""
    return conn.execute(text(record_items_statement(source_sql)), dict(params)).rowcount
