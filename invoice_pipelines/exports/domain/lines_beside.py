"""PostgreSQL: a second connection in the export's own snapshot, which reads the month's VAT rows
and writes the lines file by COPY while the export's connection reads, plans and records."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait

from sqlalchemy import text
from sqlalchemy.engine import Engine

from invoice_pipelines.db.tenancy import scope_to_organization
from invoice_pipelines.exports.domain.csv import LINE_COLUMNS, query_file
from invoice_pipelines.resources.files.files import Files


def export_snapshot(conn) -> str | None:
    """PostgreSQL: the id under which a second connection can see exactly what this REPEATABLE
    READ transaction sees (valid while it is open); None elsewhere."""
    if conn.dialect.name != "postgresql":
        return None
    return conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()


SORT_MEMORY = "64MB"  # work_mem of the transaction that writes the lines file


_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")


def read_into(*reads: tuple[Future, object]):
    """For `write_lines_beside(first=...)`: the rows of each (future, query) into its future, one
    after the other (a future whose read failed holds the error; those after it stay unset)."""

    def read(conn) -> None:
        for future, query in reads:
            try:
                future.set_result(conn.execute(query).all())
            except BaseException as exc:
                future.set_exception(exc)
                raise

    return read


def rows_beside(rows: Future, beside: Future):
    """The rows the connection beside read, or None when it failed before it had them."""
    wait([rows, beside], return_when=FIRST_COMPLETED)
    if rows.done() and rows.exception() is None:
        return rows.result()
    return None


def write_lines_beside(
    engine: Engine,
    snapshot: str,
    organization_id: int,
    store: Files,
    key: str,
    query,
    *,
    first: Callable | None = None,
) -> str:
    """The lines file by COPY on a connection of its own, in the export's snapshot (read only;
    the export's transaction stays open until this returns). `first(conn)` runs before, in the
    same transaction."""
    if not _SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"not a snapshot id: {snapshot!r}")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            # the first statement of the transaction: it then sees the export's snapshot
            conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            # the month's lines sorted in memory, not in temporary files (4MB by default: a
            # month of 20,000 invoices and 60,000 lines needs about 10MB)
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
            scope_to_organization(conn, organization_id)
            if first is not None:
                first(conn)
            return query_file(conn, store, key, query, LINE_COLUMNS)
