"""IP-DUP-01 as production runs it: the intake records documents and selects earlier ones by the
stored invoice number key, on SQLite and PostgreSQL; and migration 0005 backfills that key."""

from __future__ import annotations

import os
import time

from sqlalchemy import insert, inspect, select

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.migrate import downgrade, head_revision, upgrade
from invoice_pipelines.db.tables import incoming_invoices, organizations, processing_errors
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.conftest import samples_dir

EINFACH = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"


class InProcessParser:
    """The same parse_document the SafeParser workers run, without the worker processes."""

    def parse_many(self, items: list[tuple[bytes, str]]) -> list[ParseOutcome]:
        return [parse_document(data, filename) for data, filename in items]


def _numbered(number: str) -> bytes:
    data = (samples_dir() / EINFACH).read_bytes()
    return data.replace(b"<ram:ID>471102</ram:ID>", f"<ram:ID>{number}</ram:ID>".encode(), 1)


def _intake(db, store: LocalUploads, org: dict, files: dict[str, bytes]) -> dict[str, dict]:
    for name, data in files.items():
        store.put(org["slug"], name, data)
        past = time.time() - 120
        os.utime(os.path.join(store.root, org["slug"], name), (past, past))
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids, parser=InProcessParser(), ocr=None)
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(incoming_invoices).where(incoming_invoices.c.organization_id == org["id"])
        ).mappings()
        docs = {r["raw_json"]["filename"]: dict(r) for r in rows}
        errors = conn.execute(
            select(processing_errors.c.incoming_invoice_id, processing_errors.c.rule_id)
        ).all()
    for doc in docs.values():
        doc["rules"] = [rule for doc_id, rule in errors if doc_id == doc["id"]]
    return docs


def test_the_same_number_typed_differently_is_a_duplicate_in_the_database(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    first = _intake(db, store, org, {"first.xml": _numbered("RE 2024-17")})
    assert first["first.xml"]["status"] == "VALIDATED"
    assert first["first.xml"]["invoice_number_key"] == "re202417"

    # a later run: the earlier document is found by SQL over the stored key
    docs = _intake(
        db,
        store,
        org,
        {"resent.xml": _numbered("re2024-17"), "other.xml": _numbered("RE 2024-18")},
    )
    assert docs["resent.xml"]["status"] == "FAILED"
    assert docs["resent.xml"]["rules"] == ["IP-DUP-01"]
    assert docs["resent.xml"]["invoice_number"] == "re2024-17"  # the number as the document says
    assert docs["other.xml"]["status"] == "VALIDATED"

    # within one batch too: the second of two spellings is the duplicate
    docs = _intake(
        db,
        store,
        org,
        {"a.xml": _numbered("RE-99 / 1"), "b.xml": _numbered("re-99/1")},
    )
    assert sorted(d["status"] for n, d in docs.items() if n in ("a.xml", "b.xml")) == [
        "FAILED",
        "VALIDATED",
    ]


def test_another_organization_may_receive_the_same_number(db, tmp_path):
    store = LocalUploads(str(tmp_path))
    for org in (db.new_organization(), db.new_organization()):
        docs = _intake(db, store, org, {"x.xml": _numbered("RE 7")})
        assert docs["x.xml"]["status"] == "VALIDATED"


def test_migration_0005_backfills_the_number_key(tmp_path, pg_scratch_factory):
    urls = {"sqlite": f"sqlite:///{tmp_path / 'old.sqlite3'}", "postgresql": pg_scratch_factory()}
    numbers = {"a": "RE 2024-17", "b": "STRAßE\t1", "c": None, "d": "   "}
    for kind, url in urls.items():
        engine = make_engine(url, owner=True)
        assert upgrade(engine, "0004") == "0004"
        with system_transaction(engine, write=True) as conn:
            org = conn.execute(
                insert(organizations).values(slug="old", name="Old").returning(organizations.c.id)
            ).scalar_one()
            for hash_, number in numbers.items():
                conn.execute(
                    insert(incoming_invoices).values(
                        organization_id=org, content_hash=hash_, invoice_number=number
                    )
                )
        assert upgrade(engine) == head_revision()
        with system_transaction(engine) as conn:
            keys = dict(
                conn.execute(
                    select(incoming_invoices.c.content_hash, incoming_invoices.c.invoice_number_key)
                ).all()
            )
        # the head's key (0028: look-alikes and separators folded too)
        assert keys == {"a": "re202417", "b": "strasse1", "c": None, "d": None}, kind
        indexes = {i["name"] for i in inspect(engine).get_indexes("incoming_invoices")}
        assert "ix_incoming_invoices_org_number_key" in indexes, kind

        assert downgrade(engine, "0004") == "0004"
        columns = {c["name"] for c in inspect(engine).get_columns("incoming_invoices")}
        assert "invoice_number_key" not in columns, kind
        with system_transaction(engine) as conn:
            hashes = conn.execute(select(incoming_invoices.c.content_hash)).scalars().all()
        assert sorted(hashes) == sorted(numbers), kind  # the rebuilt table kept every row
        engine.dispose()
