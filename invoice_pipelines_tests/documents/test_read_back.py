"""The read-back that proves each written document, now handed to the documents area instead of
imported from the intake: the definitions hand over the intake's reader, its verdict decides
whether a document is built, the renderer's workers use the same one, and without a reader
nothing is built (the check is never skipped)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from invoice_pipelines.documents import read_back
from invoice_pipelines.documents.build import build_document
from invoice_pipelines.documents.renderer import DocumentRenderer
from invoice_pipelines.intake.read_back import READ_BACK, IntakeReadBack
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal


def invoice_source(number: str = "RE-2026-000042"):
    return source(
        make_invoice([("Bohrer HSS 8 mm", D("3"), D("24.90"), "S", D("19"))], number=number)
    )


def test_the_definitions_hand_the_documents_area_the_intakes_reader(monkeypatch):
    monkeypatch.setattr(read_back, "_wired", [])
    from invoice_pipelines.definitions import build_definitions

    build_definitions()
    assert read_back.wired() is READ_BACK


def test_without_a_reader_no_document_is_built(monkeypatch):
    monkeypatch.setattr(read_back, "_wired", [])
    with pytest.raises(read_back.NotWired, match="never|proven"):
        build_document(invoice_source())


class MisreadingReader(IntakeReadBack):
    """The intake's reader, but what it reads has another invoice number than was written."""

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
    assert build_document(invoice_source()).ok  # the wired intake reader: the same one holds


def test_the_renderers_workers_prove_with_the_wired_reader(monkeypatch):
    monkeypatch.setattr(read_back, "_wired", [MisreadingReader()])
    renderer = DocumentRenderer(workers=1)
    try:
        [built] = renderer.build_many([invoice_source()])
    finally:
        renderer.close()
    assert not built.ok and built.pdf is None
    assert [e["rule"] for e in built.errors] == ["IP-DOC-ROUNDTRIP"]
