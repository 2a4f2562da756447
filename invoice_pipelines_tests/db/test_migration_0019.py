"""Migration 0019 (issue 36) on a database with incoming invoices: the stored duplicate keys are
recomputed with the new normalization (NFKC, invisible and format characters dropped), so a number
stored before with a zero-width space, a soft hyphen or full-width digits matches a re-sent copy;
documents keep their status; NEEDS_REVIEW is allowed after it and turned back into CREATED by its
downgrade. PostgreSQL and SQLite."""

from __future__ import annotations

import sqlalchemy as sa

from invoice_pipelines.core.rules import invoice_number_key
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction

# the table as 0018 has it (the head's table has columns 0018 lacks)
OLD_INVOICES = sa.table(
    "incoming_invoices",
    sa.column("id", sa.BigInteger),
    sa.column("organization_id", sa.BigInteger),
    sa.column("status", sa.String),
    sa.column("content_hash", sa.String),
    sa.column("invoice_number", sa.String),
    sa.column("invoice_number_key", sa.String),
)
STORED = {
    # number as received -> the key 0005's normalization stored (invisible characters kept)
    "RE\u200b-2026-17": "re\u200b-2026-17",
    "RE-\u00ad2026-18": "re-\u00ad2026-18",
    "RE-２０２６-19": "re-２０２６-19",
    "\ufeffRE 2026 20": "\ufeffre202620",
    "RE-2026-21": "re-2026-21",
}


def test_0019_recomputes_every_stored_key_and_keeps_the_documents(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0018") == "0018"
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
                ]
                + [
                    {
                        "organization_id": org,
                        "status": "FAILED",
                        "content_hash": "f" * 64,
                        "invoice_number": None,
                        "invoice_number_key": None,
                    }
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
        keys = {number: key for number, key, _ in rows}
        # the head's keys: 0019 folded the invisible characters, 0028 the separators
        assert keys == {
            "RE\u200b-2026-17": "re202617",
            "RE-\u00ad2026-18": "re202618",
            "RE-２０２６-19": "re202619",
            "\ufeffRE 2026 20": "re202620",
            "RE-2026-21": "re202621",
            None: None,
        }, kind
        assert all(key == invoice_number_key(number) for number, key in keys.items()), kind
        assert [status for *_, status in rows] == [
            "EXPORTED", "VALIDATED", "EXPORTED", "VALIDATED", "EXPORTED", "FAILED"
        ], kind  # fmt: skip

        # NEEDS_REVIEW is a status now; going back to 0018 reads such a document again
        with system_transaction(engine, write=True) as conn:
            conn.execute(
                sa.update(OLD_INVOICES)
                .where(OLD_INVOICES.c.status == "FAILED")
                .values(status="NEEDS_REVIEW")
            )
        assert downgrade(engine, "0018") == "0018"
        with system_transaction(engine) as conn:
            statuses = set(conn.execute(sa.select(OLD_INVOICES.c.status)).scalars())
        assert statuses == {"EXPORTED", "VALIDATED", "CREATED"}, kind
        engine.dispose()
