"""`incoming list` and `incoming review` as a person reads them (issue 56): the list's text names
its columns above them (its --json stays one object per line), and the review's usage marks
--version as the required argument it is."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import insert

from invoice_pipelines.cli import build_parser, main
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction


def test_incoming_list_names_its_columns_above_the_documents(db, monkeypatch, capsys):
    org = db.new_organization()
    row = {"organization_id": org["id"], "status": "NEEDS_REVIEW", "content_hash": "ab" * 32}
    row |= {"invoice_number": "HEAD-1", "seller_name": "Lieferant GmbH"}
    row |= {"gross_total": "119.00", "currency": "EUR"}
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(insert(incoming_invoices), [row])
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)

    assert main(["incoming", "list", "--org", org["slug"]]) == 0
    header, line, *_ = capsys.readouterr().out.splitlines()
    assert header.split() == ["id", "status", "class", "number", "seller", "gross", "cur", "file"]
    # each name stands where its column starts (id and gross are right-aligned, as their cells)
    for name, cell in (("status", "NEEDS_REVIEW"), ("number", "HEAD-1"), ("seller", "Lieferant")):
        assert header.index(name) == line.index(cell), name
    assert header.index("cur") == line.index("EUR")
    # right-aligned as their cells: the id and the gross total end where their names end
    assert header.index("id") + len("id") == line.index(" ", len(line) - len(line.lstrip()))
    assert header.index("gross") + len("gross") == line.index("119.00") + len("119.00")

    # --json: the documents alone, no header
    assert main(["incoming", "list", "--org", org["slug"], "--json"]) == 0
    (listed,) = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert listed["invoice_number"] == "HEAD-1"

    # nothing listed: the one sentence, no header
    assert main(["incoming", "list", "--org", org["slug"], "--status", "FAILED"]) == 0
    assert capsys.readouterr().out == "no incoming invoices match\n"


def _review_parser():
    incoming = build_parser("incoming")._subparsers._group_actions[0].choices["incoming"]
    return incoming._subparsers._group_actions[0].choices["review"]


def test_incoming_review_usage_marks_version_required(capsys):
    usage = _review_parser().format_usage()
    assert "--version N" in usage
    assert "[--version N]" not in usage and "[--version" not in usage
    argv = ["incoming", "review", "--org", "o", "--id", "1", "--confirm", "--by", "anna"]
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    said = capsys.readouterr().err
    assert "the following arguments are required: --version" in said
    assert "the processing_version that `invoice-pipelines incoming show --org ORG --id ID`" in said
