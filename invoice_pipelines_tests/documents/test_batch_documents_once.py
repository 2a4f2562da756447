"""A batch's invoices are queued for their documents once (issue 73, point 6): the documents job
queued with an invoicing job (`generate_pdf`) writes them, and documents_sensor and an
organization's run without ids leave them to it, while that job will still run. Before, the
sensor's run for the organization wrote the batch's PDFs and the batch's own job waited 4.5
minutes behind it in the organization's slot, to find its work done."""

from __future__ import annotations

from dagster import SkipReason, build_sensor_context, instance_for_test
from sqlalchemy import update

from invoice_pipelines.db.tables import batch_job_items, batch_jobs
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents import sensors as document_sensors
from invoice_pipelines.documents.domain.batch import documents_work, run_invoice_job
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.queue.domain.items import followed_invoicing_jobs
from invoice_pipelines.queue.domain.jobs import cancel_batch_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.documents.test_history import (
    _invoiced_with_documents_asked,
    _org,
    _with_documents,
)
from invoice_pipelines_tests.exports.books import customer, sales_invoice
from invoice_pipelines_tests.queue import kinds as queue


def _tick(db, slug: str) -> dict[str, list]:
    """One tick of documents_sensor and of the queue's sensor that launches the batch's
    documents job, on one instance: each sensor's run requests, and the documents sensor's skip
    message ('' when it asked for runs)."""
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [slug])
        resources = {
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
        }
        with build_sensor_context(instance=instance, resources=resources) as context:
            documents = document_sensors.documents_sensor(context)
        with build_sensor_context(instance=instance, resources=resources) as context:
            batches = queue.invoice_batch_jobs_sensor(context)
    return {
        "documents": list(getattr(documents, "run_requests", None) or []),
        "batches": list(getattr(batches, "run_requests", None) or []),
        "skipped": documents.skip_message if isinstance(documents, SkipReason) else "",
    }


def test_a_batchs_invoices_are_requested_once_by_its_own_documents_job(
    fresh_db, tmp_path, batch_kinds
):
    db = fresh_db  # its own database: both sensors look at every organization
    org = _org(db)
    follow_up, made = _invoiced_with_documents_asked(db, org, 3)
    with tenant_transaction(db.engine, org["id"]) as conn:
        [followed] = followed_invoicing_jobs(conn, org["id"])
    invoicing_job = followed.invoicing_job_id
    assert followed.follow_up_id == follow_up

    # one tick of both sensors: exactly one run for the organization's invoices, the batch's own
    tick = _tick(db, org["slug"])
    assert tick["documents"] == []
    assert [r.run_key for r in tick["batches"]] == [f"batch-job-{follow_up}"]
    assert tick["skipped"] == (
        "No sales invoices wait for documents; invoices left to the job queued with their "
        f"batch: batch job {invoicing_job}'s to batch job {follow_up}."
    )
    # a documents run of the organization launched meanwhile (the launchpad, a run queued
    # before) leaves them to the batch too
    store = LocalFiles(str(tmp_path))
    assert (
        generate_documents(db.engine, store, find_organization(db.engine, org["slug"])).requested
        == 0
    )

    # an invoice of the organization's own, outside the batch: the sensor asks for it alone
    own = sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-9", "Kunde 9"))
    [request] = _tick(db, org["slug"])["documents"]
    assert request.run_key == f"documents-{org['slug']}-{own}"
    assert (
        generate_documents(db.engine, store, find_organization(db.engine, org["slug"])).generated
        == 1
    )
    assert _with_documents(db, org["id"]) == {own}

    # the batch's job writes the batch's documents; nothing is left for anyone
    job = run_invoice_job(
        db.engine, follow_up, documents_work(db.engine, store), system=db.system_engine, store=store
    )
    assert (job.status, job.successful_count) == ("completed", 3)
    assert _with_documents(db, org["id"]) == {own, *made}
    after = _tick(db, org["slug"])
    assert after["documents"] == [] and after["batches"] == []
    assert after["skipped"] == "No sales invoices wait for documents."


def test_a_batch_whose_documents_job_will_not_run_is_the_sensors_again(fresh_db, batch_kinds):
    db = fresh_db
    cancelled, stopped = _org(db), _org(db)

    # its documents job was cancelled: the sensor writes the invoices like any other
    follow_up, made = _invoiced_with_documents_asked(db, cancelled, 2)
    assert cancel_batch_job(db.engine, follow_up, system=db.system_engine).status == "cancelled"
    [request] = _tick(db, cancelled["slug"])["documents"]
    assert request.run_key == f"documents-{cancelled['slug']}-{max(made)}"

    # the invoicing job failed with orders still pending: its documents job waits for a
    # person's retry, so the invoices it did make get their documents from the sensor meanwhile
    follow_up, made = _invoiced_with_documents_asked(db, stopped, 2)
    with tenant_transaction(db.engine, stopped["id"], write=True) as conn:
        invoicing_job = conn.execute(
            update(batch_jobs)
            .where(batch_jobs.c.organization_id == stopped["id"], batch_jobs.c.id != follow_up)
            .values(status="failed")
            .returning(batch_jobs.c.id)
        ).scalar_one()
        conn.execute(
            update(batch_job_items)
            .where(batch_job_items.c.batch_job_id == invoicing_job, batch_job_items.c.position == 2)
            .values(status="pending")
        )
    [request] = _tick(db, stopped["slug"])["documents"]
    assert request.run_key == f"documents-{stopped['slug']}-{max(made)}"
