"""Migration 0028 (issue 46) on a database with incoming invoices: the stored duplicate keys are
recomputed by what a person sees (look-alike characters and separators folded), so a number
stored before as "RE-2026-17" matches a copy re-sent as "RE‐2026‐17" or "RE/2026/17"; the
documents keep everything else. Its key is a frozen copy, equal to the live one when written.
PostgreSQL and SQLite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import sqlalchemy as sa

from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import head_revision, upgrade
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines_tests.core.test_duplicate_keys import LOOKALIKES

MIGRATION = (
    Path(__file__).parents[2]
    / "invoice_pipelines/db/migrations/versions/0028_lookalike_number_keys.py"
)
# the table as 0027 has it
OLD_INVOICES = sa.table(
    "incoming_invoices",
    sa.column("id", sa.BigInteger),
    sa.column("organization_id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("content_hash", sa.String),
    sa.column("invoice_number", sa.String),
    sa.column("invoice_number_key", sa.String),
)
# number as received -> the key 0019's normalization stored
STORED = {
    "RE-2026-17": "re-2026-17",
    "RE\u20132026\u201318": "re\u20132026\u201318",
    "\u0420R/2026/19": "\u0440r/2026/19",
    "RE_2026_2O": "re_2026_2o",
    "\u200b": None,
}


def _frozen():
    spec = importlib.util.spec_from_file_location("migration_0028", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_frozen_key_is_the_live_key_as_written() -> None:
    frozen = _frozen()
    for seen, typed in LOOKALIKES:
        for number in (seen, typed):
            assert frozen.invoice_number_key(number) == invoice_number_key(number), number
    for number in ("--", "", None, "x" * 300, "STRAßE\t1", "\u200b"):
        live = invoice_number_key(number)
        assert frozen.invoice_number_key(number) == (None if live is None else live[:255])


def test_0028_recomputes_every_stored_key(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0027") == "0027"
        with system_transaction(engine, write=True) as conn:
            org = conn.execute(
                sa.insert(organizations)
                .values(slug="keys", name="Keys GmbH")
                .returning(organizations.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(OLD_INVOICES),
                [
                    {
                        "organization_id": org,
                        "status": "VALIDATED" if i % 2 else "EXPORTED",
                        "content_hash": f"{i:064d}",
                        "invoice_number": number,
                        "invoice_number_key": key,
                    }
                    for i, (number, key) in enumerate(STORED.items())
                ],
            )
        assert upgrade(engine) == head_revision()

        with system_transaction(engine) as conn:
            rows = conn.execute(
                sa.select(
                    OLD_INVOICES.c.invoice_number,
                    OLD_INVOICES.c.invoice_number_key,
                    OLD_INVOICES.c.status,
                ).order_by(OLD_INVOICES.c.id)
            ).all()
        assert {number: key for number, key, _ in rows} == {
            "RE-2026-17": "re202617",
            "RE\u20132026\u201318": "re202618",
            "\u0420R/2026/19": "pr202619",
            "RE_2026_2O": "re202620",
            "\u200b": None,
        }, kind
        assert [status for *_, status in rows] == [
            "EXPORTED", "VALIDATED", "EXPORTED", "VALIDATED", "EXPORTED"
        ], kind  # fmt: skip
        engine.dispose()
