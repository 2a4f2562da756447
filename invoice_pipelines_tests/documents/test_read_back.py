"""The read-back that proves each written document is the e-invoice library's reader
(`einvoice.read_back.READ_BACK`), which the documents area imports: nothing hands it over, so a
process that loaded neither the definitions nor the intake builds proven documents; the reader's
verdict decides whether a document is built, the renderer's workers use the reader the renderer
holds, and the reader judges our document as the intake judges a supplier's."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from decimal import Decimal

from invoice_pipelines.documents.domain import renderer as renderer_module
from invoice_pipelines.documents.domain.build import build_document
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.einvoice.read_back import READ_BACK, ReadBack
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal


def invoice_source(number: str = "RE-2026-000042"):
    return source(
        make_invoice([("Bohrer HSS 8 mm", D("3"), D("24.90"), "S", D("19"))], number=number)
    )


LEITWEG = "991-12345-67"
ALONE = f"""
import json, sys
from decimal import Decimal as D
from invoice_pipelines.documents.domain.build import build_document

# the areas the build needs, before the test helpers (which read documents with the intake) load
loaded = sorted({{m.split(".")[1] for m in sys.modules if m.startswith("invoice_pipelines.")}})
from invoice_pipelines_tests.documents.test_build import make_invoice, source

invoice = make_invoice([("Bohrer HSS 8 mm", D("3"), D("24.90"), "S", D("19"))])
built = build_document(source(invoice, einvoice_format="xrechnung-cii", leitweg_id="{LEITWEG}"))
print(json.dumps({{"ok": built.ok, "errors": built.errors, "pdf": built.pdf is not None,
                  "xrechnung": built.xrechnung_rules, "loaded": loaded}}))
"""


def test_a_process_without_the_definitions_builds_proven_documents():
    """(Before: NotWired, unless something had loaded definitions.py or wired the intake's
    reader by hand; the scale-out worker and a test run alone met it.)"""
    ran = subprocess.run(
        [sys.executable, "-c", ALONE], capture_output=True, text=True, env=os.environ, check=False
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    said = json.loads(ran.stdout.splitlines()[-1])
    assert said["ok"] and said["pdf"], said["errors"]
    assert said["xrechnung"] == "KoSIT XRechnung rules"
    assert "definitions" not in said["loaded"] and "intake" not in said["loaded"]


class MisreadingReader(ReadBack):
    """The library's reader, but what it reads has another invoice number than was written."""

    def read(self, data: bytes, filename: str):
        outcome = READ_BACK.read(data, filename)
        return dataclasses.replace(
            outcome, invoice=dataclasses.replace(outcome.invoice, number="RE-OTHER")
        )


def test_the_readers_verdict_decides_whether_the_document_is_built():
    built = build_document(invoice_source(), read_back=MisreadingReader())
    assert not built.ok and built.pdf is None
    assert [e["rule"] for e in built.errors] == ["IP-DOC-ROUNDTRIP"]
    assert "number reads back as 'RE-OTHER'" in built.errors[0]["message"]
    assert build_document(invoice_source()).ok  # the library's reader: the same document holds


def test_the_renderers_workers_prove_with_the_renderers_reader(monkeypatch):
    monkeypatch.setattr(renderer_module, "READ_BACK", MisreadingReader())
    renderer = DocumentRenderer(workers=1)
    try:
        [built] = renderer.build_many([invoice_source()])
    finally:
        renderer.close()
    assert not built.ok and built.pdf is None
    assert [e["rule"] for e in built.errors] == ["IP-DOC-ROUNDTRIP"]


def test_the_read_back_judges_our_document_as_the_intake_judges_a_suppliers():
    invoice = make_invoice([("Beratung", D("8"), D("120"), "S", D("19"))], number="RE-2026-7")
    built = build_document(source(invoice, einvoice_format="xrechnung-ubl", leitweg_id=LEITWEG))
    assert built.ok, built.errors
    for data, name in ((built.pdf, "RE-2026-7.pdf"), (built.xrechnung, built.xrechnung_name)):
        ours, theirs = READ_BACK.read(data, name), parse_document(data, name)
        assert (ours.format, ours.status, ours.errors) == (theirs.format, theirs.status, [])
        assert ours.verdict == theirs.verdict and ours.invoice == theirs.invoice
    # what the intake does besides for a supplier's PDF: its page compared with its XML
    assert READ_BACK.read(built.pdf, "RE-2026-7.pdf").raw["page_check"].startswith("not compared")
    assert parse_document(built.pdf, "RE-2026-7.pdf").raw["page_check"] in ("pdftotext", "pypdf")
