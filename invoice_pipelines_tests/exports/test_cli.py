"""`invoice-pipelines export` and `export-reopen` on the configured database."""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import audit_log
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines_tests.exports.books import DATEV, incoming

# a month that is over: exports book a month once it is over (closed months)
OVER = date(2026, 10, 5)


def test_export_and_reopen_from_the_command_line(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(tmp_path))
    org = db.new_organization(**DATEV)
    doc = incoming(db.engine, org["id"], "C-1", day=OVER)
    incoming(db.engine, org["id"], "C-2", taxes=[("S", "13", "1.00", "0.13")], day=OVER)

    code = main(["export", "--org", org["slug"], "--month", "2026-10", "--direction", "incoming"])
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 1  # one invoice could not be booked
    assert report["version"] == 1 and report["invoices"] == 1
    assert report["skipped"][0]["number"] == "C-2"
    assert report["files"]["datev"].startswith(str(tmp_path))

    assert (
        main(["export-reopen", "--org", org["slug"], "--documents", str(doc), "--reason", "typo"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["reopened"] == [doc]
    # the audit row names the document it reopened
    with tenant_transaction(db.engine, org["id"]) as conn:
        audited = conn.execute(
            select(audit_log.c.entity_type, audit_log.c.entity_id, audit_log.c.details).where(
                audit_log.c.organization_id == org["id"], audit_log.c.action == "export.reopen"
            )
        ).all()
    assert [(a.entity_type, a.entity_id) for a in audited] == [("incoming_invoice", str(doc))]
    assert audited[0].details == {"reason": "typo", "outcome": "reopened"}
    main(["export", "--org", org["slug"], "--month", "2026-10", "--direction", "incoming"])
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["version"] == 2


def test_export_refused_for_bad_settings(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(tmp_path))
    org = db.new_organization(slug=None)
    assert main(["export", "--org", org["slug"], "--month", "2026-10"]) == 2
    assert "no DATEV Beraternummer" in capsys.readouterr().out
