"""The intake jobs end to end: real samples in an upload store, the sensor, parse, validate, record."""

import json
import os
import subprocess
import time

import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    build_sensor_context,
    validate_run_config,
)
from sqlalchemy import select

from invoice_pipelines.db.tables import audit_log, incoming_invoices, processing_errors
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.defs import intake_job, retry_failed_invoices_job, upload_sensor
from invoice_pipelines.intake.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.database import Database
from invoice_pipelines.resources.ocr import TesseractOcrEngine
from invoice_pipelines.resources.storage import LocalUploadStore
from invoice_pipelines_tests.conftest import samples_dir

GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"
GOOD_UBL = "xrechnung-testsuite/src/test/business-cases/standard/01.01a-INVOICE_ubl.xml"
BAD_SUMS = "ZUGFeRD-corpus/XML-Rechnung/UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"


def _drop(store, org, files: dict[str, bytes]):
    for name, data in files.items():
        store.put(org["slug"], name, data)
        past = time.time() - 120
        os.utime(os.path.join(store.root, org["slug"], name), (past, past))


def _documents(db, org):
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(incoming_invoices).where(incoming_invoices.c.organization_id == org["id"])
        ).mappings()
        docs = {r["raw_json"]["filename"] if r["raw_json"] else r["id"]: dict(r) for r in rows}
        errors = conn.execute(
            select(processing_errors).where(processing_errors.c.organization_id == org["id"])
        ).mappings()
        by_doc: dict[int, list] = {}
        for e in errors:
            by_doc.setdefault(e["incoming_invoice_id"], []).append(dict(e))
    return docs, by_doc


def _resources(db, store):
    return {
        "database": Database(url=db.url),
        "upload_store": store,
        "ocr_engine": TesseractOcrEngine(),
    }


