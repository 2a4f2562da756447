"""A parse server's workers read made-up invoices as they start (intake/domain/warm_up.py): documents
that take the whole way a real upload takes, nothing recorded, and the setting checked where a
person sees it."""

import pytest

from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.warm_up import (
    WARM_DOCUMENTS,
    WARM_UP_WITH_DOCUMENTS,
    made_up_invoices,
    warm_documents,
)
from invoice_pipelines.intake.parser_resource import DocumentParser


def test_the_made_up_invoices_are_valid_cii_and_ubl_read_the_whole_way():
    documents = list(made_up_invoices(8))
    assert len({data for _, data in documents}) == 8
    outcomes = [parse_document(data, name) for name, data in documents]
    # a document that stopped at a finding would warm only part of the way
    assert [o.status for o in outcomes] == ["VALIDATED"] * 8
    assert {o.invoice.number for o in outcomes} == {f"WARM-{i:05d}" for i in range(8)}
    assert [o.format for o in outcomes[:2]] == ["cii", "ubl"]


def test_only_a_parse_servers_workers_warm_with_documents():
    parser = DocumentParser(workers=1, keep_warm_seconds=60)
    assert parser.server_spec().warm_up == WARM_UP_WITH_DOCUMENTS
    own = DocumentParser(workers=1)
    assert own.warm_up != WARM_UP_WITH_DOCUMENTS  # a run's own workers compile only


def test_the_setting(monkeypatch):
    monkeypatch.delenv("INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS", raising=False)
    assert warm_documents() == WARM_DOCUMENTS
    monkeypatch.setenv("INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS", "0")
    assert warm_documents() == 0
    monkeypatch.setenv("INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS", "lots")
    with pytest.raises(ValueError, match="INVOICE_PIPELINES_PARSE_WARM_DOCUMENTS"):
        DocumentParser(workers=1, keep_warm_seconds=60).server_spec()
