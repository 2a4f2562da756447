"""INSERTs that may meet a row already there (ON CONFLICT), on either database the project runs
on (PostgreSQL, SQLite), and the count of what an INSERT ... SELECT added (the QuickBooks
tables' so far)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Select, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_into(conn: Connection, table: Table):
    """An INSERT into `table` in the connection's dialect, which can say what to do ON CONFLICT."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def insert_new(conn: Connection, table: Table, key: Sequence[str]):
    """An INSERT into `table` that skips a row whose `key` (a unique index's columns) is there
    already: of two runs enqueueing at once, the second skips the rows the first inserted."""
    return insert_into(conn, table).on_conflict_do_nothing(index_elements=list(key))


def insert_selected(
    conn: Connection, table: Table, key: Sequence[str], columns: Sequence[str], rows: Select
) -> int:
    """INSERT ... SELECT of `rows` into `columns` of `table`, those whose `key` is there already
    skipped (`insert_new`): how many it inserted, counted from RETURNING (psycopg 3 under
    SQLAlchemy 2.1 reports no row count for an INSERT, -1, which showed every enqueue as 0)."""
    statement = insert_new(conn, table, key).from_select(list(columns), rows)
    return len(conn.execute(statement.returning(table.c.id)).all())
