"""The intake jobs end to end: real samples in an upload store, the sensor, parse, validate, record."""

import json
import os
import signal
import subprocess
import time

import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    Definitions,
    build_sensor_context,
    validate_run_config,
)
from sqlalchemy import select

from invoice_pipelines.db.tables import audit_log, incoming_invoices, processing_errors
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake import assets as intake_assets
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.intake.jobs import intake_job, retry_failed_invoices_job
from invoice_pipelines.intake.parser_resource import DocumentParser
from invoice_pipelines.intake.sensors import upload_sensor
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.ocr.engines import (
    RapidOcrEngine,
    TesseractOcrEngine,
    rasterise_pdf,
)
from invoice_pipelines.resources.workers.parse_server import stop_servers
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


@pytest.fixture(scope="module", autouse=True)
def parse_server(tmp_path_factory):
    """The runs parse as the code location's do: in the warm workers of a parse server that
    outlives each run (resources/workers/parse_server.py), one for this module's runs, stopped at its end.
    (test_parse_server.py covers the server itself, test_parser_resource.py run-owned workers.)"""
    directory = tmp_path_factory.mktemp("parse-server")
    SERVER_DIR[0] = str(directory)
    yield directory
    stop_servers(directory)
    SERVER_DIR[0] = ""


SERVER_DIR = [""]


def _parser() -> DocumentParser:
    return DocumentParser(workers=1, keep_warm_seconds=600, server_dir=SERVER_DIR[0])


def _resources(db, store, ocr=None):
    return {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "upload_store": store,
        "ocr_engine": ocr or RapidOcrEngine(),
        "document_parser": _parser(),
    }


def _instance(*slugs):
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, list(slugs))
    return instance


def _run(job_name, db, store, partition, config=None, raise_on_error=True, ocr=None):
    """Run one of the intake jobs as the daemon would: resolved with the area's assets and checks."""
    job = Definitions(
        assets=[intake_assets.uploads, intake_assets.incoming_invoices],
        jobs=[intake_job, retry_failed_invoices_job],
        resources=_resources(db, store, ocr),
    ).resolve_job_def(job_name)
    return job.execute_in_process(
        run_config=None if config is None else {"ops": {"incoming_invoices": {"config": config}}},
        instance=_instance(partition),
        partition_key=partition,
        raise_on_error=raise_on_error,
    )


def _run_intake(db, store, org, ids, raise_on_error=True):
    return _run("intake_job", db, store, org["slug"], {"document_ids": ids}, raise_on_error)


def _materialization(result, asset="incoming_invoices"):
    """The run's materialization of `asset` (an intake run that registered suppliers under the
    first-invoice policy materializes the supplier register too)."""
    [event] = [
        e
        for e in result.asset_materializations_for_node("incoming_invoices")
        if e.asset_key.to_user_string() == asset
    ]
    return {k: v.value for k, v in event.metadata.items()}


def _check(result, name="no_failed_documents"):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def test_sensor_launches_one_run_per_batch_tagged_with_the_organization(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    samples = samples_dir()
    _drop(
        store,
        org,
        {"a.xml": (samples / GOOD_CII).read_bytes(), "b.xml": (samples / GOOD_UBL).read_bytes()},
    )
    instance = _instance(org["slug"])
    with build_sensor_context(
        instance=instance,
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": store,
        },
    ) as context:
        result = upload_sensor(context)
    mine = [
        r for r in result.run_requests if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    assert len(mine) == 1
    config = mine[0].run_config["ops"]["incoming_invoices"]["config"]
    assert len(config["document_ids"]) == 2 and mine[0].partition_key == org["slug"]
    assert mine[0].run_key.startswith(f"intake-{org['slug']}-")
    # the registration is an observation of the `uploads` asset for that organization
    [seen] = [e for e in result.asset_events if e.partition == org["slug"]]
    assert seen.asset_key.to_user_string() == "uploads"
    assert (seen.metadata["registered"].value, seen.metadata["duplicates"].value) == (2, 0)
    # the next tick with the new cursor launches nothing for the same documents
    with build_sensor_context(
        instance=instance,
        cursor=result.cursor,
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "upload_store": store,
        },
    ) as context2:
        again = upload_sensor(context2)
    assert not [
        r
        for r in getattr(again, "run_requests", None) or []
        if r.tags["invoice_pipelines/organization"] == org["slug"]
    ]
    assert json.loads(result.cursor)["dispatched"][org["slug"]] == max(config["document_ids"])


