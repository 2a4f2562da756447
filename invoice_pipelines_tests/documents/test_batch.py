"""Documents jobs through the batch jobs queue, on SQLite and PostgreSQL: a bad invoice fails
alone with its rule id, the combined print file holds the others in request order, cancel stops
at the next chunk, retry redoes only the failed invoices."""

from __future__ import annotations

import io

import pypdf
from sqlalchemy import select, update

from invoice_pipelines.db.tables import audit_log, customers
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.batch import (
    DOCUMENTS,
    combined_pdf_of,
    documents_work,
    run_invoice_job,
)
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.jobs import cancel_batch_job, job_item_outcomes, retry_failed
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _org(db):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )


def _public_customer(db, org_id: int) -> int:
    """An XRechnung customer without a Leitweg-ID: its invoices cannot get documents."""
    town = customer(db.engine, org_id, "K-9", "Stadt Musterhausen")
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == town)
            .values(einvoice_format="xrechnung-cii", email="rechnung@musterhausen.example")
        )
    return town


def _numbers_in(pdf: bytes) -> list[str]:
    """The invoice numbers printed on the pages of a PDF, page by page."""
    found = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        text = page.extract_text()
        found.append(next(word for word in text.split() if word.startswith("RE-2026-")))
    return found


def test_a_documents_job_fails_the_bad_invoice_and_prints_the_rest_in_order(
    db, tmp_path, batch_kinds
):
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    good = [sales_invoice(db.engine, org["id"], buyer) for _ in range(4)]
    bad = sales_invoice(db.engine, org["id"], _public_customer(db, org["id"]))
    store = LocalFiles(str(tmp_path))
    # request order is not id order: the print file follows the request
    requested = [good[2], good[0], bad, good[3], good[1]]
    job_id = enqueue_invoice_job(
        db.engine,
        find_organization(db.engine, org["slug"]),
        batch_kinds[DOCUMENTS],
        requested,
        combined_pdf=True,
        created_by="anna",
    )
    seen = []
    job = run_invoice_job(
        db.engine,
        job_id,
        documents_work(db.engine, store),
        system=db.system_engine,
        store=store,
        chunk_size=2,
        on_progress=lambda j: seen.append((j.processed_count, j.total_count)),
    )
    assert (job.status, job.successful_count, job.failed_count) == ("completed_with_errors", 4, 1)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    [failure] = job_item_outcomes(db.engine, job)
    assert failure["position"] == 3 and failure["error_code"] == "IP-DOC-LEITWEG"
    assert "Leitweg" in failure["error_message"]

    combined = combined_pdf_of(db.engine, job)
    data = (tmp_path / combined["key"]).read_bytes()
    assert combined["size_bytes"] == len(data)
    assert combined["path"].endswith(f"batch-{job_id}.pdf")
    numbers = {i: parse_number(tmp_path, db, org, i) for i in good}
    # one page per invoice here: the four good ones in request order, then the page that
    # lists what is missing
    pages = pypdf.PdfReader(io.BytesIO(data)).pages
    assert combined["pages"] == 5 == len(pages) and combined["invoice_pages"] == 4
    assert _numbers_in(data)[:4] == [numbers[i] for i in requested if i != bad]
    last = " ".join(pages[4].extract_text().split())
    assert "1 invoice(s) not in this file" in last
    assert "#3 RE-2026-000005 (failed: IP-DOC-LEITWEG)" in last
    assert [(m["sales_invoice_id"], m["code"]) for m in combined["missing"]] == [
        (bad, "IP-DOC-LEITWEG")
    ]


def parse_number(tmp_path, db, org, invoice_id: int) -> str:
    from invoice_pipelines.db.tables import sales_invoice_documents as d

    with tenant_transaction(db.engine, org["id"]) as conn:
        key = conn.execute(
            select(d.c.storage_key).where(d.c.sales_invoice_id == invoice_id, d.c.kind == "facturx")
        ).scalar_one()
    read = parse_document((tmp_path / key).read_bytes(), key.rsplit("/", 1)[-1])
    assert read.status == "VALIDATED"
    return read.invoice.number


