"""History (an invoice a migration brought in, `sales_invoices.history`) gets no documents on its
own: not from an organization's run without ids, not from `documents_sensor`, not from the
documents job that follows an invoicing job. A person who names it gets them."""

from __future__ import annotations

from dagster import build_sensor_context, instance_for_test
from sqlalchemy import select, update

from invoice_pipelines.billing.domain.invoicing import process_batch_job
from invoice_pipelines.billing.domain.invoicing_kinds import (
    enqueue_customer_lines,
    follow_up_options,
)
from invoice_pipelines.db.tables import batch_jobs, sales_invoice_documents, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents import sensors as document_sensors
from invoice_pipelines.documents.domain.batch import DOCUMENTS, documents_work, run_invoice_job
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.queue.domain.items import enqueue_invoice_job
from invoice_pipelines.queue.domain.jobs import job_item_outcomes
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice


def _org(db):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )


def mark_history(db, org_id: int, *invoice_ids: int) -> None:
    """What the onboarding import leaves: the invoices are a migration's history."""
    with tenant_transaction(db.engine, org_id, write=True) as conn:
        conn.execute(
            update(sales_invoices).where(sales_invoices.c.id.in_(invoice_ids)).values(history=True)
        )


def _with_documents(db, org_id: int) -> set[int]:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        return set(
            conn.execute(
                select(d.sales_invoice_id).where(
                    d.organization_id == org_id, d.kind == "facturx", d.status == "generated"
                )
            ).scalars()
        )


def test_a_run_without_ids_leaves_history_alone_and_naming_it_writes_its_documents(db, tmp_path):
    org = _org(db)
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    past = sales_invoice(db.engine, org["id"], buyer)
    today = sales_invoice(db.engine, org["id"], buyer)
    mark_history(db, org["id"], past)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert (summary.requested, summary.generated) == (1, 1)
    assert _with_documents(db, org["id"]) == {today}
    # nothing is left waiting: a second run has nothing to do
    assert (
        generate_documents(db.engine, store, find_organization(db.engine, org["slug"])).requested
        == 0
    )

    named = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]), [past])
    assert named.generated == 1 and not named.failed
    assert _with_documents(db, org["id"]) == {today, past}


def _sensor(db, *slugs: str) -> list:
    """The run requests of one tick of documents_sensor over the organizations `slugs`."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", list(slugs))
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            result = document_sensors.documents_sensor(context)
    return list(getattr(result, "run_requests", None) or [])  # a SkipReason: none


def test_the_sensor_requests_no_run_for_history_without_documents(db):
    # booked history without PDFs, and nothing else: no documents run (issue 55)
    only_history = _org(db)
    buyer = customer(db.engine, only_history["id"], "K-1", "Kunde GmbH")
    mark_history(
        db,
        only_history["id"],
        *(sales_invoice(db.engine, only_history["id"], buyer) for _ in range(3)),
    )
    assert _sensor(db, only_history["slug"]) == []

    # beside it an organization with one new invoice and newer history: one run, for the new
    # invoice (its run key names the newest invoice waiting, which is not the history)
    mixed = _org(db)
    other = customer(db.engine, mixed["id"], "K-1", "Kunde GmbH")
    new = sales_invoice(db.engine, mixed["id"], other)
    mark_history(db, mixed["id"], sales_invoice(db.engine, mixed["id"], other))
    requests = _sensor(db, only_history["slug"], mixed["slug"])
    assert [(r.partition_key, r.run_key) for r in requests] == [
        (mixed["slug"], f"documents-{mixed['slug']}-{new}")
    ]


def _invoiced_with_documents_asked(db, org, customers: int) -> tuple[int, list[int]]:
    """An invoicing job over `customers` customers that asks for documents, processed: the id of
    its documents job and the invoices it made."""
    line = {"description": "Wartung", "unit_price": "50.00", "vat_rate": "19", "vat_category": "S"}
    buyers = [customer(db.engine, org["id"], f"K-{n}", f"Kunde {n}") for n in range(customers)]
    job_id = enqueue_customer_lines(
        db.engine,
        find_organization(db.engine, org["slug"]),
        [{"customer_id": c, "lines": [line]} for c in buyers],
        options=follow_up_options(generate_pdf=True),
    )
    assert (
        process_batch_job(db.engine, job_id, system=db.system_engine).successful_count == customers
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        follow_up = conn.execute(
            select(batch_jobs.c.id).where(
                batch_jobs.c.organization_id == org["id"], batch_jobs.c.kind == DOCUMENTS
            )
        ).scalar_one()
        made = list(
            conn.execute(
                select(sales_invoices.c.id)
                .where(sales_invoices.c.batch_job_id == job_id)
                .order_by(sales_invoices.c.id)
            ).scalars()
        )
    return follow_up, made


def test_the_documents_after_an_invoicing_job_skip_history_and_a_named_job_writes_it(
    db, tmp_path, batch_kinds
):
    org = _org(db)
    follow_up, (past, today) = _invoiced_with_documents_asked(db, org, 2)
    mark_history(db, org["id"], past)
    store = LocalFiles(str(tmp_path))
    work = documents_work(db.engine, store)

    job = run_invoice_job(db.engine, follow_up, work, system=db.system_engine, store=store)
    assert (job.status, job.successful_count, job.skipped_count) == ("completed", 1, 1)
    [skipped] = job_item_outcomes(db.engine, job, statuses=("skipped",))
    assert (skipped["sales_invoice_id"], skipped["error_code"]) == (past, "history")
    assert _with_documents(db, org["id"]) == {today}

    # a person names the history invoice in a documents job of its own: it gets its documents
    named = enqueue_invoice_job(
        db.engine,
        find_organization(db.engine, org["slug"]),
        batch_kinds[DOCUMENTS],
        [past],
        created_by="anna",
    )
    done = run_invoice_job(db.engine, named, work, system=db.system_engine, store=store)
    assert (done.status, done.successful_count) == ("completed", 1)
    assert _with_documents(db, org["id"]) == {today, past}