def test_intake_validates_good_fails_bad_and_never_blocks_the_batch(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    samples = samples_dir()
    _drop(
        store,
        org,
        {
            "einfach.xml": (samples / GOOD_CII).read_bytes(),
            # the two samples' sellers share the VAT id DE123456789 under two names, which the
            # supplier register holds for review (IP-SUP-02, test_supplier_register.py): here
            # the UBL one is another supplier's
            "xrechnung-ubl.xml": (samples / GOOD_UBL)
            .read_bytes()
            .replace(b">DE 123456789<", b">DE 987654321<"),
            "sums-broken.xml": (samples / BAD_SUMS).read_bytes(),
            "empty.pdf": b"",
            "not-a-pdf.pdf": b"PK\x03\x04 this is a zip, not a pdf",
            "xxe.xml": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
        },
    )
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert len(ids) == 6

    result = _run_intake(db, store, org, ids)
    assert result.success
    docs, errors = _documents(db, org)
    # what the asset page shows: counts of this run and of the organization, and which files FAILED
    shown = _materialization(result)
    assert (shown["processed"], shown["validated"], shown["failed"]) == (6, 2, 4)
    assert (shown["count_validated"], shown["count_failed"]) == (2, 4)
    # the shares are named for the status they count: none EXPORTED yet, a third passed validation
    assert shown["exported_rate_pct"] == 0.0 and shown["failed_rate_pct"] == 66.67
    assert shown["passed_validation_rate_pct"] == 33.33
    assert "success_rate_pct" not in shown
    assert "sums-broken.xml" in shown["failed_documents"]
    # the first accepted invoices registered their suppliers (the first-invoice policy): the
    # register's asset shows them in the same run
    register = _materialization(result, "supplier_register")
    assert register["unconfirmed"] >= 1 and register["confirmed_by_a_person"] == 0
    assert register["policy"] == "first_invoice"
    assert register["recorded_by"] == "the first-invoice policy"
    assert "BR-CO-10" in shown["failed_documents"]
    # ... and the run is not silently green about them: its check warns with the same table
    check = _check(result)
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["failed"].value == 4
    table = check.metadata["failed_documents"].value
    for name in ("sums-broken.xml", "empty.pdf", "not-a-pdf.pdf", "xxe.xml"):
        assert name in table
    assert "einfach.xml" not in table
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
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    # different bytes (a trailing comment), same invoice: not caught by the content hash
    _drop(store, org, {"first.xml": data, "resent.xml": data + b"<!-- resent -->"})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert _run_intake(db, store, org, ids).success
    docs, errors = _documents(db, org)
    assert docs["first.xml"]["status"] == "VALIDATED"
    assert docs["resent.xml"]["status"] == "FAILED"
    assert [e["rule_id"] for e in errors[docs["resent.xml"]["id"]]] == ["IP-DUP-01"]


def test_scanned_image_goes_through_ocr(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    pdf = samples_dir() / "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf"
    prefix = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "300", "-gray", "-png", "-f", "2", "-l", "2", str(pdf), str(prefix)],
        check=True,
    )
    png = next(tmp_path.glob("page*.png")).read_bytes()
    _drop(store, org, {"scan.png": png})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    assert _run_intake(db, store, org, ids).success
    docs, _ = _documents(db, org)
    doc = docs["scan.png"]
    assert doc["format"] == "image"
    assert doc["raw_json"]["ocr_engine"] == "rapidocr"
    # the page with the totals: OCR must find the gross amount whatever the final status
    assert doc["gross_total"] is not None and str(doc["gross_total"]) == "529.87"


