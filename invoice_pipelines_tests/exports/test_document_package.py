"""The DATEV document package beside the Buchungsstapel, read back by a reader of our own: the ZIP
holds DATEV's document.xml once and every document it lists once; every booking's Beleglink
(BEDI "<GUID>") resolves to exactly one file. On PostgreSQL and SQLite (the `db` fixture)."""

from __future__ import annotations

import hashlib
import re
import zipfile
from datetime import date
from pathlib import Path
from xml.etree import ElementTree

from sqlalchemy import insert, select, update

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.db.incoming_status import change_status, load_refs
from invoice_pipelines.db.tables import exports, incoming_invoices, sales_invoice_documents, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain import datev_documents
from invoice_pipelines.exports.domain.documents import DocumentStores
from invoice_pipelines.exports.domain.figures import export_figures
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.exports.books import DATEV, customer, incoming, sales_invoice
from invoice_pipelines_tests.exports.datev_reader import read_extf

NS = "{http://xml.datev.de/bedi/tps/document/v06.0}"
XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
BELEGLINK = re.compile(r'BEDI "(.*)"')


# --- the reader -------------------------------------------------------------------------------


def read_package(path: str) -> dict[str, bytes]:
    """GUID -> the bytes of its file, after checking the package as an importer would: one
    document.xml at the top, in DATEV's namespace; each <document> with a GUID and exactly one
    File extension; every other entry of the ZIP listed exactly once, nothing listed twice or
    missing, no folders."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert names.count("document.xml") == 1, names
        assert all("/" not in n for n in names), names
        root = ElementTree.fromstring(archive.read("document.xml"))
        assert root.tag == f"{NS}archive" and root.get("version") == "6.0"
        assert root.find(f"{NS}header/{NS}date") is not None
        files: dict[str, bytes] = {}
        listed: list[str] = []
        for document in root.iter(f"{NS}document"):
            guid = document.get("guid")
            assert guid and GUID.fullmatch(guid), guid
            extensions = [
                e for e in document.findall(f"{NS}extension") if e.get(XSI_TYPE) == "File"
            ]
            assert len(extensions) == 1
            name = extensions[0].get("name")
            assert name in names, name
            assert guid not in files, f"{guid} listed twice"
            listed.append(name)
            files[guid] = archive.read(name)
        assert sorted(listed) == sorted(n for n in names if n != "document.xml")
        assert len(set(listed)) == len(listed)
    return files


def beleglinks(buchungsstapel: str) -> list[str | None]:
    """The Beleglink of every booking row (None where it has none), column 20."""
    rows = read_extf(Path(buchungsstapel).read_bytes())[2:]
    links = []
    for row in rows:
        field = row[19]
        assert field.quoted
        match = BELEGLINK.fullmatch(field.value)
        assert match or field.value == "", field.value
        links.append(match.group(1) if match else None)
    return links


def assert_links_resolve(result, files: dict[str, bytes]) -> list[str | None]:
    links = beleglinks(result.files["datev"])
    for link in links:
        if link is not None:
            assert link in files, f"Beleglink {link} names no file of the package"
    return links


# --- the data ---------------------------------------------------------------------------------


def _original(db, org, store: LocalUploads, doc_id: int, data: bytes, name: str) -> str:
    """The supplier's file of incoming invoice `doc_id`, as the intake keeps it."""
    key = store.put(org["slug"], name, data)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        upload_id = conn.execute(
            insert(uploads)
            .values(
                organization_id=org["id"],
                filename=name,
                storage_key=key,
                size_bytes=len(data),
                content_hash=hashlib.sha256(data).hexdigest(),
                content_type="application/pdf",
                incoming_invoice_id=doc_id,
            )
            .returning(uploads.c.id)
        ).scalar_one()
        conn.execute(
            update(incoming_invoices)
            .where(incoming_invoices.c.id == doc_id)
            .values(upload_id=upload_id)
        )
    return key


def _sales_pdf(db, org, store: LocalFiles, invoice_id: int, data: bytes) -> None:
    key = f"{org['slug']}/sales/{invoice_id}.pdf"
    store.write(key, [data])
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            insert(sales_invoice_documents).values(
                organization_id=org["id"],
                sales_invoice_id=invoice_id,
                kind="facturx",
                status="generated",
                storage_key=key,
                size_bytes=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                format="facturx",
            )
        )


def _setup(db, tmp_path):
    org = db.new_organization(**DATEV, settings={"exports": {}})
    up = LocalUploads(str(tmp_path / "uploads"))
    docs = LocalFiles(str(tmp_path / "documents"))
    return org, up, docs, DocumentStores(up, docs), LocalFiles(str(tmp_path / "exports"))


def _pdf(label: str, size: int = 0) -> bytes:
    return (f"%PDF-1.7\n% {label}\n".encode()).ljust(size, b"0")


# --- the tests --------------------------------------------------------------------------------


def test_every_booking_links_its_document_and_every_document_is_listed_once(db, tmp_path):
    org, up, docs, stores, out = _setup(db, tmp_path)
    one = incoming(db.engine, org["id"], "RE 2026/001")
    two = incoming(
        db.engine,
        org["id"],
        "RE-77",
        taxes=[("S", "19", "100.00", "19.00"), ("S", "7", "10.00", "0.70")],
    )
    originals = {one: _pdf("one"), two: _pdf("two")}
    for doc_id, data in originals.items():
        _original(db, org, up, doc_id, data, f"Rechnung {doc_id}.pdf")

    result = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )

    files = read_package(result.files["datev_documents"])
    links = assert_links_resolve(result, files)
    assert len(links) == 3 and None not in links  # the 19 %/7 % invoice has two rows
    assert sorted(files.values()) == sorted(originals.values())  # the originals, byte for byte
    assert len(set(links)) == 2 == len(files)
    assert result.documents_packed == 2 and "documents_left_out" not in result.notes
    with tenant_transaction(db.engine, org["id"]) as conn:
        recorded = conn.execute(
            select(exports.c.files).where(exports.c.id == result.export_id)
        ).scalar_one()
    assert recorded["datev_documents"] == result.files["datev_documents"]


