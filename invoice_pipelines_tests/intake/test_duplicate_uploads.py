"""A duplicate upload where a person looks (issue 56), on PostgreSQL and SQLite: a file dropped
again with the same bytes makes no document, and leaves the drop zone; the sensor's `uploads`
observation names it with the invoice it duplicates (id, number, supplier), `incoming uploads`
lists it so, and `incoming list` and `incoming show` list it under that invoice."""

from __future__ import annotations

import json

from dagster import build_sensor_context

from invoice_pipelines.cli import main
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.intake.sensors import upload_sensor
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_intake_jobs import _drop, _instance
from invoice_pipelines_tests.intake.test_review import run_intake


def test_a_duplicate_upload_is_listed_with_the_invoice_it_duplicates(
    db, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    data = own_invoice("DU-1")
    doc = run_intake(db, tmp_path, org, {"first.xml": data})["first.xml"]
    assert doc["status"] == "VALIDATED" and doc["seller_name"]
    supplier = doc["seller_name"]

    # the same bytes dropped again: the sensor registers a duplicate upload and says of what
    store = LocalUploads(str(tmp_path))
    _drop(store, org, {"again.xml": data})
    with build_sensor_context(
        instance=_instance(org["slug"]),
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": store,
        },
    ) as context:
        result = upload_sensor(context)
    assert not [
        r
        for r in result.run_requests or []
        if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    [seen] = [e for e in result.asset_events if e.partition == org["slug"]]
    assert (seen.metadata["registered"].value, seen.metadata["duplicates"].value) == (0, 1)
    table = seen.metadata["duplicate_uploads"].value
    [line] = [row for row in table.splitlines() if "again.xml" in row]
    assert f"| {doc['id']} |" in line and "DU-1" in line and supplier in line
    assert "VALIDATED" in line
    assert list(store.list_inbox(org["slug"], limit=10)) == []  # it left the drop zone

    # `incoming uploads`: every upload, the duplicate with the invoice it duplicates
    assert main(["incoming", "uploads", "--org", org["slug"]]) == 0
    header, *lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert "duplicate" in lines[0] and "again.xml" in lines[0]
    assert (
        f"duplicate of incoming invoice {doc['id']} (DU-1 from {supplier}, VALIDATED)" in (lines[0])
    )
    assert "registered" in lines[1] and "first.xml" in lines[1]
    # the columns are named above them, each name where its cells start (the upload's id is
    # right-aligned, as its cells); the file and its invoice are one column
    assert header.split()[:3] == ["upload", "dropped", "status"]
    assert header.index("status") == lines[0].index("duplicate") == lines[1].index("registered")
    assert header.index("file") == lines[0].index("again.xml") == lines[1].index("first.xml")
    dropped = lines[0].split()[1]
    assert header.index("dropped") == lines[0].index(dropped)
    assert header.index("upload") + len("upload") == len(lines[0]) - len(lines[0].lstrip()) + len(
        lines[0].split()[0]
    )
    assert main(["incoming", "uploads", "--org", org["slug"], "--duplicates", "--json"]) == 0
    [row] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert (row["filename"], row["incoming_invoice_id"], row["invoice_number"]) == (
        "again.xml",
        doc["id"],
        "DU-1",
    )

    # `incoming list` and `incoming show`: under the invoice it duplicates
    assert main(["incoming", "list", "--org", org["slug"]]) == 0
    out = capsys.readouterr().out
    assert "dropped again as again.xml" in out and "a duplicate upload" in out
    assert main(["incoming", "list", "--org", org["slug"], "--json"]) == 0
    [listed] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [u["filename"] for u in listed["duplicate_uploads"]] == ["again.xml"]
    assert main(["incoming", "show", "--org", org["slug"], "--id", str(doc["id"])]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [u["filename"] for u in shown["duplicate_uploads"]] == ["again.xml"]


def test_a_duplicate_of_a_file_not_read_yet_says_so(db, tmp_path) -> None:
    """Two copies in one tick: the second names the first's document, not read yet."""
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    data = own_invoice("DU-2")
    _drop(store, org, {"a.xml": data, "b.xml": data})
    scan = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        max_files_per_tick=10,
        only_organizations={org["slug"]},
    )
    assert (scan.registered, scan.duplicates) == (1, 1)
    [batch] = [b for b in scan.batches if b.organization_slug == org["slug"]]
    [duplicate] = scan.duplicate_uploads[org["slug"]]
    assert duplicate["filename"] in {"a.xml", "b.xml"}
    assert duplicate["incoming_invoice_id"] == batch.document_ids[0]
    assert duplicate["invoice_number"] is None and duplicate["status"] == "UPLOADED"
