"""Runs on several machines at once: for each area with queued work, several run worker processes
work on the same queue of one PostgreSQL database at the same moment (as overlapping Dagster runs
on different machines do: a re-dispatch beside a slow run, a sensor's resume beside a run that is
not dead after all). The database is the lock: nothing is done twice and nothing is lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from invoice_pipelines.billing.domain.invoicing_kinds import enqueue_sales_orders
from invoice_pipelines.db.tables import (
    deliveries,
    incoming_invoice_lines,
    incoming_invoice_taxes,
    incoming_invoices,
    processing_errors,
    sales_invoice_documents,
    uploads,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.batch import COMMUNICATIONS
from invoice_pipelines.documents.domain.batch import DOCUMENTS
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.jobs import get_batch_job
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

ROOT = Path(__file__).resolve().parents[1]


def _workers(tmp_path: Path, commands: list[list[str]], env: dict | None = None) -> list[dict]:
    """Start every worker, let them all import, then release them together; their JSON lines."""
    go = tmp_path / f"go-{time.monotonic_ns()}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "invoice_pipelines_tests.scale_out_worker", str(go), *cmd],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for cmd in commands
    ]
    try:
        time.sleep(0.5)  # not a correctness wait: the workers wait for `go` whenever it comes
        go.write_text("go")
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()


def test_three_runs_of_one_batch_job_and_a_second_job_invoice_each_order_once(
    pg_database, tmp_path
):
    shop = make_shop(pg_database)
    # the workers take chunks of 100: the first job's four chunks are more than its three runs,
    # so they meet in it, and the second job's three chunks meet them in the shared orders
    orders = shop.add_many(600)
    first = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders[:400]
    )
    # a second job with 200 orders of its own and 100 it shares with the first
    second = enqueue_sales_orders(
        shop.engine, find_organization(shop.engine, shop.org_id), order_ids=orders[300:]
    )
    url = pg_database.url
    results = _workers(
        tmp_path,
        [["invoicing", url, str(first)]] * 3 + [["invoicing", url, str(second)]],
    )
    assert {r["status"] for r in results} == {"completed"}
    invoices = shop.invoices()
    assert shop.invoice_count_per_order() == {o: 1 for o in orders}  # every order, once
    assert sorted(i["sequence_number"] for i in invoices) == list(range(1, 601))  # gapless
    jobs = [get_batch_job(shop.engine, j) for j in (first, second)]
    assert [j.processed_count for j in jobs] == [400, 300]  # no item counted twice
    assert jobs[0].successful_count + jobs[1].successful_count == 600
    # the 100 shared orders: invoiced by one job, skipped as already invoiced by the other
    assert jobs[0].skipped_count + jobs[1].skipped_count == 100


def _upload_samples(engine, org: dict, root: Path, files: list[Path]) -> list[int]:
    store = LocalUploads(str(root))
    past = time.time() - 600
    for path in files:
        store.put(org["slug"], path.name, path.read_bytes())
        os.utime(root / org["slug"] / path.name, (past, past))
    scan = scan_uploads(engine, store, ScanState(), system=engine, only_organizations={org["slug"]})
    return [i for b in scan.batches for i in b.document_ids]


def _intake_rows(engine, org_id: int) -> dict[str, tuple]:
    """Per uploaded file: status, and how many lines, VAT rows and findings were recorded."""
    with tenant_transaction(engine, org_id) as conn:
        docs = conn.execute(
            select(uploads.c.filename, incoming_invoices.c.id, incoming_invoices.c.status)
            .join(incoming_invoices, incoming_invoices.c.id == uploads.c.incoming_invoice_id)
            .where(uploads.c.organization_id == org_id)
        ).all()

        def counts(table, column) -> Counter:
            rows = conn.execute(
                select(column, func.count())
                .where(table.c.organization_id == org_id)
                .group_by(column)
            ).all()
            return Counter(dict(rows))

        lines = counts(incoming_invoice_lines, incoming_invoice_lines.c.incoming_invoice_id)
        taxes = counts(incoming_invoice_taxes, incoming_invoice_taxes.c.incoming_invoice_id)
        errors = counts(processing_errors, processing_errors.c.incoming_invoice_id)
    return {name: (status, lines[i], taxes[i], errors[i]) for name, i, status in docs}


def test_three_intake_runs_of_the_same_documents_record_each_once(pg_database, tmp_path):
    # valid and invalid ones, and the same invoice as CII and UBL (a duplicate number)
    files = sorted(samples_dir().rglob("*.xml"))[:12]
    assert len(files) == 12
    engine, url = pg_database.engine, pg_database.url

    # the same files, once by a single run: what each document's record should be
    alone = pg_database.new_organization()
    alone_ids = _upload_samples(engine, alone, tmp_path / "alone", files)
    _workers(
        tmp_path,
        [["intake", url, str(tmp_path / "alone"), str(alone["id"]), ",".join(map(str, alone_ids))]],
    )

    org = pg_database.new_organization()
    ids = _upload_samples(engine, org, tmp_path / "up", files)
    command = ["intake", url, str(tmp_path / "up"), str(org["id"]), ",".join(map(str, ids))]
    results = _workers(tmp_path, [command] * 3)

    # each document was recorded by exactly one of the runs; the others found it done or moved
    assert sum(r["processed"] for r in results) == len(ids)
    for r in results:
        assert r["processed"] + len(r["stale"]) + len(r["skipped"]) == len(ids)
    recorded = _intake_rows(engine, org["id"])
    assert recorded == _intake_rows(engine, alone["id"])
    # every one decided (two samples name IBANs whose check digits fail: NEEDS_REVIEW, IP-PAY-01)
    assert {status for status, *_ in recorded.values()} <= {"VALIDATED", "NEEDS_REVIEW", "FAILED"}
    assert len(recorded) == 12


@pytest.fixture
def sales_shop(pg_database):
    org = pg_database.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )
    buyer = customer(pg_database.engine, org["id"], "K-1", "Kunde GmbH")
    from sqlalchemy import update

    from invoice_pipelines.db.tables import customers

    with tenant_transaction(pg_database.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == buyer).values(email="einkauf@kunde.example")
        )
    ids = [sales_invoice(pg_database.engine, org["id"], buyer) for _ in range(12)]
    return org, ids


def test_two_runs_of_one_documents_job_and_one_sending_job_do_each_invoice_once(
    pg_database, sales_shop, tmp_path, batch_kinds
):
    org, ids = sales_shop
    engine, url = pg_database.engine, pg_database.url
    store_root = str(tmp_path / "documents")

    documents_job = enqueue_invoice_job(
        engine,
        find_organization(engine, org["slug"]),
        batch_kinds[DOCUMENTS],
        ids,
        combined_pdf=True,
    )
    results = _workers(tmp_path, [["invoice-job", url, store_root, str(documents_job)]] * 2)
    job = get_batch_job(engine, documents_job)
    assert (job.status, job.processed_count, job.successful_count) == ("completed", 12, 12)
    assert {r.get("status") for r in results} == {"completed"}
    with tenant_transaction(engine, org["id"]) as conn:
        made = conn.execute(
            select(sales_invoice_documents.c.sales_invoice_id, func.count())
            .where(sales_invoice_documents.c.kind == "facturx")
            .group_by(sales_invoice_documents.c.sales_invoice_id)
        ).all()
    assert dict(made) == {i: 1 for i in ids}

    sending_job = enqueue_invoice_job(
        engine,
        find_organization(engine, org["slug"]),
        batch_kinds[COMMUNICATIONS],
        ids,
        channel="email",
    )
    with SmtpSink() as sink:
        env = {
            "INVOICE_PIPELINES_SMTP_HOST": "127.0.0.1",
            "INVOICE_PIPELINES_SMTP_PORT": str(sink.port),
            "INVOICE_PIPELINES_SMTP_SECURITY": "none",
        }
        results = _workers(
            tmp_path, [["invoice-job", url, store_root, str(sending_job)]] * 3, env=env
        )
        arrived = sink.mailbox.by_subject_number()
    # each invoice arrived once, whichever run sent it; a run that found another sending for the
    # organization left the job to it
    assert len(arrived) == 12 and set(arrived.values()) == {1}
    assert any(r.get("status") == "completed" for r in results)
    job = get_batch_job(engine, sending_job)
    if job.status != "completed":  # the sending run was refused work; a later run completes it
        _workers(tmp_path, [["invoice-job", url, store_root, str(sending_job)]], env=env)
        job = get_batch_job(engine, sending_job)
    assert (job.status, job.successful_count) == ("completed", 12)
    with tenant_transaction(engine, org["id"]) as conn:
        sent = conn.execute(
            select(deliveries.c.sales_invoice_id, func.count())
            .where(deliveries.c.status == "sent")
            .group_by(deliveries.c.sales_invoice_id)
        ).all()
    assert dict(sent) == {i: 1 for i in ids}


def test_three_push_runs_create_each_invoice_once_in_quickbooks(pg_database, tmp_path):
    from invoice_pipelines.quickbooks.domain.sync.customers import sync_customers
    from invoice_pipelines.quickbooks.domain.sync.invoices import queue_counts
    from invoice_pipelines.quickbooks.domain.sync.items import sync_items
    from invoice_pipelines_devtools.qbo_simulator import QboSimulator
    from invoice_pipelines_tests.quickbooks.conftest import TIME_SCALE, TOKEN_KEY, connect

    with QboSimulator(port=0, time_scale=TIME_SCALE) as sim:
        # DocNumbers not checked by QBO: only our queue and requestids stand against duplicates
        qbo = connect(pg_database, sim, custom_txn_numbers=False)
        buyer = qbo.add_customer("Müller Werkzeugbau GmbH", email="buch@mueller.example")
        item = qbo.add_item("TOOL", "24.90", "Drehmomentschlüssel")
        with qbo.client() as client:
            sync_customers(qbo.engine, qbo.organization, client)
            sync_items(qbo.engine, qbo.organization, client)
        for n in range(1, 61):
            qbo.add_invoice(f"RE-2026-{n:04d}", buyer, [(item, "2", "24.90")])
        command = [
            "qbo-push",
            pg_database.url,
            str(qbo.org_id),
            sim.base_url,
            sim.token_url,
            TOKEN_KEY,
            str(TIME_SCALE),
        ]
        results = _workers(tmp_path, [command] * 3)
        numbers = Counter(r["DocNumber"] for r in sim.records(qbo.realm, "Invoice"))
    assert sum(r["pushed"] for r in results) == 60 and sum(r["failed"] for r in results) == 0
    assert len(numbers) == 60 and set(numbers.values()) == {1}
    assert queue_counts(qbo.engine, qbo.org_id) == {"pushed": 60}


def test_three_dunning_runs_of_the_same_organizations_notice_and_text_each_invoice_once(
    pg_database, tmp_path
):
    from datetime import date, timedelta
    from decimal import Decimal

    from sqlalchemy import insert

    from invoice_pipelines.db.tables import customers, dunning_notices, dunning_runs, sales_invoices
    from invoice_pipelines_devtools.standins.sms import TextProviderStandIn

    engine, today = pg_database.engine, date(2026, 11, 20)
    settings = {"dunning": {"deliver": True, "levels": [
        {"name": "reminder", "days": 1, "channel": "sms"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "5.00", "channel": "sms"},
        {"name": "final_notice", "days": 30, "fee_fixed": "10.00"},  # in-app
    ]}}  # fmt: skip
    orgs, expected = [], {}  # expected: org id -> {invoice id: the highest level due}
    for o in range(3):
        org = pg_database.new_organization(timezone="Europe/Berlin", settings=settings)
        orgs.append(org)
        with tenant_transaction(engine, org["id"], write=True) as conn:
            buyers = conn.execute(
                insert(customers).returning(customers.c.id),
                [
                    {"organization_id": org["id"], "customer_number": f"K-{c}",
                     "name": f"Kunde {c}", "phone": f"+4917{o}{c:07d}"}
                    for c in range(10)
                ],
            ).scalars().all()  # fmt: skip
            rows = []
            for n in range(50):  # 0..49 days late: none, reminder, first dunning, final notice
                late = n % 50
                rows.append(
                    {"organization_id": org["id"], "invoice_number": f"RE-{o}-{n:04d}",
                     "sequence_number": n + 1, "customer_id": buyers[n % 10],
                     "issue_date": today - timedelta(days=late + 14),
                     "due_date": today - timedelta(days=late), "currency": "EUR",
                     "net_total": Decimal("100.00"), "tax_total": Decimal("19.00"),
                     "gross_total": Decimal("119.00"), "amount_paid": Decimal("0.00"),
                     "amount_due": Decimal("119.00"), "status": "open"}
                )  # fmt: skip
            ids = conn.execute(insert(sales_invoices).returning(sales_invoices.c.id), rows)
            expected[org["id"]] = {
                i: (3 if n % 50 >= 30 else 2 if n % 50 >= 14 else 1)
                for n, i in enumerate(ids.scalars())
                if n % 50 >= 1
            }

    slugs = ",".join(org["slug"] for org in orgs)
    with TextProviderStandIn() as api:
        command = ["dunning", pg_database.url, today.isoformat(), api.url, str(tmp_path), slugs]
        results = _workers(tmp_path, [command] * 3)
        texts = Counter(
            m["body"].split(" zu Rechnung ")[1].split(",")[0] for m in api.outbox.messages
        )

    for org in orgs:
        runs = [r[org["slug"]] for r in results]
        with tenant_transaction(engine, org["id"]) as conn:
            notices = conn.execute(
                select(dunning_notices.c.sales_invoice_id, dunning_notices.c.level,
                       dunning_notices.c.fee, dunning_notices.c.dunning_run_id,
                       dunning_notices.c.channel, dunning_notices.c.delivery_status,
                       sales_invoices.c.invoice_number)
                .join(sales_invoices, sales_invoices.c.id == dunning_notices.c.sales_invoice_id)
                .where(dunning_notices.c.organization_id == org["id"])
            ).all()  # fmt: skip
            log = {
                row.id: row
                for row in conn.execute(
                    select(dunning_runs).where(dunning_runs.c.organization_id == org["id"])
                )
            }
        # each due invoice noticed once, at its highest level due; nothing missing, nothing more
        assert Counter((n.sales_invoice_id, n.level) for n in notices) == Counter(
            expected[org["id"]].items()
        )
        # the execution log: one finished row per run, and its counts are the notices it created
        assert sorted(log) == sorted(r["log_id"] for r in runs)
        assert {(row.status, row.finished_at is not None) for row in log.values()} == {
            ("SUCCESS", True)
        }
        made_by = Counter(n.dunning_run_id for n in notices)
        for r in runs:
            row = log[r["log_id"]]
            assert row.notices_created == r["notices_created"] == made_by[r["log_id"]]
            assert sum(row.notices_by_level.values()) == row.notices_created
        assert sum(r["notices_created"] for r in runs) == len(notices)
        assert sum(row.fees_charged for row in log.values()) == sum(n.fee for n in notices)
        # every SMS notice texted once, whichever run sent it
        sms = [n for n in notices if n.channel == "sms"]
        assert {n.delivery_status for n in sms} == {"sent"}
        assert sum(r["sent"] for r in runs) == len(sms)
        assert all(r["unknown"] == [] and r["failed"] == 0 for r in runs)
        assert {n.invoice_number: texts[n.invoice_number] for n in sms} == {
            n.invoice_number: 1 for n in sms
        }
    assert sum(texts.values()) == len(api.outbox.messages)