def test_a_scan_over_its_page_budget_goes_to_review_naming_the_page(db, tmp_path):
    # a budget no page can keep: tesseract is stopped on the first page, and nothing it may have
    # read is taken (no values, never VALIDATED); the other document of the batch is read as usual
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    pdf = samples_dir() / "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf"
    png = rasterise_pdf(pdf.read_bytes(), 72, first_page=2, last_page=2)[0]
    _drop(store, org, {"scan.png": png, "good.xml": (samples_dir() / GOOD_CII).read_bytes()})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    ocr = TesseractOcrEngine(page_timeout_seconds=0.001)
    assert _run("intake_job", db, store, org["slug"], {"document_ids": ids}, ocr=ocr).success
    docs, errors = _documents(db, org)
    doc = docs["scan.png"]
    assert doc["status"] == "NEEDS_REVIEW", [e["message"] for e in errors[doc["id"]]]
    assert doc["gross_total"] is None and doc["invoice_number"] is None
    [finding] = [e for e in errors[doc["id"]] if e["rule_id"] == "IP-OCR-02"]
    assert finding["message"] == (
        "page 1 of 1 was not read within its 0.001 s budget; a person reads this scan"
    )
    assert docs["good.xml"]["status"] == "VALIDATED"


def test_retry_job_moves_failed_back_and_processes_again(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    _drop(store, org, {"empty.xml": b""})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    ids = [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]
    _run_intake(db, store, org, ids)
    docs, _ = _documents(db, org)
    assert docs["empty.xml"]["status"] == "FAILED"

    # the job's own config: every FAILED document of the partition's organization
    result = _run("retry_failed_invoices_job", db, store, org["slug"])
    assert result.success
    out = _materialization(result)
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
    store = LocalUploads(str(tmp_path))
    result = _run_intake(db, store, org, [987654], raise_on_error=False)
    assert _refusal(result) == "None of the requested documents can be processed."


def test_materializing_without_ids_processes_every_waiting_document(db, tmp_path):
    """What "Materialize" on a partition in the UI does: no config, the organization's backlog."""
    org = db.new_organization()
    other = db.new_organization()
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(store, org, {"one.xml": data, "two.xml": b""})
    _drop(store, other, {"theirs.xml": data})
    scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        only_organizations={org["slug"], other["slug"]},
    )
    result = _run("intake_job", db, store, org["slug"])
    assert result.success
    docs, _ = _documents(db, org)
    assert {n: d["status"] for n, d in docs.items()} == {
        "one.xml": "VALIDATED",
        "two.xml": "FAILED",
    }
    theirs = _documents(db, other)[0]
    assert [d["status"] for d in theirs.values()] in (["UPLOADED"], ["CREATED"])
    # nothing waits any more: a second materialization processes nothing and passes its check
    again = _run("intake_job", db, store, org["slug"])
    assert _materialization(again)["processed"] == 0 and _check(again).passed


