"""A migration is history: the revisions that computed duplicate keys (0005, 0019, 0028) each store
the key of their own day on a fresh `migrate`, not the one `core.rules` computes today. The head
stores today's key. PostgreSQL and SQLite."""

from __future__ import annotations

import sqlalchemy as sa

from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import head_revision, upgrade
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction

# incoming_invoices as 0004 has it (the head's table has columns 0004 lacks)
OLD_INVOICES = sa.table(
    "incoming_invoices",
    sa.column("id", sa.BigInteger),
    sa.column("organization_id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("content_hash", sa.String),
    sa.column("invoice_number", sa.String),
)
KEYS = sa.table(
    "incoming_invoices", sa.column("invoice_number", sa.String), sa.column("invoice_number_key")
)
# number as received -> the key each revision stored
NUMBERS = {
    "RE 2024-17": {"0005": "re2024-17", "0019": "re2024-17", "head": "re202417"},
    "RE\u200b-2026-18": {"0005": "re\u200b-2026-18", "0019": "re-2026-18", "head": "re202618"},
    "RE-２０２６-19": {"0005": "re-２０２６-19", "0019": "re-2026-19", "head": "re202619"},
    "\u0420E-20": {"0005": "\u0440e-20", "0019": "\u0440e-20", "head": "pe20"},
    "   ": {"0005": None, "0019": None, "head": None},
}


def _keys(engine) -> dict[str, str | None]:
    with system_transaction(engine) as conn:
        return dict(conn.execute(sa.select(KEYS.c.invoice_number, KEYS.c.invoice_number_key)).all())


def test_each_revision_stores_the_key_of_its_day(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0004") == "0004"
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
                        "status": "VALIDATED",
                        "content_hash": f"{i:064d}",
                        "invoice_number": number,
                    }
                    for i, number in enumerate(NUMBERS)
                ],
            )
        for revision in ("0005", "0019"):
            assert upgrade(engine, revision) == revision
            assert _keys(engine) == {n: keys[revision] for n, keys in NUMBERS.items()}, (
                kind,
                revision,
            )
        assert upgrade(engine) == head_revision()
        head = _keys(engine)
        assert head == {n: keys["head"] for n, keys in NUMBERS.items()}, kind
        # the head's keys are the live rule's: 0028 recomputed every one of them
        assert all(key == invoice_number_key(number) for number, key in head.items()), kind
        engine.dispose()