def test_cancel_stops_at_the_next_chunk_and_retry_redoes_only_the_failed(db, tmp_path, batch_kinds):
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    town = _public_customer(db, org["id"])
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(5)]
    bad = sales_invoice(db.engine, org["id"], town)
    store = LocalFiles(str(tmp_path))
    work = documents_work(db.engine, store)

    # cancelled while its first chunk is done: the second chunk never starts
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], ids
    )
    job = run_invoice_job(
        db.engine,
        job_id,
        work,
        system=db.system_engine,
        store=store,
        chunk_size=2,
        on_progress=lambda j: cancel_batch_job(
            db.engine, j.id, system=db.system_engine, cancelled_by="bob"
        ),
    )
    assert (job.status, job.processed_count, job.successful_count) == ("cancelled", 2, 2)
    assert len(list(tmp_path.rglob("*.pdf"))) == 2

    # the bad invoice fails; once the customer's Leitweg-ID is there, the retry does just it
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], [*ids, bad]
    )
    job = run_invoice_job(
        db.engine, job_id, work, system=db.system_engine, store=store, chunk_size=10
    )
    assert (job.successful_count, job.failed_count) == (5, 1)
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == town).values(buyer_reference="991-12345-67")
        )
    retry_id = retry_failed(
        db.engine, job_id, batch_kinds, system=db.system_engine, created_by="bob"
    )
    retried = run_invoice_job(db.engine, retry_id, work, system=db.system_engine, store=store)
    assert (retried.status, retried.total_count, retried.successful_count) == ("completed", 1, 1)
    assert retried.retry_of_job_id == job_id and retried.created_by == "bob"
    assert len(list(tmp_path.rglob("*.pdf"))) == 6 and len(list(tmp_path.rglob("*.xml"))) == 1
    with tenant_transaction(db.engine, org["id"]) as conn:
        actions = conn.execute(
            select(audit_log.c.action, audit_log.c.created_by)
            .where(audit_log.c.organization_id == org["id"])
            .order_by(audit_log.c.id)
        ).all()
    assert ("batch_job.cancel_requested", "bob") in actions
    assert any(action == "batch_job.cancelled" for action, _ in actions)


def test_bad_requests_are_refused_in_one_sentence(db, tmp_path, batch_kinds):
    import pytest

    # the communications kind checks its own options: registered as the definitions register it
    from invoice_pipelines.delivery.domain.batch import COMMUNICATIONS_KIND
    from invoice_pipelines.queue.domain.requests import BatchRequestError

    assert COMMUNICATIONS_KIND.name == "communications"
    org = _org(db)
    with pytest.raises(BatchRequestError, match="positive integers"):
        enqueue_invoice_job(
            db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], ["x"]
        )
    with pytest.raises(BatchRequestError, match="channel must be one of"):
        enqueue_invoice_job(
            db.engine,
            find_organization(db.engine, org["slug"]),
            batch_kinds["communications"],
            [1],
            channel="fax",
        )
    # an id that is no invoice of the organization fails as an item, the job goes on
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], [999999]
    )
    job = run_invoice_job(
        db.engine,
        job_id,
        documents_work(db.engine, LocalFiles(str(tmp_path))),
        system=db.system_engine,
    )
    assert (job.status, job.failed_count) == ("completed_with_errors", 1)
    assert job.errors[0]["code"] == "IP-DOC-UNKNOWN"


def test_a_job_whose_runner_died_is_failed_as_stuck_and_its_retry_does_the_rest(
    db, tmp_path, batch_kinds
):
    from datetime import timedelta

    from invoice_pipelines.db.types import utcnow
    from invoice_pipelines.queue.domain import items
    from invoice_pipelines.queue.domain.jobs import get_batch_job
    from invoice_pipelines.queue.domain.stuck import fail_stuck_jobs

    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(2)]
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], ids
    )
    # claimed by a runner that dies before its first chunk
    assert items.claim_item_job(db.engine, get_batch_job(db.engine, job_id), "dead-runner")
    stuck = fail_stuck_jobs(db.engine, batch_kinds, now=utcnow() + timedelta(minutes=31))
    [job] = [j for j in stuck if j.id == job_id]
    assert (job.status, job.failed_count) == ("failed", 2) and "no progress" in job.failure_reason
    # the reason speaks of documents, not of orders an invoicing job would have left
    assert "Documents written stay; the invoices not reached got none" in job.failure_reason
    assert "orders" not in job.failure_reason
    store = LocalFiles(str(tmp_path))
    retried = run_invoice_job(
        db.engine,
        retry_failed(db.engine, job_id, batch_kinds, system=db.system_engine),
        documents_work(db.engine, store),
        system=db.system_engine,
    )
    assert (retried.status, retried.successful_count) == ("completed", 2)


