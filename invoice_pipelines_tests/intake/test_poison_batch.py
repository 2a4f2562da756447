"""One bad document stops nothing: poisons dropped among good documents of one batch end in a
recorded state of their own (FAILED with a rule id, or held for review) while every good one is
VALIDATED; a document whose recording raises fails alone; a run that dies sends its documents
again one by one, and a document that keeps killing its runs is FAILED, never dispatched
forever."""

from __future__ import annotations

from dataclasses import replace

import pytest
from dagster import DagsterInstance, DagsterRun, build_run_status_sensor_context
from dagster._core.events import DagsterEvent, DagsterEventType
from dagster._core.utils import make_new_run_id
from lxml import etree
from sqlalchemy import select, update

from invoice_pipelines.db.tables import (
    incoming_discounts,
    incoming_invoices,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import process_documents, retry_documents
from invoice_pipelines.intake.domain.redispatch import DEPTH_TAG, redispatch_batches
from invoice_pipelines.intake.jobs import intake_job
from invoice_pipelines.intake.sensors import intake_failure_sensor
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.limits import MAX_INTAKE_ATTEMPTS
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_intake_jobs import _drop_and_register
from invoice_pipelines_tests.intake.test_skonto_received import (
    CII_DISCOUNT_TERMS,
    RAM,
    _xrechnung,
)

WAITING = {"UPLOADED", "CREATED"}


def _with_discount_terms(number: str, *, start: str, period: str) -> bytes:
    root = etree.fromstring(_xrechnung("cii", number))
    (terms,) = root.xpath("//ram:SpecifiedTradePaymentTerms", namespaces={"ram": RAM})
    block = CII_DISCOUNT_TERMS.replace("20261110", start).replace(
        '<ram:BasisPeriodMeasure unitCode="DAY">10<',
        f'<ram:BasisPeriodMeasure unitCode="DAY">{period}<',
    )
    terms.append(etree.fromstring(block))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def poisons() -> dict[str, bytes]:
    """Documents whose dates, periods and amounts once stopped a batch or held a worker: each is
    a general shape (a date at the calendar's end, a period no number type holds, a base larger
    than the invoice), not one reproduction."""
    xml = _xrechnung("cii", "RE-P-DATE")
    return {
        # issued at the calendar's end, with #SKONTO# steps counted from that day
        "p-issue-9999.xml": xml.replace(b"20261102", b"99991225"),
        # a discount period starting on the calendar's last day
        "p-start-9999.xml": _with_discount_terms("RE-P-START", start="99991231", period="365"),
        # periods no integer should be built from
        "p-period-huge.xml": _with_discount_terms(
            "RE-P-HUGE", start="20261110", period="1E+200000000"
        ),
        "p-period-nan.xml": _with_discount_terms("RE-P-NAN", start="20261110", period="NaN"),
        "p-period-inf.xml": _with_discount_terms("RE-P-INF", start="20261110", period="-Infinity"),
        # a #SKONTO# line of 5000 digits of days, one with a base above the amount due
        "p-days-digits.xml": _xrechnung("cii", "RE-P-DIGITS").replace(
            b"TAGE=7#", b"TAGE=" + b"9" * 5000 + b"#"
        ),
        "p-base-above-due.xml": _xrechnung("cii", "RE-P-BASE").replace(
            b"BASISBETRAG=500.00#", b"BASISBETRAG=99999.00#"
        ),
        # no document at all, and XML that breaks off
        "p-empty.pdf": b"",
        "p-broken.xml": xml[: len(xml) // 2],
    }


class _InProcess:
    def parse_many(self, items):
        return [parse_document(data, name) for data, name in items]


def _register(db, tmp_path, org, files: dict[str, bytes]) -> tuple[LocalUploads, list[int]]:
    store = LocalUploads(str(tmp_path))
    ids = _drop_and_register(db, store, org, files)
    assert len(ids) == len(files)
    return store, ids


def _documents(db, org) -> dict[str, dict]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        rows = conn.execute(
            select(incoming_invoices, uploads.c.filename)
            .join(uploads, uploads.c.id == incoming_invoices.c.upload_id)
            .where(incoming_invoices.c.organization_id == org["id"])
        ).mappings()
        docs = {r["filename"]: dict(r) for r in rows}
        for row in conn.execute(
            select(processing_errors.c.incoming_invoice_id, processing_errors.c.rule_id).where(
                processing_errors.c.organization_id == org["id"]
            )
        ):
            for doc in docs.values():
                if doc["id"] == row.incoming_invoice_id:
                    doc.setdefault("rules", set()).add(row.rule_id)
    return docs


@pytest.mark.slow
def test_each_poison_among_199_good_documents_leaves_199_validated(db, tmp_path):
    org = db.new_organization()
    bad = poisons()
    files = {f"good-{n:03}.xml": _xrechnung("cii", f"RE-GOOD-{n:03}") for n in range(199)}
    files.update(bad)
    store, ids = _register(db, tmp_path, org, files)

    organization = find_organization(db.engine, org["slug"])
    summary = process_documents(db.engine, store, organization, ids, parser=_InProcess(), ocr=None)

    docs = _documents(db, org)
    good = [d for name, d in docs.items() if name.startswith("good-")]
    assert len(good) == 199 and {d["status"] for d in good} == {"VALIDATED"}
    assert summary.processed == len(files)
    for name in bad:
        # every poison ends in a state of its own, never waiting for a run that fails again, and
        # what did not pass says why with a rule id
        assert docs[name]["status"] not in WAITING, name
        if docs[name]["status"] != "VALIDATED":
            assert docs[name].get("rules") and None not in docs[name]["rules"], name
    assert docs["p-empty.pdf"]["rules"] == {"IP-READ-01"}
    assert "IP-PARSE-01" in docs["p-broken.xml"]["rules"]
    # the document dated at the calendar's end is refused by the date rule, in words
    assert docs["p-issue-9999.xml"]["status"] == "FAILED"
    assert "IP-DATE-01" in docs["p-issue-9999.xml"]["rules"]
    # a discount whose base is more than is due is no discount: no "pay 0.00"
    base_doc = docs["p-base-above-due.xml"]["id"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        steps = conn.execute(
            select(incoming_discounts.c.base_amount, incoming_discounts.c.pay).where(
                incoming_discounts.c.incoming_invoice_id == base_doc
            )
        ).all()
    assert [(str(b), p) for b, p in steps if b is not None] == [("99999.00", None)]


class _CorruptingParser:
    """Reads like the intake's parser but hands over, for the files named, an outcome whose values
    no document-level guard expected (an issue date that is not a date): a stand-in for whatever
    a future reader gets wrong."""

    def __init__(self, corrupt: set[str]) -> None:
        self.corrupt = corrupt

    def parse_many(self, items):
        outcomes = []
        for data, name in items:
            outcome = parse_document(data, name)
            if name in self.corrupt:
                outcome.invoice = replace(outcome.invoice, issue_date="not a date")
            outcomes.append(outcome)
        return outcomes


def test_a_document_whose_recording_raises_fails_alone_with_a_rule_id(db, tmp_path):
    org = db.new_organization()
    files = {f"d-{n}.xml": _xrechnung("cii", f"RE-RAISE-{n}") for n in range(6)}
    store, ids = _register(db, tmp_path, org, files)

    organization = find_organization(db.engine, org["slug"])
    process_documents(
        db.engine, store, organization, ids, parser=_CorruptingParser({"d-2.xml"}), ocr=None
    )

    docs = _documents(db, org)
    assert docs["d-2.xml"]["status"] == "FAILED"
    assert docs["d-2.xml"]["rules"] == {"IP-PROC-01"}
    assert "could not be processed" in docs["d-2.xml"]["raw_json"]["not_stored"]
    assert {docs[f"d-{n}.xml"]["status"] for n in (0, 1, 3, 4, 5)} == {"VALIDATED"}


class _DyingParser:
    """A parser whose process dies (the run fails) whenever one file is in what it is given."""

    def __init__(self, deadly: str) -> None:
        self.deadly = deadly
        self.calls = 0

    def parse_many(self, items):
        self.calls += 1
        if any(name == self.deadly for _, name in items):
            raise RuntimeError("parse worker killed")
        return [parse_document(data, name) for data, name in items]


def _attempts(db, org, doc_id: int) -> int:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.intake_attempts).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_a_run_that_dies_is_sent_again_document_by_document_and_the_killer_is_failed(db, tmp_path):
    org = db.new_organization()
    files = {f"k-{n}.xml": _xrechnung("cii", f"RE-KILL-{n}") for n in range(5)}
    store, ids = _register(db, tmp_path, org, files)
    parser = _DyingParser("k-2.xml")

    # the batch run dies: every document still waits
    with pytest.raises(RuntimeError, match="parse worker killed"):
        organization = find_organization(db.engine, org["slug"])
        process_documents(db.engine, store, organization, ids, parser=parser, ocr=None)
    assert {d["status"] for d in _documents(db, org).values()} == {"UPLOADED"}

    # what the failure sensor asks for, run after run, as the daemon would launch it
    runs = 1
    pending = redispatch_batches(
        db.engine, find_organization(db.engine, org["slug"]), ids, failed_run_id="run-0", depth=0
    )
    assert sorted(r.document_id for r in pending) == sorted(ids)
    while pending:
        item = pending.pop(0)
        runs += 1
        try:
            organization = find_organization(db.engine, org["slug"])
            process_documents(
                db.engine, store, organization, [item.document_id], parser=parser, ocr=None
            )
        except RuntimeError:
            pending += redispatch_batches(
                db.engine,
                find_organization(db.engine, org["slug"]),
                [item.document_id],
                failed_run_id=f"run-{runs}",
                depth=item.depth,
            )
        assert runs < 20, "documents are dispatched without end"

    docs = _documents(db, org)
    assert {docs[f"k-{n}.xml"]["status"] for n in (0, 1, 3, 4)} == {"VALIDATED"}
    killer = docs["k-2.xml"]
    assert killer["status"] == "FAILED" and killer["rules"] == {"IP-PROC-02"}
    assert killer["intake_attempts"] == MAX_INTAKE_ATTEMPTS
    # the batch, four documents alone, and the killer alone until its attempts ran out
    assert runs == 1 + 5 + (MAX_INTAKE_ATTEMPTS - 1)

    # a person's retry starts the count again: with the cause gone it is read
    retried, _ = retry_documents(db.engine, org["id"], [killer["id"]], requested_by="test")
    assert retried == [killer["id"]] and _attempts(db, org, killer["id"]) == 0
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, retried, parser=_InProcess(), ocr=None)
    assert _documents(db, org)["k-2.xml"]["status"] == "VALIDATED"


def _failure_event(run) -> DagsterEvent:
    return DagsterEvent(
        event_type_value=DagsterEventType.RUN_FAILURE.value,
        job_name=run.job_name,
        message="the run process died",
    )


def test_the_failure_sensor_asks_for_each_waiting_document_alone_with_its_depth(db, tmp_path):
    org = db.new_organization()
    files = {f"s-{n}.xml": _xrechnung("cii", f"RE-SENSOR-{n}") for n in range(3)}
    store, ids = _register(db, tmp_path, org, files)
    # one of them was recorded before the run died; the other two still wait
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids[:1], parser=_InProcess(), ocr=None)

    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [org["slug"]])

    def sensor_on(run_config, tags):
        run = DagsterRun(
            job_name=intake_job.name,
            run_id=make_new_run_id(),
            run_config=run_config,
            tags={"dagster/partition": org["slug"], **tags},
        )
        with build_run_status_sensor_context(
            sensor_name="intake_failure_sensor",
            dagster_event=_failure_event(run),
            dagster_instance=instance,
            dagster_run=run,
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            return intake_failure_sensor(context.for_run_failure())

    config = {"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}}
    requests = sensor_on(config, {})
    assert (
        sorted(
            r.run_config["ops"]["incoming_invoices"]["config"]["document_ids"][0] for r in requests
        )
        == ids[1:]
    )
    assert all(
        len(r.run_config["ops"]["incoming_invoices"]["config"]["document_ids"]) == 1
        for r in requests
    )
    assert {r.partition_key for r in requests} == {org["slug"]}
    assert {r.tags[DEPTH_TAG] for r in requests} == {"1"}
    assert len({r.run_key for r in requests}) == 2

    # a run at the last depth is not sent again: its document is FAILED by the next run's start
    last = sensor_on(config, {DEPTH_TAG: str(MAX_INTAKE_ATTEMPTS)})
    assert not getattr(last, "run_requests", None) and "none of its documents" in last.skip_message

    # documents that kept failing at the limit are FAILED on the next take-up, not read
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(incoming_invoices)
            .where(incoming_invoices.c.id == ids[1])
            .values(intake_attempts=MAX_INTAKE_ATTEMPTS)
        )
    organization = find_organization(db.engine, org["slug"])
    summary = process_documents(
        db.engine, store, organization, ids[1:], parser=_InProcess(), ocr=None
    )
    assert summary.outcomes["FAILED"] == 1 and summary.outcomes["VALIDATED"] == 1
    assert _documents(db, org)["s-1.xml"]["rules"] == {"IP-PROC-02"}
