"""Communications jobs through the batch jobs queue, to a real SMTP server on loopback, counted
on the server's side: each invoice once, a refused recipient fixed and retried alone, an explicit
resend once even when the job's run dies and is resumed, the audit trail, and invoicing requests
that ask for documents and sending."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import select, update

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    follow_up_options,
)
from invoice_pipelines.db.tables import (
    audit_log,
    batch_job_items,
    batch_jobs,
    customers,
    deliveries,
    sales_invoice_documents,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.batch import (
    COMMUNICATIONS,
    COMMUNICATIONS_KIND,
    communications_work,
)
from invoice_pipelines.documents.domain.batch import DOCUMENTS_KIND, run_invoice_job
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.jobs import get_batch_job, job_item_outcomes, retry_failed
from invoice_pipelines.queue.domain.kinds import chunk_work
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.channels import MailTransport
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _org(db):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )


def _customer(db, org_id: int, number: str, email: str) -> int:
    found = customer(db.engine, org_id, number, f"Kunde {number}")
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(update(customers).where(customers.c.id == found).values(email=email))
    return found


def _work(db, store, sink):
    """A communications chunk as the queue composes it: the documents kind's work first, then
    the sending (here with a short backoff)."""
    mailer = Smtp(port=sink.port, sender="rechnung@mueller.example")
    kind = replace(
        COMMUNICATIONS_KIND,
        runs=replace(
            COMMUNICATIONS_KIND.runs,
            work=lambda engine, resources, run_id: communications_work(
                engine, lambda name: MailTransport(mailer), store=store, backoff_seconds=0.01
            ),
        ),
    )
    kinds = {DOCUMENTS_KIND.name: DOCUMENTS_KIND, kind.name: kind}
    return chunk_work(db.engine, kind, kinds, SimpleNamespace(document_store=store), None)


def test_a_communications_job_sends_each_invoice_once_and_its_retry_only_the_refused(
    db, tmp_path, batch_kinds
):
    org = _org(db)
    buyer = _customer(db, org["id"], "K-1", "einkauf@kunde.example")
    refused = _customer(db, org["id"], "K-2", "weg@kunde.example")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(3)]
    bounced = sales_invoice(db.engine, org["id"], refused)
    store = LocalFiles(str(tmp_path))
    with SmtpSink() as sink:
        sink.mailbox.refused_recipients.add("weg@kunde.example")
        work = _work(db, store, sink)
        # no documents yet: the job writes them first, then sends
        job_id = enqueue_invoice_job(
            db.engine,
            find_organization(db.engine, org["slug"]),
            batch_kinds[COMMUNICATIONS],
            [*ids, bounced],
            created_by="anna",
        )
        job = run_invoice_job(db.engine, job_id, work, system=db.system_engine, chunk_size=2)
        assert (job.status, job.successful_count, job.failed_count) == (
            "completed_with_errors",
            3,
            1,
        )
        [failure] = job_item_outcomes(db.engine, job)
        assert failure["sales_invoice_id"] == bounced and failure["error_code"] == "send_failed"
        assert "550" in failure["error_message"]
        assert sink.mailbox.count() == 3

        # the same invoices again in a new job: nothing goes twice
        again = run_invoice_job(
            db.engine,
            enqueue_invoice_job(
                db.engine,
                find_organization(db.engine, org["slug"]),
                batch_kinds[COMMUNICATIONS],
                ids,
                created_by="anna",
            ),
            work,
            system=db.system_engine,
        )
        assert (again.status, again.skipped_count, again.successful_count) == ("completed", 3, 0)
        assert sink.mailbox.count() == 3

        # the address is fixed at the server; the retry sends exactly the refused invoice
        sink.mailbox.refused_recipients.clear()
        retry_id = retry_failed(
            db.engine, job_id, batch_kinds, system=db.system_engine, created_by="bert"
        )
        retried = run_invoice_job(db.engine, retry_id, work, system=db.system_engine)
        assert (retried.total_count, retried.successful_count) == (1, 1)
        arrived = sink.mailbox.by_subject_number()
    assert sorted(arrived.values()) == [1, 1, 1, 1] and len(arrived) == 4

    # the audit trail: who sent which invoice, when, to whom, in which job
    with tenant_transaction(db.engine, org["id"]) as conn:
        trail = conn.execute(
            select(audit_log.c.action, audit_log.c.created_by, audit_log.c.details)
            .where(
                audit_log.c.organization_id == org["id"], audit_log.c.entity_type == "sales_invoice"
            )
            .order_by(audit_log.c.id)
        ).all()
    sent = [(who, d["recipient"], d["batch_job_id"]) for a, who, d in trail if a == "invoice.sent"]
    assert sent == [("anna", "einkauf@kunde.example", job_id)] * 3 + [
        ("bert", "weg@kunde.example", retry_id)
    ]
    [refusal] = [d for a, _, d in trail if a == "invoice.send_failed"]
    assert refusal["recipient"] == "weg@kunde.example" and "550" in refusal["error"]
    assert all(d["sent_at"] and d["message_id"] for a, _, d in trail if a == "invoice.sent")
    assert datetime.fromisoformat(trail[0][2]["sent_at"]).astimezone(UTC).year >= 2026


def test_a_resend_job_resumed_after_its_run_died_does_not_send_twice(db, tmp_path, batch_kinds):
    org = _org(db)
    buyer = _customer(db, org["id"], "K-1", "einkauf@kunde.example")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(2)]
    store = LocalFiles(str(tmp_path))
    with SmtpSink() as sink:
        work = _work(db, store, sink)
        run_invoice_job(
            db.engine,
            enqueue_invoice_job(
                db.engine,
                find_organization(db.engine, org["slug"]),
                batch_kinds[COMMUNICATIONS],
                ids,
            ),
            work,
            system=db.system_engine,
        )
        job_id = enqueue_invoice_job(
            db.engine,
            find_organization(db.engine, org["slug"]),
            batch_kinds[COMMUNICATIONS],
            ids,
            resend=True,
        )
        assert (
            run_invoice_job(db.engine, job_id, work, system=db.system_engine).successful_count == 2
        )
        assert sink.mailbox.count() == 4
        # as if the run died after sending, before it recorded the items: the job resumes
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                update(batch_job_items)
                .where(batch_job_items.c.batch_job_id == job_id)
                .values(status="pending")
            )
            conn.execute(
                update(batch_jobs)
                .where(batch_jobs.c.id == job_id)
                .values(status="processing", processed_count=0, successful_count=0)
            )
        resumed = run_invoice_job(db.engine, job_id, work, system=db.system_engine)
        assert resumed.status == "completed" and resumed.successful_count == 2
        assert sink.mailbox.count() == 4
    with tenant_transaction(db.engine, org["id"]) as conn:
        sequences = conn.execute(
            select(deliveries.c.sales_invoice_id, deliveries.c.sequence)
            .where(deliveries.c.organization_id == org["id"])
            .order_by(deliveries.c.sales_invoice_id, deliveries.c.sequence)
        ).all()
    assert [s for _, s in sequences] == [0, 1, 0, 1]


def test_an_invoicing_request_with_send_immediately_sends_its_invoices_after_commit(db, tmp_path):
    org = _org(db)
    buyers = [_customer(db, org["id"], f"K-{n}", f"k{n}@kunde.example") for n in (1, 2)]
    line = {"description": "Wartung", "unit_price": "120.00", "vat_rate": "19", "vat_category": "S"}
    job_id = enqueue_customer_lines(
        db.engine,
        find_organization(db.engine, org["slug"]),
        [{"customer_id": c, "lines": [line]} for c in buyers],
        invoice_date="2026-11-20",
        created_by="carla",
        options=follow_up_options(generate_pdf=True, send_immediately=True, channel="email"),
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        [follow_up] = conn.execute(
            select(batch_jobs.c.id).where(
                batch_jobs.c.organization_id == org["id"], batch_jobs.c.kind == COMMUNICATIONS
            )
        ).scalars()
    store = LocalFiles(str(tmp_path))
    with SmtpSink() as sink:
        work = _work(db, store, sink)
        # queued with the invoicing job; it waits until that job has finished
        assert (
            run_invoice_job(db.engine, follow_up, work, system=db.system_engine).status == "pending"
        )
        assert process_batch_job(db.engine, job_id, system=db.system_engine).successful_count == 2
        sent = run_invoice_job(db.engine, follow_up, work, system=db.system_engine)
        assert (sent.status, sent.successful_count, sent.created_by) == ("completed", 2, "carla")
        # a second run (a crash and a restart) finds the job done and sends nothing
        assert (
            run_invoice_job(db.engine, follow_up, work, system=db.system_engine).successful_count
            == 2
        )
        assert sorted(m["To"] for m in sink.mailbox.messages) == [
            "k1@kunde.example",
            "k2@kunde.example",
        ]
    with tenant_transaction(db.engine, org["id"]) as conn:
        documents = conn.execute(
            select(sales_invoice_documents.c.status).where(
                sales_invoice_documents.c.organization_id == org["id"]
            )
        ).scalars()
        assert sorted(documents) == ["generated", "generated"]
    assert get_batch_job(db.engine, job_id).status == "completed"


def test_the_command_line_queues_waits_and_shows_the_outcome(db, tmp_path, monkeypatch, capsys):
    from invoice_pipelines.cli import main

    org = _org(db)
    buyer = _customer(db, org["id"], "K-1", "einkauf@kunde.example")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(2)]
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_DOCUMENT_DIR", str(tmp_path))
    invoices = f"{ids[1]},{ids[0]},999999"
    assert (
        main(["batch-documents", "--org", org["slug"], "--invoices", invoices, "--combined-pdf"])
        == 0
    )
    queued = int(capsys.readouterr().out.strip())
    assert get_batch_job(db.engine, queued).status == "pending"
    assert main(["batch-run", str(queued)]) == 1  # one invoice does not exist
    out = capsys.readouterr().out
    assert "invoices: 3 requested, 3 processed, 2 written, 1 failed" in out
    assert "invoice 999999: IP-DOC-UNKNOWN" in out
    assert "combined PDF:" in out and "(3 pages," in out and "2 invoices, 1 not in it" in out
    with SmtpSink() as sink:
        monkeypatch.setenv("INVOICE_PIPELINES_SMTP_PORT", str(sink.port))
        args = ["batch-send", "--org", org["slug"], "--invoices", f"{ids[0]}", "--wait"]
        assert main([*args, "--created-by", "erik"]) == 0
        assert "1 sent, 0 failed" in capsys.readouterr().out
        assert main(["batch-send", "--org", org["slug"], "--invoices", "x"]) == 2
        assert sink.mailbox.count() == 1

    # an invoicing request that asks for sending names its follow-up job (an organization whose
    # numbers come from the sequence only)
    shop = _org(db)
    lines = tmp_path / "lines.json"
    line = {"description": "Wartung", "unit_price": "10.00", "vat_rate": "19", "vat_category": "S"}
    buyer = _customer(db, shop["id"], "K-1", "einkauf@kunde.example")
    lines.write_text(json.dumps([{"customer_id": buyer, "lines": [line]}]))
    args = ["batch-invoice", "--org", shop["slug"], "--customer-lines", str(lines), "--wait"]
    assert main([*args, "--send-immediately", "--channel", "sms"]) == 0
    out = capsys.readouterr().out
    follow_up = int(out.split("then: communications job ")[1].split()[0])
    assert "(pending)" in out and get_batch_job(db.engine, follow_up).status == "pending"
    assert main([*args, "--channel", "sms"]) == 2  # a channel without --send-immediately


def test_a_sending_job_killed_mid_batch_then_resumed_sends_each_invoice_at_most_once(
    pg_database, tmp_path
):
    """`batch-send --wait` SIGKILLed the moment the server has the 4th message, then `batch-run`:
    counted on the server, no invoice arrives twice; every item ends succeeded, or failed as
    `outcome_unknown` (under way at the kill: reported, not resent). PostgreSQL only: two
    processes start the CLI here (seconds each), and the SQLite half of the protocol is the
    same code (`send-invoices` kill tests run on both)."""
    db = pg_database
    import os
    import signal
    import subprocess
    import sys

    org = _org(db)
    buyer = _customer(db, org["id"], "K-1", "einkauf@kunde.example")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(8)]
    # written here, where the builder is warm: the processes below only send
    assert (
        generate_documents(
            db.engine, LocalFiles(str(tmp_path)), find_organization(db.engine, org["id"])
        ).generated
        == 8
    )
    env = {
        **os.environ,
        "INVOICE_PIPELINES_DB_URL": db.url,
        "INVOICE_PIPELINES_DOCUMENT_DIR": str(tmp_path),
    }
    cli = [sys.executable, "-m", "invoice_pipelines.cli"]
    with SmtpSink() as sink:
        env["INVOICE_PIPELINES_SMTP_PORT"] = str(sink.port)
        invoices = ",".join(map(str, ids))
        sender = subprocess.Popen(
            [*cli, "batch-send", "--org", org["slug"], "--invoices", invoices, "--wait"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )

        def kill_at_fourth(message) -> None:
            if sink.mailbox.count() == 4:
                os.kill(sender.pid, signal.SIGKILL)
                sender.wait(30)

        sink.mailbox.on_message = kill_at_fourth
        job_id = int(sender.stdout.readline())
        sender.wait(120)
        assert sender.returncode == -signal.SIGKILL
        sink.mailbox.on_message = None
        assert get_batch_job(db.engine, job_id).status == "processing"
        resumed = subprocess.run(
            [*cli, "batch-run", str(job_id)], env=env, capture_output=True, text=True, timeout=120
        )
        arrived = sink.mailbox.by_subject_number()
    assert set(arrived.values()) == {1}, arrived
    job = get_batch_job(db.engine, job_id)
    assert job.status == "completed_with_errors", resumed.stdout + resumed.stderr
    assert job.successful_count + job.failed_count == 8 and 1 <= job.failed_count <= 2
    failures = job_item_outcomes(db.engine, job)
    assert {f["error_code"] for f in failures} == {"outcome_unknown"}
    numbers = {i: n for i, n in _numbers(db, org["id"]).items() if i in ids}
    for invoice_id, number in numbers.items():
        if number not in arrived:  # never silently lost: reported as unknown
            assert invoice_id in {f["sales_invoice_id"] for f in failures}


def _numbers(db, org_id: int) -> dict[int, str]:
    from invoice_pipelines.db.tables import sales_invoices

    with tenant_transaction(db.engine, org_id) as conn:
        return dict(
            conn.execute(
                select(sales_invoices.c.id, sales_invoices.c.invoice_number).where(
                    sales_invoices.c.organization_id == org_id
                )
            ).all()
        )


def test_a_follow_up_waits_for_a_failed_invoicing_job_until_its_orders_are_handed_on(
    db, tmp_path, batch_kinds
):
    """An invoicing job that failed with customers still pending may go on: its documents job
    waits. Retried, the pending customers move to the retry job, which has a follow-up of its
    own; the first follow-up then takes exactly the invoices the failed job made."""
    from invoice_pipelines.documents.domain.batch import documents_work

    org = _org(db)
    buyers = [_customer(db, org["id"], f"K-{n}", f"k{n}@kunde.example") for n in (1, 2)]
    line = {"description": "Wartung", "unit_price": "50.00", "vat_rate": "19", "vat_category": "S"}
    job_id = enqueue_customer_lines(
        db.engine,
        find_organization(db.engine, org["slug"]),
        [{"customer_id": c, "lines": [line]} for c in buyers],
        options=follow_up_options(generate_pdf=True),
    )
    # the run dies after the first customer's chunk: the job is failed, one customer pending
    with pytest.raises(_RunDied):
        process_batch_job(
            db.engine,
            job_id,
            system=db.system_engine,
            chunk_size=1,
            on_progress=_die_after_first_chunk,
        )
    failed = get_batch_job(db.engine, job_id)
    assert (failed.status, failed.successful_count) == ("failed", 1)

    store = LocalFiles(str(tmp_path))
    work = documents_work(db.engine, store)
    first = _follow_ups(db, org["id"])[0]
    assert (
        run_invoice_job(db.engine, first, work, system=db.system_engine, store=store).status
        == "pending"
    )
    retry_id = retry_failed(db.engine, job_id, batch_kinds, system=db.system_engine)
    done = run_invoice_job(db.engine, first, work, system=db.system_engine, store=store)
    assert (done.status, done.total_count, done.successful_count) == ("completed", 1, 1)
    process_batch_job(db.engine, retry_id, system=db.system_engine)
    [_, second] = _follow_ups(db, org["id"])
    assert (
        run_invoice_job(
            db.engine, second, work, system=db.system_engine, store=store
        ).successful_count
        == 1
    )
    assert len(list(tmp_path.rglob("*.pdf"))) == 2


class _RunDied(Exception):
    pass


def _die_after_first_chunk(job) -> None:
    raise _RunDied("the run died")


def _follow_ups(db, org_id: int) -> list[int]:
    with tenant_transaction(db.engine, org_id) as conn:
        return list(
            conn.execute(
                select(batch_jobs.c.id)
                .where(batch_jobs.c.organization_id == org_id, batch_jobs.c.kind == "documents")
                .order_by(batch_jobs.c.id)
            ).scalars()
        )