def test_the_days_stats_count_documents_apart_from_invoices(db, tmp_path, batch_kinds):
    """A documents job's items are documents: the day's stats count them per kind, not as
    invoices created from orders."""
    from invoice_pipelines.queue.domain.stats import batch_stats

    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(2)]
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], ids
    )
    store = LocalFiles(str(tmp_path))
    run_invoice_job(db.engine, job_id, documents_work(db.engine, store), system=db.system_engine)
    stats = batch_stats(db.engine, find_organization(db.engine, org["slug"]), batch_kinds)
    assert (stats.orders_requested, stats.invoices_created, stats.orders_per_second) == (0, 0, None)
    assert stats.jobs_by_kind == {DOCUMENTS: 1}
    assert stats.items_done_by_kind == {DOCUMENTS: 2}


def test_a_run_that_breaks_fails_the_job_and_a_rerun_does_the_rest(db, batch_kinds):
    import pytest

    from invoice_pipelines.queue.domain.job_kind import SUCCEEDED
    from invoice_pipelines.queue.domain.jobs import get_batch_job

    org = _org(db)
    job_id = enqueue_invoice_job(
        db.engine, find_organization(db.engine, org["slug"]), batch_kinds[DOCUMENTS], [11, 12, 13]
    )
    chunks = []

    def work(job, organization, request, invoice_ids):  # the second chunk breaks once
        chunks.append(invoice_ids)
        if len(chunks) == 2:
            raise RuntimeError("disk full")
        return {invoice_id: SUCCEEDED for invoice_id in invoice_ids}

    with pytest.raises(RuntimeError):
        run_invoice_job(db.engine, job_id, work, system=db.system_engine, chunk_size=2)
    job = get_batch_job(db.engine, job_id)
    assert (job.status, job.successful_count) == ("failed", 2)
    assert job.failure_reason == (
        "processing stopped: RuntimeError: disk full. Finished items stay; run the job again to "
        "continue with the remaining invoices."
    )
    job = run_invoice_job(db.engine, job_id, work, system=db.system_engine, chunk_size=2)
    assert (job.status, job.successful_count) == ("completed", 3)
    assert chunks == [[11, 12], [13], [13]]


def test_two_runners_released_at_the_finish_build_the_combined_pdf_once(
    db, tmp_path, monkeypatch, batch_kinds
):
    # the race a fresh clone's CI met: both runners of one job reached the end and each built
    # (and first removed) the print file. Here both are held at the finish until both are there,
    # then released together; one finishes the job, the other finds it finished.
    import threading

    from invoice_pipelines.documents.domain import batch
    from invoice_pipelines.queue.domain import items
    from invoice_pipelines.queue.domain.jobs import get_batch_job

    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(4)]
    store = LocalFiles(str(tmp_path))
    job_id = enqueue_invoice_job(
        db.engine,
        find_organization(db.engine, org["slug"]),
        batch_kinds[DOCUMENTS],
        ids,
        combined_pdf=True,
    )

    both_there = threading.Barrier(2, timeout=120)
    real_finish, real_combine = items.finish, batch.combine_pdfs
    finishes, builds = [], []

    def finish_when_both_arrived(*args, **kwargs):
        both_there.wait()
        finishes.append(real_finish(*args, **kwargs))
        return finishes[-1]

    def counted_combine(*args, **kwargs):
        builds.append(threading.current_thread().name)
        return real_combine(*args, **kwargs)

    monkeypatch.setattr(items, "finish", finish_when_both_arrived)
    monkeypatch.setattr(batch, "combine_pdfs", counted_combine)
    errors: list[BaseException] = []

    def runner(name: str) -> None:
        try:
            run_invoice_job(
                db.engine,
                job_id,
                documents_work(db.engine, store),
                system=db.system_engine,
                store=store,
                chunk_size=2,
                runner=name,
            )
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(n,), name=n) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sorted(finishes) == [False, True]  # both tried, one finished
    assert len(builds) == 1
    job = get_batch_job(db.engine, job_id)
    assert (job.status, job.successful_count) == ("completed", 4)
    with tenant_transaction(db.engine, org["id"]) as conn:
        actions = conn.execute(
            select(audit_log.c.action).where(
                audit_log.c.entity_type == "batch_job", audit_log.c.entity_id == str(job_id)
            )
        ).scalars()
        closing = [a for a in actions if a in ("batch_job.finished", batch.COMBINED_PDF_ACTION)]
    assert sorted(closing) == ["batch_job.combined_pdf", "batch_job.finished"]
    combined = combined_pdf_of(db.engine, job)
    data = (tmp_path / combined["key"]).read_bytes()
    assert combined["size_bytes"] == len(data)
    assert len(pypdf.PdfReader(io.BytesIO(data)).pages) == combined["pages"] == 4