def _run(job, op_name, db, store, config, raise_on_error=True):
    return job.execute_in_process(
        run_config={"ops": {op_name: {"config": config}}},
        resources=_resources(db, store),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def _run_intake(db, store, org, ids, raise_on_error=True):
    config = {"organization": org["slug"], "document_ids": ids}
    return _run(intake_job, "process_incoming_invoices", db, store, config, raise_on_error)


def test_sensor_launches_one_run_per_batch_tagged_with_the_organization(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    samples = samples_dir()
    _drop(
        store,
        org,
        {"a.xml": (samples / GOOD_CII).read_bytes(), "b.xml": (samples / GOOD_UBL).read_bytes()},
    )
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        resources={"database": Database(url=db.url), "upload_store": store},
    )
    result = upload_sensor(context)
    mine = [
        r for r in result.run_requests if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    assert len(mine) == 1
    config = mine[0].run_config["ops"]["process_incoming_invoices"]["config"]
    assert len(config["document_ids"]) == 2 and config["organization"] == org["slug"]
    assert mine[0].run_key.startswith(f"intake-{org['slug']}-")
    # the next tick with the new cursor launches nothing for the same documents
    context2 = build_sensor_context(
        instance=DagsterInstance.ephemeral(),
        cursor=result.cursor,
        resources={"database": Database(url=db.url), "upload_store": store},
    )
    again = upload_sensor(context2)
    assert not [
        r
        for r in getattr(again, "run_requests", None) or []
        if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    assert json.loads(result.cursor)["dispatched"][org["slug"]] == max(config["document_ids"])


def test_intake_validates_good_fails_bad_and_never_blocks_the_batch(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    samples = samples_dir()
    _drop(
        store,
        org,
        {
            "einfach.xml": (samples / GOOD_CII).read_bytes(),
            "xrechnung-ubl.xml": (samples / GOOD_UBL).read_bytes(),
            "sums-broken.xml": (samples / BAD_SUMS).read_bytes(),
            "empty.pdf": b"",
            "not-a-pdf.pdf": b"PK\x03\x04 this is a zip, not a pdf",
            "xxe.xml": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        },
    )
    scan = scan_uploads(db.engine, store, ScanState())
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert len(ids) == 6

    result = _run_intake(db, store, org, ids)
    assert result.success
    docs, errors = _documents(db, org)
    good = docs["einfach.xml"]
    assert good["status"] == "VALIDATED"
    assert (good["invoice_number"], str(good["gross_total"]), str(good["net_total"])) == (
        "471102",
        "529.87",
        "473.00",
    )
    assert good["processing_version"] == 2 and good["last_processed_at"] is not None
    assert docs["xrechnung-ubl.xml"]["status"] == "VALIDATED"
    broken = docs["sums-broken.xml"]
    assert broken["status"] == "FAILED"
    assert {"BR-CO-10", "BR-CO-15"} <= {e["rule_id"] for e in errors[broken["id"]]}
    for name in ("empty.pdf", "not-a-pdf.pdf", "xxe.xml"):
        assert docs[name]["status"] == "FAILED", name
        assert errors[docs[name]["id"]][0]["message"], name

    # a second run over the same ids does nothing twice: nothing is UPLOADED/CREATED any more
    again = _run_intake(db, store, org, ids, raise_on_error=False)
    assert not again.success
    assert _documents(db, org)[0]["einfach.xml"]["processing_version"] == 2


def test_same_invoice_number_from_same_supplier_is_a_duplicate(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    # different bytes (a trailing comment), same invoice: not caught by the content hash
    _drop(store, org, {"first.xml": data, "resent.xml": data + b"<!-- resent -->"})
    scan = scan_uploads(db.engine, store, ScanState())
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert _run_intake(db, store, org, ids).success
    docs, errors = _documents(db, org)
    assert docs["first.xml"]["status"] == "VALIDATED"
    assert docs["resent.xml"]["status"] == "FAILED"
    assert [e["rule_id"] for e in errors[docs["resent.xml"]["id"]]] == ["IP-DUP-01"]


def test_scanned_image_goes_through_ocr(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    pdf = samples_dir() / "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf"
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-png", "-f", "2", "-l", "2", str(pdf), str(prefix)],
        check=True,
    )
    png = next(tmp_path.glob("page*.png")).read_bytes()
    _drop(store, org, {"scan.png": png})
    scan = scan_uploads(db.engine, store, ScanState())
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert _run_intake(db, store, org, ids).success
    docs, _ = _documents(db, org)
    doc = docs["scan.png"]
    assert doc["format"] == "image"
    assert doc["raw_json"]["ocr_engine"] == "tesseract"
    # the page with the totals: OCR must find the gross amount whatever the final status
    assert doc["gross_total"] is not None and str(doc["gross_total"]) == "529.87"


def test_retry_job_moves_failed_back_and_processes_again(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    _drop(store, org, {"empty.xml": b""})
    scan = scan_uploads(db.engine, store, ScanState())
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    _run_intake(db, store, org, ids)
    docs, _ = _documents(db, org)
    assert docs["empty.xml"]["status"] == "FAILED"

    result = _run(
        retry_failed_invoices_job,
        "retry_failed_incoming_invoices",
        db,
        store,
        {"organization": org["slug"], "documents": {"all_failed": {}}},
    )
    assert result.success
    out = result.output_for_node("retry_failed_incoming_invoices")
    assert out["retried"] == 1 and out["failed"] == 1
    docs, errors = _documents(db, org)
    doc = docs["empty.xml"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        audit = (
            conn.execute(select(audit_log).where(audit_log.c.organization_id == org["id"]))
            .mappings()
            .one()
        )
    assert (audit["action"], audit["created_by"]) == ("intake.retry", "launchpad")
    assert audit["details"]["retried"] == [doc["id"] for doc in [docs["empty.xml"]]]
    # FAILED -> CREATED -> FAILED: two more versions, and errors recorded per attempt
    assert doc["status"] == "FAILED" and doc["processing_version"] == 3
    assert sorted({e["processing_version"] for e in errors[doc["id"]]}) == [1, 3]


def test_manual_trigger_refuses_documents_that_are_not_waiting(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    result = _run_intake(db, store, org, [987654], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "none of the requested documents can be processed" in failure.message


pytestmark = pytest.mark.filterwarnings("ignore::dagster.BetaWarning")


def test_a_document_the_database_refuses_fails_alone(db, tmp_path):
    """PostgreSQL refuses NUL characters in JSONB; that document fails with the reason, the rest of
    the batch is recorded. (SQLite stores it, so there both are VALIDATED.)"""
    import dataclasses

    from invoice_pipelines.intake.parse import parse_document
    from invoice_pipelines.intake.pipeline import process_documents

    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(store, org, {"good.xml": data, "odd.xml": data.replace(b"471102", b"471103")})
    scan = scan_uploads(db.engine, store, ScanState(), only_organizations={org["slug"]})
    ids = scan.batches[0].document_ids

    class ParserWithOddText:
        def parse_many(self, items):
            outcomes = [parse_document(d, name) for d, name in items]
            odd = outcomes[1]
            outcomes[1] = dataclasses.replace(odd, raw={**odd.raw, "text": "page\x00break"})
            return outcomes

    summary = process_documents(
        db.engine, store, org["id"], ids, parser=ParserWithOddText(), ocr=None
    )
    docs, errors = _documents(db, org)
    assert docs["good.xml"]["status"] == "VALIDATED"
    odd = docs["odd.xml"]
    if db.kind == "postgresql":
        assert odd["status"] == "FAILED"
        assert "cannot be stored" in errors[odd["id"]][0]["message"]
        assert summary.outcomes == {"VALIDATED": 1, "FAILED": 1}
    else:
        assert odd["status"] == "VALIDATED"


def test_an_invalid_currency_is_not_shortened_into_a_valid_one(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(store, org, {"euro.xml": data.replace(b">EUR<", b">EURO<"), "good.xml": data})
    scan = scan_uploads(db.engine, store, ScanState(), only_organizations={org["slug"]})
    assert _run_intake(db, store, org, scan.batches[0].document_ids).success
    docs, errors = _documents(db, org)
    assert docs["good.xml"]["status"] == "VALIDATED"
    euro = docs["euro.xml"]
    assert euro["status"] == "FAILED" and euro["currency"] is None
    assert any("InvoiceCurrencyCode" in e["message"] for e in errors[euro["id"]])


def _refusal(result) -> str:
    assert not result.success
    [failure] = result.get_step_failure_events()
    data = failure.event_specific_data
    assert data.error.cause is None and data.user_failure_data is not None
    return data.user_failure_data.description


def test_hand_launched_intake_requests_are_refused_plainly(db, tmp_path):
    org = db.new_organization()
    store = LocalUploadStore(root=str(tmp_path))
    for config, message in [
        (
            {"organization": "no-such-org", "document_ids": [1]},
            "There is no organization 'no-such-org'.",
        ),
        (
            {"organization": org["slug"], "document_ids": []},
            "document_ids is empty: give the ids of the documents to process.",
        ),
    ]:
        result = _run(intake_job, "process_incoming_invoices", db, store, config, False)
        assert _refusal(result) == message
    for config, message in [
        (
            {"organization": "no-such-org", "documents": {"all_failed": {}}},
            "There is no organization 'no-such-org'.",
        ),
        (
            {"organization": org["slug"], "documents": {"document_ids": {"ids": []}}},
            "documents.document_ids.ids is empty: give the ids of the documents to retry.",
        ),
    ]:
        result = _run(
            retry_failed_invoices_job, "retry_failed_incoming_invoices", db, store, config, False
        )
        assert _refusal(result) == message
    with tenant_transaction(db.engine, org["id"]) as conn:
        mine = select(audit_log).where(audit_log.c.organization_id == org["id"])
        assert conn.execute(mine).all() == []


def test_retry_requests_have_one_shape_per_kind():
    op_name = "retry_failed_incoming_invoices"
    for config in [
        {"organization": "acme", "document_ids": [1], "all_failed": True},  # the old flat shape
        {"organization": "acme", "documents": {"all_failed": {}, "document_ids": {"ids": [1]}}},
        {"organization": "acme"},
        {"documents": {"all_failed": {}}},
    ]:
        with pytest.raises(DagsterInvalidConfigError):
            validate_run_config(retry_failed_invoices_job, {"ops": {op_name: {"config": config}}})
    validate_run_config(
        retry_failed_invoices_job,
        {"ops": {op_name: {"config": {"organization": "acme", "documents": {"all_failed": {}}}}}},
    )