def test_a_document_the_database_refuses_fails_alone(db, tmp_path):
    """PostgreSQL refuses NUL characters in JSONB; that document fails with the reason, the rest of
    the batch is recorded. (SQLite stores it, so there both are VALIDATED.)"""
    import dataclasses

    from invoice_pipelines.intake.domain.parse import parse_document
    from invoice_pipelines.intake.domain.pipeline import process_documents

    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(store, org, {"good.xml": data, "odd.xml": data.replace(b"471102", b"471103")})
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    ids = scan.batches[0].document_ids

    class ParserWithOddText:
        def parse_many(self, items):
            outcomes = [parse_document(d, name) for d, name in items]
            odd = outcomes[1]
            outcomes[1] = dataclasses.replace(odd, raw={**odd.raw, "text": "page\x00break"})
            return outcomes

    organization = find_organization(db.engine, org["slug"])
    summary = process_documents(
        db.engine, store, organization, ids, parser=ParserWithOddText(), ocr=None
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
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(store, org, {"euro.xml": data.replace(b">EUR<", b">EURO<"), "good.xml": data})
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
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
    store = LocalUploads(str(tmp_path))
    # a partition whose organization is gone (deleted after the partition was added)
    result = _run("intake_job", db, store, "no-such-org", {"document_ids": [1]}, False)
    assert _refusal(result) == "There is no organization 'no-such-org' (its partition outlived it)."
    _drop(store, org, {"good.xml": (samples_dir() / GOOD_CII).read_bytes()})
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    assert _run_intake(db, store, org, scan.batches[0].document_ids).success
    # retrying a document that is not FAILED
    result = _run(
        "retry_failed_invoices_job",
        db,
        store,
        org["slug"],
        {"retry_failed": True, "document_ids": scan.batches[0].document_ids},
        False,
    )
    assert _refusal(result) == "None of the given documents is FAILED, so none can be retried."
    # the refused attempt is on record with its reason; the document is untouched
    with tenant_transaction(db.engine, org["id"]) as conn:
        mine = select(audit_log).where(audit_log.c.organization_id == org["id"])
        [audit] = conn.execute(mine).mappings().all()
    assert audit["details"]["retried"] == []
    assert "only FAILED documents can be retried" in str(audit["details"]["refused"])
    assert _documents(db, org)[0]["good.xml"]["status"] == "VALIDATED"


def test_the_old_config_shapes_are_refused_before_the_run():
    job = Definitions(
        assets=[intake_assets.uploads, intake_assets.incoming_invoices],
        jobs=[retry_failed_invoices_job],
        resources={
            "database": Database(),
            "system_database": SystemDatabase(),
            "upload_store": LocalUploadStore(),
            "ocr_engine": TesseractOcrEngine(),
            "document_parser": _parser(),
        },
    ).resolve_job_def("retry_failed_invoices_job")
    for config in [
        {"organization": "acme", "document_ids": [1]},  # the organization is the partition now
        {"documents": {"all_failed": {}}},
        {"document_ids": ["one"]},
    ]:
        with pytest.raises(DagsterInvalidConfigError):
            validate_run_config(job, {"ops": {"incoming_invoices": {"config": config}}})
    validate_run_config(job, {"ops": {"incoming_invoices": {"config": {"retry_failed": True}}}})


def test_files_of_an_organization_without_its_partition_wait_for_it(db, tmp_path):
    """organizations_sensor adds a new organization's partition on its next tick; until then its
    uploads stay where they are, and nothing is lost once the partition exists."""
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    _drop(store, org, {"a.xml": (samples_dir() / GOOD_CII).read_bytes()})
    instance = DagsterInstance.ephemeral()
    resources = {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "upload_store": store,
    }

    def tick(cursor=None):
        with build_sensor_context(instance=instance, cursor=cursor, resources=resources) as ctx:
            result = upload_sensor(ctx)
        requests = getattr(result, "run_requests", None) or []
        mine = [r for r in requests if r.partition_key == org["slug"]]
        return mine, getattr(result, "cursor", None) or ctx.cursor

    before, cursor = tick()
    assert before == []
    assert _documents(db, org)[0] == {}  # not even registered
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])
    after, _ = tick(cursor)
    assert len(after) == 1
    assert len(after[0].run_config["ops"]["incoming_invoices"]["config"]["document_ids"]) == 1


def test_groups_are_recorded_beside_the_parsing_and_a_failed_recording_is_raised(
    db, tmp_path, monkeypatch
):
    """Each read-ahead group is recorded in a transaction of its own while the next is parsed:
    the parser sees the next group before the last one is recorded, every document is recorded
    once, and when recording a group fails, the run fails with that error, the groups before it
    stay recorded and the rest stay waiting (UPLOADED, for the next dispatch)."""
    from invoice_pipelines.intake.domain import pipeline
    from invoice_pipelines.intake.domain.parse import parse_document

    monkeypatch.setattr(pipeline, "INTAKE_READ_AHEAD_DOCUMENTS", 2)
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    _drop(
        store, org, {f"{n}.xml": data.replace(b"471102", f"4711{n:02}".encode()) for n in range(7)}
    )
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    ids = scan.batches[0].document_ids
    assert len(ids) == 7

    class CountingParser:
        def __init__(self):
            self.batches = []

        def parse_many(self, items):
            self.batches.append([name for _, name in items])
            return [parse_document(d, name) for d, name in items]

    parser = CountingParser()
    organization = find_organization(db.engine, org["slug"])
    summary = pipeline.process_documents(
        db.engine, store, organization, ids, parser=parser, ocr=None
    )
    assert [len(b) for b in parser.batches] == [2, 2, 2, 1]
    assert summary.outcomes == {"VALIDATED": 7} and summary.processed == 7
    docs, _ = _documents(db, org)
    assert {d["status"] for d in docs.values()} == {"VALIDATED"}
    assert {d["processing_version"] for d in docs.values()} == {2}

    # a recording that fails: the third group's transaction
    org = db.new_organization()
    store = LocalUploads(str(tmp_path / "second"))
    _drop(
        store, org, {f"{n}.xml": data.replace(b"471102", f"4712{n:02}".encode()) for n in range(7)}
    )
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    ids = scan.batches[0].document_ids
    real = pipeline._write_outcomes
    calls = []

    def failing_third(*args, **kwargs):
        calls.append(1)
        if len(calls) >= 3:  # from the third group on (its retry document by document too)
            raise RuntimeError("the database went away")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_write_outcomes", failing_third)
    with pytest.raises(RuntimeError, match="the database went away"):
        organization = find_organization(db.engine, org["slug"])
        pipeline.process_documents(
            db.engine, store, organization, ids, parser=CountingParser(), ocr=None
        )
    docs, _ = _documents(db, org)
    by_id = {d["id"]: d["status"] for d in docs.values()}
    assert [by_id[i] for i in sorted(ids)] == ["VALIDATED"] * 4 + ["UPLOADED"] * 3


