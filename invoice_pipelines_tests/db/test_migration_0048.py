"""Migration 0048 (issue 59): a database with documents in every status upgrades with its
VALIDATED documents in `incoming_validated` and `intake_status` set for the rest, keeps every
document through a downgrade (the status index back, the side table gone) and upgrades again.
On PostgreSQL the table is rewritten at fill factor 50."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade

STATUSES = ["UPLOADED", "CREATED", "PARSED", "NEEDS_REVIEW", "VALIDATED", "EXPORTED", "FAILED"]


def _system(conn) -> None:
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT set_config('invoice_pipelines.system', 'on', true)")


def _documents(engine) -> dict[int, str]:
    with engine.begin() as conn:
        _system(conn)
        return dict(conn.execute(sa.text("SELECT id, status FROM incoming_invoices")).all())


def _kept(engine) -> None:
    with engine.begin() as conn:
        _system(conn)
        rows = conn.execute(
            sa.text("SELECT id, status, intake_status FROM incoming_invoices")
        ).all()
        listed = set(
            conn.execute(sa.text("SELECT incoming_invoice_id FROM incoming_validated")).scalars()
        )
    assert listed == {r.id for r in rows if r.status == "VALIDATED"}
    for row in rows:
        accepted = row.status in ("VALIDATED", "EXPORTED")
        assert row.intake_status == (None if accepted else row.status), row


def test_0048_fills_the_set_from_the_documents_and_goes_back(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'm48.sqlite3'}", "postgresql": pg_scratch_factory()}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0047") == "0047"
        with engine.begin() as conn:
            _system(conn)
            orgs = [
                conn.execute(
                    sa.text("INSERT INTO organizations (slug, name) VALUES (:s, :s) RETURNING id"),
                    {"s": f"m48-{n}"},
                ).scalar_one()
                for n in range(2)
            ]
            conn.execute(
                sa.text(
                    "INSERT INTO incoming_invoices (organization_id, content_hash, status) "
                    "VALUES (:o, :h, :s)"
                ),
                [
                    {"o": org, "h": uuid.uuid4().hex, "s": status}
                    for org in orgs
                    for status in STATUSES
                    for _ in range(3)
                ],
            )
        before = _documents(engine)
        assert upgrade(engine) == head_revision()
        assert _documents(engine) == before, kind
        _kept(engine)
        indexes = {ix["name"] for ix in sa.inspect(engine).get_indexes("incoming_invoices")}
        assert "ix_incoming_invoices_org_status" not in indexes, kind
        assert "ix_incoming_invoices_org_intake_status" in indexes, kind
        if kind == "postgresql":
            with engine.connect() as conn:
                options = conn.exec_driver_sql(
                    "SELECT reloptions FROM pg_class WHERE relname = 'incoming_invoices'"
                ).scalar_one()
            assert options == ["fillfactor=50"]

        assert downgrade(engine, "0047") == "0047"
        assert _documents(engine) == before, kind
        inspector = sa.inspect(engine)
        assert "incoming_validated" not in inspector.get_table_names(), kind
        assert "intake_status" not in {
            c["name"] for c in inspector.get_columns("incoming_invoices")
        }
        assert "ix_incoming_invoices_org_status" in {
            ix["name"] for ix in inspector.get_indexes("incoming_invoices")
        }
        # a document moved while the database was back at 0047 is in the set after the upgrade
        with engine.begin() as conn:
            _system(conn)
            conn.exec_driver_sql(
                "UPDATE incoming_invoices SET status = 'VALIDATED' WHERE status = 'EXPORTED'"
            )
        assert upgrade(engine) == head_revision()
        _kept(engine)
        engine.dispose()
