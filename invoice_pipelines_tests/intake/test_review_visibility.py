"""What a person sees of documents held for review and of rejected ones (issue 36): the intake
run's materialization (documents waiting, rejected documents with their notice's state), the
run's check that warns while documents wait, the `incoming list` command, and the notice that
goes to the upload's sender when the document names no address. PostgreSQL and SQLite."""

from __future__ import annotations

import json

from dagster import DagsterInstance
from sqlalchemy import select, update

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoices, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake import jobs as intake_jobs
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_intake_jobs import (
    _drop,
    _materialization,
    _run,
    _run_intake,
)
from invoice_pipelines_tests.intake.test_review import basic_wl, broken_totals, run_intake, version


def _register(db, store, org, files: dict[str, bytes]) -> list[int]:
    _drop(store, org, files)
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, max_files_per_tick=len(files) + 1,
        only_organizations={org["slug"]},
    )  # fmt: skip
    return [i for b in scan.batches if b.organization_slug == org["slug"] for i in b.document_ids]


def _review_check(result):
    """The intake run's own evaluation of no_documents_waiting_for_review."""
    [evaluation] = [
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "no_documents_waiting_for_review"
    ]
    return evaluation


def test_the_run_and_the_check_show_what_waits_for_review_and_what_was_rejected(db, tmp_path):
    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    ids = _register(
        db,
        store,
        org,
        {"basic-wl.xml": basic_wl("WAIT-1"), "errors.xml": broken_totals("REJ-1"),
         "valid.xml": own_invoice("OK-1")},
    )  # fmt: skip
    result = _run_intake(db, store, org, ids)
    shown = _materialization(result)

    assert (shown["validated"], shown["needs_review"], shown["rejected"]) == (1, 1, 1)
    assert shown["intake_policy"]["einvoice_with_errors"] == "reject"
    assert "intake_policy_error" not in shown
    assert shown["count_needs_review"] == 1 and shown["waiting_for_review"] == 1
    waiting = shown["documents_in_review"]
    assert "basic-wl.xml" in waiting.replace("\\", "") and "WAIT-1" in waiting.replace("\\", "")
    assert "not\\_einvoice.profile" in waiting or "not_einvoice.profile" in waiting
    assert "incoming review" in waiting
    # the rejected document and its notice: no address known for its supplier, so not sent
    assert shown["notices_failed"] == 1 and shown["notices_pending"] == 0
    rejected = shown["rejected_documents"].replace("\\", "")
    assert "errors.xml" in rejected and "REJ-1" in rejected and "failed" in rejected
    assert "(no address)" in rejected and "no address known for this supplier" in rejected

    # the run's check warns while the document waits, on the materialization it wrote
    check = _review_check(result)
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["in_review"].value == 1
    assert "WAIT-1" in check.metadata["documents_in_review"].value.replace("\\", "")
    assert "incoming review" in check.description

    [waiting_id] = [i for i in ids if _status(db, org, i) == "NEEDS_REVIEW"]
    review_document(db.engine, find_organization(db.engine, org["slug"]), waiting_id, reviewed_by="dora", confirm=True,
                    expected_version=version(db, org, waiting_id))  # fmt: skip
    assert _status(db, org, waiting_id) == "VALIDATED"
    # the organization's next intake run (here by hand, nothing waiting) finds none in review
    check = _review_check(_run("intake_job", db, store, org["slug"], {}))
    assert check.passed and check.metadata["in_review"].value == 0


def _status(db, org, doc_id) -> str:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_incoming_list_names_status_class_findings_and_notice(
    db, tmp_path, monkeypatch, capsys
) -> None:
    org = db.new_organization()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    rows = run_intake(db, tmp_path, org, {"b.xml": basic_wl("L-1"), "e.xml": broken_totals("L-2")})

    assert main(["incoming", "list", "--org", org["slug"]]) == 0
    out = capsys.readouterr().out
    [review_line] = [line for line in out.splitlines() if line.strip().startswith(
        str(rows["b.xml"]["id"]))]  # fmt: skip
    assert "NEEDS_REVIEW" in review_line and "not_einvoice" in review_line and "L-1" in out
    assert "b.xml" in review_line
    assert "BR-CO-15" in out  # the rejected one's finding, by rule id
    assert "notice to (no address): failed (no address known for this supplier" in out

    assert main(["incoming", "list", "--org", org["slug"], "--status", "FAILED", "--json"]) == 0
    [failed] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (failed["invoice_number"], failed["einvoice_class"]) == ("L-2", "einvoice_with_errors")
    assert failed["notice"]["status"] == "failed"
    assert {"rule", "message", "severity"} <= set(failed["findings"][0])

    assert main(["incoming", "list", "--org", org["slug"], "--status", "EXPORTED"]) == 0
    assert capsys.readouterr().out.strip() == "no incoming invoices match"

    # a user's mistakes: one line each, no traceback
    code = main(["incoming", "list", "--org", "no-such-org"])
    said = capsys.readouterr()
    assert code != 0 and "no organization 'no-such-org'" in said.out + said.err
    assert "Traceback" not in said.out + said.err
    try:
        main(["incoming", "list", "--org", org["slug"], "--status", "LOST"])
    except SystemExit as exc:  # argparse's own refusal
        assert exc.code == 2
    said = capsys.readouterr()
    assert "'LOST' is none of" in said.err and "Traceback" not in said.err


