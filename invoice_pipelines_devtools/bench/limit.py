"""Every bench against the floor of its own work, measured in the same run on the same machine.

A scenario's JSON names its headline figure (`headline`: the key, `per_s`: its value) and the
limit it was measured against: `limit_per_s` (the same work done the cheapest way this machine
knows: a COPY, a set-based statement, the bare renderer or reader), `fraction_of_limit`
(= per_s / limit_per_s, as printed) and `limit_method` (one sentence). Absolute figures differ
twofold between our machines; the fraction, measured side by side, does not.

Helpers shared by the scenarios: the fields themselves, psql on the bench's own database, COPY of
a query to a file, and Tesseract straight from its command line.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import URL, make_url

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_BENCH = REPO_ROOT.parent / "shared" / "bench"


def limit_fields(
    result: dict,
    headline: str,
    limit_per_s: float | None,
    method: str,
    **extra: object,
) -> dict:
    """`result` with its headline, the limit, the fraction and how the limit was measured.

    `headline` is the key of the per-second figure in `result`; a limit of None (not measurable
    here) leaves the fraction None, and `method` says why.
    """
    per_s = result.get(headline)
    limit = significant(limit_per_s) if limit_per_s else None
    result.update(
        {
            "headline": headline,
            "per_s": per_s,
            "limit_per_s": limit,
            "fraction_of_limit": round(per_s / limit, 3) if per_s is not None and limit else None,
            "limit_method": method,
            **extra,
        }
    )
    return result


def significant(value: float) -> float:
    """One decimal for figures of 100 and more, four significant digits below (0.3291 pages/s)."""
    return round(value, 1) if abs(value) >= 100 else float(f"{value:.4g}")


def per_second(count: float, seconds: float) -> float | None:
    return significant(count / seconds) if seconds > 0 else None


# --- PostgreSQL ----------------------------------------------------------------------------------


def libpq(url: URL | str) -> tuple[str, dict[str, str]]:
    """A SQLAlchemy URL as psql takes it (no driver name), and the environment holding its
    password (never on a command line other users can read)."""
    parsed = make_url(url) if isinstance(url, str) else url
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed._replace(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def run_psql_file(url: URL | str, path: Path, variables: dict[str, object]) -> dict:
    """Run a psql script on the database `url` names, then ask that session which database it
    was; returns the script's last output line (`value`), `database` and the wall `seconds`.

    psql runs -f and -c in order in one session, so the database named is the one the script
    ran on."""
    if shutil.which("psql") is None:
        raise FileNotFoundError("psql is not installed (apt-get install postgresql-client)")
    target, env = libpq(url)
    command = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        command += ["-v", f"{name}={value}"]
    command += ["-d", target, "-f", str(path), "-c", "SELECT current_database()"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        detail = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise RuntimeError(f"psql -f {path.name} failed: {detail}")
    lines = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    return {"value": lines[-2], "database": lines[-1], "seconds": seconds}


@contextmanager
def rolled_back(engine, organization_id: int | None = None) -> Iterator:
    """A transaction that is always rolled back: scoped to one organization, or (None) to every
    organization as a system transaction is. For a limit that writes what the run writes."""
    from invoice_pipelines.db.tenancy import scope_to_organization, scope_to_system

    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            if organization_id is not None:
                scope_to_organization(conn, organization_id)
            else:
                scope_to_system(conn)
            yield conn
        finally:
            transaction.rollback()


def current_database(conn) -> str:
    """The database a connection is on: PostgreSQL's name, SQLite's file."""
    if conn.dialect.name == "postgresql":
        return conn.exec_driver_sql("SELECT current_database()").scalar_one()
    return str(conn.engine.url.database)


def copy_query(conn, query, path: Path) -> int:
    """Write the rows of `query` to `path` as CSV and return the bytes written: on PostgreSQL by
    `COPY (query) TO STDOUT` on `conn`'s own transaction (its tenant scope applies), on SQLite by
    reading the rows and writing them with the csv module."""
    if conn.dialect.name != "postgresql":
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            for row in conn.execute(query):
                writer.writerow(row)
        return path.stat().st_size
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    raw = conn.connection.dbapi_connection
    cursor = raw.cursor()
    try:
        if hasattr(cursor, "copy_expert"):  # psycopg2
            sql = cursor.mogrify(str(compiled), compiled.params).decode()
            with path.open("w", encoding="utf-8") as out:
                cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", out)
        else:  # psycopg 3
            import psycopg

            sql = psycopg.ClientCursor(raw).mogrify(str(compiled), compiled.params)
            with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
                with path.open("wb") as out:
                    for block in copy:
                        out.write(block)
    finally:
        cursor.close()
    return path.stat().st_size


# --- Tesseract -------------------------------------------------------------------------------------


def tesseract_plain(
    images: Sequence[bytes], workers: int, *, languages: str = "deu+eng", psm: int = 4
) -> float:
    """Seconds for the tesseract program alone to read `images`: the command line our engine runs
    (TSV out, one OpenMP thread), `workers` at a time, its output not parsed. The floor under our
    OCR."""
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = ["tesseract", "stdin", "stdout", "-l", languages, "--psm", str(psm), "tsv"]

    def read(image: bytes) -> None:
        subprocess.run(command, input=image, env=env, capture_output=True, check=True)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(read, images))
    return time.perf_counter() - started
