"""The e-invoice library on its own: it loads no Dagster, no SQLAlchemy, no database layer and no
area (a worker process, a command or another program can read and write e-invoices with it), and
`read_einvoice` answers every file with an outcome, never an exception."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pypdf

import invoice_pipelines.einvoice
from invoice_pipelines.einvoice.read import NO_INVOICE_XML, read_einvoice

LIBRARY = Path(invoice_pipelines.einvoice.__file__).parent
AREAS = ("intake", "exports", "billing", "documents", "delivery", "overdue", "quickbooks")
LOADS = """
import importlib, json, sys
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
print(json.dumps(sorted(sys.modules)))
"""


def test_the_library_loads_no_dagster_no_database_and_no_area():
    names = sorted(
        "invoice_pipelines." + ".".join(path.relative_to(LIBRARY.parent).with_suffix("").parts)
        for path in LIBRARY.rglob("*.py")
    )
    names = [name.removesuffix(".__init__") for name in names]
    assert "invoice_pipelines.einvoice.read_back" in names
    ran = subprocess.run(
        [sys.executable, "-c", LOADS, json.dumps(names)], capture_output=True, text=True
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    loaded = json.loads(ran.stdout)
    forbidden = (
        "dagster",
        "sqlalchemy",
        "alembic",
        "invoice_pipelines.db",
        "invoice_pipelines.definitions",
    )
    forbidden += tuple(f"invoice_pipelines.{area}" for area in AREAS)
    assert [m for m in loaded if m.startswith(forbidden)] == []


def _blank_pdf() -> bytes:
    writer = pypdf.PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_pdf_without_invoice_xml_is_no_einvoice():
    outcome = read_einvoice(_blank_pdf(), "letter.pdf")
    assert (outcome.status, outcome.format) == ("FAILED", "pdf")
    assert [f.message for f in outcome.errors] == [NO_INVOICE_XML]
    assert outcome.verdict is not None and outcome.verdict.policy_key == "not_einvoice.no_xml"


def test_what_is_not_a_file_to_read_fails_with_its_reason():
    empty = read_einvoice(b"", "x.xml")
    assert (empty.status, empty.errors[0].message) == ("FAILED", "the file is empty")
    big = read_einvoice(b"<x/>" * 10, "x.xml", max_bytes=16)
    assert big.status == "FAILED" and "more than the limit of 16 bytes" in big.errors[0].message
    truncated = read_einvoice(_blank_pdf()[:200], "x.pdf")
    assert truncated.status == "FAILED" and "truncated" in truncated.errors[0].message