def test_sales_invoices_carry_the_pdfs_we_wrote(db, tmp_path):
    org, up, docs, stores, out = _setup(db, tmp_path)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    first = sales_invoice(db.engine, org["id"], buyer)
    second = sales_invoice(db.engine, org["id"], buyer)
    _sales_pdf(db, org, docs, first, _pdf("first"))
    # the second's PDF is not written yet: booked, without a link, and the notes say why

    result = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "sales",
        documents=stores,
    )

    files = read_package(result.files["datev_documents"])
    links = assert_links_resolve(result, files)
    assert list(files.values()) == [_pdf("first")]
    assert sorted(links, key=str) == sorted([next(iter(files)), None], key=str)
    [left] = result.notes["documents_left_out"]
    assert left["invoice_id"] == second
    assert left["reason"] == "no PDF of the sales invoice has been written yet"


def test_an_unchanged_month_writes_nothing_and_a_correction_links_the_same_documents(db, tmp_path):
    org, up, docs, stores, out = _setup(db, tmp_path)
    kept = incoming(db.engine, org["id"], "A-1")
    corrected = incoming(db.engine, org["id"], "A-2")
    _original(db, org, up, kept, _pdf("kept"), "a1.pdf")
    _original(db, org, up, corrected, _pdf("corrected"), "a2.pdf")
    v1 = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )

    again = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )
    assert again.unchanged and again.version == 1 and again.files == v1.files
    # the run that found the month unchanged reports the package of the version it kept, as the
    # asset's metadata shows it (it said 0 documents packaged beside that version's zip)
    assert v1.documents_packed == 2 == again.documents_packed
    assert export_figures([again])["documents_packaged"] == 2
    assert sorted(p.name for p in Path(v1.files["datev"]).parent.glob("*.zip")) == [
        Path(v1.files["datev_documents"]).name
    ]

    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        ref = load_refs(conn, org["id"], [corrected])[corrected]
        change_status(conn, ref, Status.VALIDATED, fields={"invoice_number": "A-2 korr"})
    v2 = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )
    assert v2.version == 2
    first, second = (
        read_package(v1.files["datev_documents"]),
        read_package(v2.files["datev_documents"]),
    )
    assert first == second  # same documents, same GUIDs: DATEV links the same files
    assert sorted(filter(None, beleglinks(v2.files["datev"]))) == sorted(second)


def test_a_document_over_datevs_limit_is_left_out_and_reported(db, tmp_path, monkeypatch):
    org, up, docs, stores, out = _setup(db, tmp_path)
    small = incoming(db.engine, org["id"], "S-1")
    big = incoming(db.engine, org["id"], "B-1")
    _original(db, org, up, small, _pdf("small", 500), "small.pdf")
    _original(db, org, up, big, _pdf("big", 3000), "big.pdf")
    monkeypatch.setattr(datev_documents, "MAX_DOCUMENT_BYTES", 2000)

    result = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )

    files = read_package(result.files["datev_documents"])
    assert list(files.values()) == [_pdf("small", 500)]
    [left] = result.notes["documents_left_out"]
    assert left["invoice_id"] == big and left["number"] == "B-1"
    assert "3000 bytes, more than the 2000" in left["reason"]
    links = assert_links_resolve(result, files)
    assert sorted(links, key=str) == sorted([next(iter(files)), None], key=str)
    assert result.invoice_count == 2 and not result.skipped  # booked all the same
    with tenant_transaction(db.engine, org["id"]) as conn:
        notes = conn.execute(
            select(exports.c.notes).where(exports.c.id == result.export_id)
        ).scalar_one()
    assert notes["documents_left_out"] == result.notes["documents_left_out"]


def test_an_original_missing_from_the_archive_is_left_out_with_the_reason(db, tmp_path):
    org, up, docs, stores, out = _setup(db, tmp_path)
    present = incoming(db.engine, org["id"], "P-1")
    missing = incoming(db.engine, org["id"], "M-1")
    _original(db, org, up, present, _pdf("present"), "p.pdf")
    key = _original(db, org, up, missing, _pdf("missing"), "m.pdf")
    (tmp_path / "uploads" / key).unlink()

    result = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )

    files = read_package(result.files["datev_documents"])
    assert list(files.values()) == [_pdf("present")]
    [left] = result.notes["documents_left_out"]
    assert left == {"invoice_id": missing, "number": "M-1", "reason": "the stored file is missing"}
    assert_links_resolve(result, files)
    assert result.version == 1 and result.invoice_count == 2


def test_a_month_exported_before_packages_keeps_its_version(db, tmp_path):
    org, up, docs, stores, out = _setup(db, tmp_path)
    doc = incoming(db.engine, org["id"], "V-1", day=date(2026, 11, 3))
    _original(db, org, up, doc, _pdf("v"), "v.pdf")
    before = run_export(
        db.engine, out, find_organization(db.engine, org["slug"]), "2026-11", "incoming"
    )
    assert "datev_documents" not in before.files and beleglinks(before.files["datev"]) == [None]

    again = run_export(
        db.engine,
        out,
        find_organization(db.engine, org["slug"]),
        "2026-11",
        "incoming",
        documents=stores,
    )

    assert again.unchanged and again.version == 1 and again.files == before.files
