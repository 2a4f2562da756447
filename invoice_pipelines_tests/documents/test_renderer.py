"""The document renderer's workers take documents a few at a time; a document that kills its
worker still fails alone, and every other document of its group is built."""

from __future__ import annotations

import os
import pickle
from decimal import Decimal

from invoice_pipelines.documents.domain import renderer as renderer_module
from invoice_pipelines.documents.domain.build import build_in_worker
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines_tests.documents.test_build import make_invoice, source

D = Decimal
DEADLY = 6  # the invoice whose document kills the worker building it


def deadly_build(data: bytes, filename: str, **options):
    """Worker target for this test: dies on the DEADLY invoice, builds the others."""
    _, sources = pickle.loads(data)  # noqa: S301 - the reader and sources of the test's renderer
    if any(
        s.sales_invoice_id == DEADLY for s in (sources if isinstance(sources, list) else [sources])
    ):
        os._exit(3)
    return build_in_worker(data, filename, **options)


class DeadlyRenderer(DocumentRenderer):
    target = "invoice_pipelines_tests.documents.test_renderer:deadly_build"


def test_a_document_that_kills_its_worker_fails_alone():
    sources = [
        source(
            make_invoice([("Bohrer", D(n), D("10"), "S", D("19"))], number=f"RE-2026-{n:06d}"),
            sales_invoice_id=n,
        )
        for n in range(1, 11)
    ]
    assert renderer_module.GROUP < len(sources)  # several groups, the deadly one among them
    renderer = DeadlyRenderer(workers=1)
    try:
        built = renderer.build_many(sources)
    finally:
        renderer.close()
    assert [b.sales_invoice_id for b in built] == list(range(1, 11))
    failed = {b.sales_invoice_id: b.errors for b in built if not b.ok}
    assert list(failed) == [DEADLY]
    assert failed[DEADLY][0]["rule"] == "IP-DOC-WORKER"
    assert "crashed" in failed[DEADLY][0]["message"]
    assert all(b.pdf.startswith(b"%PDF-") for b in built if b.sales_invoice_id != DEADLY)