def test_a_notice_goes_to_the_uploads_sender_when_the_document_names_no_address(
    db, tmp_path
) -> None:
    """The document names no e-mail of the seller; its upload was recorded from an address: the
    notice goes there, once, through the production mail client and the SMTP stand-in."""
    from invoice_pipelines.intake.domain.notices import send_supplier_notices
    from invoice_pipelines.intake.domain.pipeline import process_documents
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.intake.test_review import InProcess

    org = db.new_organization()
    store = LocalUploads(str(tmp_path))
    [doc_id] = _register(db, store, org, {"s.xml": broken_totals("S-1")})
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        upload_id = conn.execute(
            select(incoming_invoices.c.upload_id).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()
        # as an upload channel that knows its sender records it (e.g. a mailbox)
        conn.execute(
            update(uploads)
            .where(uploads.c.id == upload_id)
            .values(created_by="buchhaltung@lieferant.example")
        )
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, [doc_id], parser=InProcess(), ocr=None)
    assert _status(db, org, doc_id) == "FAILED"
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        first = send_supplier_notices(db.engine, mailer, org["id"])
        again = send_supplier_notices(db.engine, mailer, org["id"])
        (message,) = sink.mailbox.messages
    assert (len(first.sent), first.failed, again.sent, again.failed) == (1, {}, [], {})
    assert message["To"] == "buchhaltung@lieferant.example"
    assert "BR-CO-15" in message.get_body(("plain",)).get_content()


def test_a_notice_a_dead_run_left_sending_is_unknown_and_never_sent_again(db, tmp_path) -> None:
    """A sending run dies after claiming the notice (the intent is committed, the outcome never
    is): the next run reports it unknown and does not send it; nothing is sent twice. Through
    supplier_notices_job, the production mail client and the SMTP stand-in."""
    from datetime import timedelta

    from invoice_pipelines.db.tables import supplier_notices
    from invoice_pipelines.intake.domain.notices import BOX, send_supplier_notices
    from invoice_pipelines.outbox.machine import claim
    from invoice_pipelines.resources.database.engines import Database, SystemDatabase
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines.resources.peppol.access_point import PeppolAccessPoint
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.intake.test_supplier_notices import document, known_supplier

    org = db.new_organization()
    known_supplier(db, tmp_path, org)  # the seller's address, from an invoice accepted earlier
    run_intake(db, tmp_path / "rejected", org, {"u.xml": document("U-1")})
    n = supplier_notices.c
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        # what a sending run had committed when it died: its claim
        assert len(claim(conn, BOX, n.organization_id == org["id"])) == 1

    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        # not stale yet: left alone (its run may still be sending)
        assert send_supplier_notices(db.engine, mailer, org["id"]).unknown == []
        later = send_supplier_notices(
            db.engine, mailer, org["id"], stale_after=timedelta(seconds=0)
        )
        assert len(later.unknown) == 1 and later.sent == []
        result = intake_jobs.supplier_notices_job.execute_in_process(
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "mailer": mailer,
                # no Peppol document here to answer: an access point nobody listens at
                "peppol_access_point": PeppolAccessPoint(base_url="http://127.0.0.1:1"),
            },
            instance=DagsterInstance.ephemeral(),
        )
        assert result.success
        # (the job sends every organization's pending notices: other tests' may go out here)
        assert [m for m in sink.mailbox.messages if "U-1" in str(m["Subject"])] == []
    with tenant_transaction(db.engine, org["id"]) as conn:
        state = conn.execute(select(n.status, n.error).where(n.organization_id == org["id"])).one()
    assert state.status == "unknown" and "may have been sent" in state.error


def test_a_stored_policy_naming_an_unknown_action_is_said_and_the_defaults_apply(
    db, tmp_path
) -> None:
    """Written past `incoming policy` (which refuses it), e.g. by hand in the database."""
    org = db.new_organization()
    _store_broken_policy(db, org)
    store = LocalUploads(str(tmp_path))
    ids = _register(db, store, org, {"e.xml": broken_totals("T-1")})
    result = _run_intake(db, store, org, ids)
    shown = _materialization(result)
    assert "einvoice_with_errors is 'reveiw'" in shown["intake_policy_error"]
    assert shown["intake_policy"]["einvoice_with_errors"] == "reject"
    assert shown["rejected"] == 1


def test_the_policy_shown_is_the_one_the_documents_were_judged_by(db, tmp_path) -> None:
    """The run shows the policy as the pipeline read and applied it, once: a run that judged no
    document applied none and shows none, not even a broken one."""
    org = db.new_organization()
    _store_broken_policy(db, org)
    shown = _materialization(_run_intake(db, LocalUploads(str(tmp_path)), org, []))
    assert shown["processed"] == 0
    assert "intake_policy" not in shown and "intake_policy_error" not in shown


def _store_broken_policy(db, org) -> None:
    """A policy naming an unknown action, written past `incoming policy` (which refuses it)."""
    from invoice_pipelines.db.tables import organizations

    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == org["id"])
            .values(settings={"intake_policy": {"einvoice_with_errors": "reveiw"}})
        )