class _WatchedStore:
    """An upload store that calls `before_read(key)` before each read (the intake reads its
    originals with `read` only)."""

    def __init__(self, store, before_read) -> None:
        self.store = store
        self.before_read = before_read

    def read(self, key, max_bytes=None):
        self.before_read(key)
        return self.store.read(key, max_bytes=max_bytes)


def _drop_and_register(db, store, org, files: dict[str, bytes]) -> list[int]:
    _drop(store, org, files)
    scan = scan_uploads(
        db.engine,
        store,
        ScanState(),
        system=db.system_engine,
        max_files_per_tick=len(files) + 1,
        only_organizations={org["slug"]},
    )
    return [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]


def test_a_parse_server_killed_mid_run_leaves_every_document_recorded_once(
    db, tmp_path, monkeypatch, server_dir
):
    """The run streams its read-ahead groups through the parse server (the next one sent before
    a group's outcomes are collected). The server is killed while the third group is read: the
    second group is at the server then (its documents take a second each), the third is sent
    to a dead socket. The run parses what has no outcome in workers of its own and goes on there;
    every document is recorded exactly once, with its own values."""
    from invoice_pipelines.intake.domain import pipeline
    from invoice_pipelines_tests.intake.test_parse_server import TestParser, _wait_gone

    monkeypatch.setattr(pipeline, "INTAKE_READ_AHEAD_DOCUMENTS", 2)
    org = db.new_organization()
    store = LocalUploads(str(tmp_path / "uploads"))
    data = (samples_dir() / GOOD_CII).read_bytes()
    # the groups: [0 1] [2 3] [4 5] [6]; the test parser sleeps a second on a slow-* file
    names = [f"slow-{n}.xml" if n in (2, 3) else f"{n}.xml" for n in range(7)]
    ids = []
    for n, name in enumerate(names):  # one at a time: the ids follow the names
        ids += _drop_and_register(
            db, store, org, {name: data.replace(b"471102", f"K{n:02}".encode())}
        )
    parser = TestParser(workers=1, keep_warm_seconds=60, server_dir=server_dir)
    reads: list[str] = []

    def kill_at_the_fifth_read(key: str) -> None:
        reads.append(key)
        if len(reads) == 5:  # the first file of the third group
            server = parser.server_pid
            assert server is not None
            os.kill(server, signal.SIGKILL)
            assert _wait_gone(server)

    try:
        organization = find_organization(db.engine, org["slug"])
        summary = pipeline.process_documents(
            db.engine,
            _WatchedStore(store, kill_at_the_fifth_read),
            organization,
            ids,
            parser=parser,
            ocr=None,
        )
        assert parser.server_pid is None and parser.process_ids  # it did lose its server
    finally:
        parser.close()  # (the server_dir fixture stops what is left of the server)
    assert len(reads) == 7
    assert summary.processed == 7 and summary.outcomes == {"VALIDATED": 7}
    assert summary.stale == [] and summary.failures == {}
    docs, errors = _documents(db, org)
    assert {name: d["invoice_number"] for name, d in docs.items()} == {
        name: f"K{n:02}" for n, name in enumerate(names)
    }
    assert {d["status"] for d in docs.values()} == {"VALIDATED"}
    assert {d["processing_version"] for d in docs.values()} == {2}  # recorded once each
    assert errors == {}


