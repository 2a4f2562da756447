"""`invoice-pipelines housekeeping` on the configured database and stores."""

from __future__ import annotations

import json

from invoice_pipelines.cli import main
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.housekeeping.helpers import LAST_EXPIRED, at, old_upload


def test_housekeeping_from_the_command_line(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_STORAGE", "local")
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(tmp_path / "exports"))
    org = db.new_organization()
    due = old_upload(db, LocalUploads(str(tmp_path / "uploads")), org, uploaded=at(LAST_EXPIRED))
    path = tmp_path / "uploads" / due["key"]

    assert main(["housekeeping", "--org", org["slug"], "--dry-run"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["organization"] == org["slug"] and report["uploads_removed"] == 1
    assert report["dry_run"] is True and path.exists()

    assert main(["housekeeping", "--org", org["slug"]]) == 0
    assert json.loads(capsys.readouterr().out)["uploads_removed"] == 1
    assert not path.exists()

    assert main(["housekeeping", "--org", "no-such-org"]) == 1
    assert "There is no organization 'no-such-org'." in capsys.readouterr().out