def test_a_parser_with_parse_many_only_gets_every_readable_group_once(db, tmp_path, monkeypatch):
    """A parser without parse_stream (SafeParser, the doubles of the tests) gets parse_many
    group by group, each group read only once the one before it is parsed; a group none of
    whose files can be read costs no call and its documents are FAILED with the reason."""
    from invoice_pipelines.intake.domain import pipeline
    from invoice_pipelines.intake.domain.parse import parse_document

    monkeypatch.setattr(pipeline, "INTAKE_READ_AHEAD_DOCUMENTS", 2)
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    data = (samples_dir() / GOOD_CII).read_bytes()
    names = ["a.xml", "b.xml", "gone-c.xml", "gone-d.xml", "e.xml"]
    ids = []
    for n, name in enumerate(names):
        ids += _drop_and_register(
            db, store, org, {name: data.replace(b"471102", f"P{n:02}".encode())}
        )
    events: list[str] = []

    def read(key: str) -> None:
        events.append("read")
        if "gone-" in key:
            raise FileNotFoundError(key)

    class ParseManyOnly:
        def parse_many(self, items):
            events.append(f"parse {len(items)}")
            return [parse_document(d, name) for d, name in items]

    organization = find_organization(db.engine, org["slug"])
    summary = pipeline.process_documents(
        db.engine, _WatchedStore(store, read), organization, ids, parser=ParseManyOnly(), ocr=None
    )
    assert events == ["read", "read", "parse 2", "read", "read", "read", "parse 1"]
    assert summary.outcomes == {"VALIDATED": 3, "FAILED": 2} and summary.processed == 5
    docs, errors = _documents(db, org)
    assert [d["status"] for d in docs.values()].count("VALIDATED") == 3
    unread = [d for d in docs.values() if d["status"] == "FAILED"]
    assert len(unread) == 2
    for doc in unread:
        assert "could not be read" in errors[doc["id"]][0]["message"]


def test_two_groups_held_at_once_stay_within_the_read_ahead(db, tmp_path, monkeypatch):
    """A parser that takes the next group before handing out a group's outcomes (as the parse
    server's stream does) holds two groups at once: each is at most half of
    INTAKE_READ_AHEAD_BYTES, and the originals of a group go once its outcomes are back."""
    import tracemalloc

    from invoice_pipelines.einvoice.read import failed
    from invoice_pipelines.intake.domain import pipeline
    from invoice_pipelines.limits import MiB

    read_ahead = 16 * MiB
    monkeypatch.setattr(pipeline, "INTAKE_READ_AHEAD_BYTES", read_ahead)
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    n, size = 40, MiB  # 40 MiB in all, two and a half times the read-ahead
    ids = _drop_and_register(
        db,
        store,
        org,
        {f"scan-{i:03d}.pdf": b"%PDF-1.4\n" + i.to_bytes(4, "big") * (size // 4) for i in range(n)},
    )
    assert len(ids) == n

    class LookAheadParser:
        def __init__(self) -> None:
            self.held: list[int] = []  # bytes of the batches taken and not handed out

        def parse_many(self, items):
            return [failed("unknown", "parse", "not an invoice", digest="") for _ in items]

        def parse_stream(self, batches):
            source = iter(batches)
            current = next(source, None)
            while current is not None:
                ahead = next(source, None)
                self.held.append(sum(len(d) for d, _ in current + (ahead or [])))
                outcomes = self.parse_many(current)
                current, ahead = ahead, None
                yield outcomes

    parser = LookAheadParser()
    tracemalloc.start()
    try:
        organization = find_organization(db.engine, org["slug"])
        summary = pipeline.process_documents(
            db.engine, store, organization, ids, parser=parser, ocr=None
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.outcomes["FAILED"] == n
    assert len(parser.held) > 2 and max(parser.held) <= read_ahead
    # all of it would be 40 MiB; two full read-aheads 32 MiB
    assert peak < read_ahead + 8 * MiB
