"""Documents and communications jobs in Dagster: a launchpad invoicing request that asks for
sending, the sensors that launch the follow-up only once the invoices are committed, the run that
sends them and records the delivery asset; a second sender of an organization is refused."""

from __future__ import annotations

from dagster import DagsterInstance, Definitions, build_sensor_context
from sqlalchemy import select, update

from invoice_pipelines.billing import defs as billing
from invoice_pipelines.db.locks import Lock, session_lock
from invoice_pipelines.db.tables import batch_jobs, customers
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.delivery import assets as delivery_assets
from invoice_pipelines.delivery import defs as delivery
from invoice_pipelines.documents.domain.pipeline import InProcessBuilder
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.lib.run_coordinator import organization_in_run_config
from invoice_pipelines.queue.dagster import BATCH_JOB_TAG
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.messaging.mail import SmtpMailer
from invoice_pipelines.resources.messaging.text_message_provider import TextMessageProvider
from invoice_pipelines.resources.peppol.access_point import PeppolAccessPoint
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.billing.test_defs import refusal
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice
from invoice_pipelines_tests.queue import kinds as queue


class InProcessRenderer(DocumentRenderer):
    """The renderer building in the test's process (its worker pool is tested with the
    documents asset; starting one per run here would cost seconds per test)."""

    def setup_for_execution(self, context) -> None:
        pass

    def build_many(self, sources):
        return InProcessBuilder().build_many(sources)


def _resources(db, tmp_path, port: int = 1) -> dict:
    return {
        "database": Database(url=db.url),
        "system_database": SystemDatabase(url=db.url),
        "document_store": LocalFileStore(root=str(tmp_path)),
        "document_renderer": InProcessRenderer(),
        "mailer": SmtpMailer(port=port),
        "text_messages": TextMessageProvider(base_url="http://127.0.0.1:1"),
        "peppol_access_point": PeppolAccessPoint(base_url="http://127.0.0.1:1"),
    }


def _defs(db, tmp_path, port: int = 1) -> Definitions:
    return Definitions.merge(
        billing.defs,
        delivery.defs,
        queue.QUEUE,
        Definitions(resources=_resources(db, tmp_path, port)),
    )


def _org(db):
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )
    buyer = customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == buyer).values(email="k@kunde.example")
        )
    return org, buyer


def _instance(slug: str) -> DagsterInstance:
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    return instance


def _ticks(db, instance) -> tuple[list, list]:
    """What the invoicing sensor and the communications sensor launch now."""
    found = []
    for sensor in (queue.batch_jobs_sensor, queue.communications_batch_jobs_sensor):
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            result = sensor(context)
        found.append(
            [int(r.tags[BATCH_JOB_TAG]) for r in getattr(result, "run_requests", None) or []]
        )
    return found[0], found[1]


def test_send_immediately_from_the_launchpad_sends_after_the_invoices_are_committed(db, tmp_path):
    org, buyer = _org(db)
    instance = _instance(org["slug"])
    line = {"description": "Wartung", "unit_price": "120.00", "vat_rate": "19", "vat_category": "S"}
    request = {
        "customer_lines": {
            "customers": [{"customer_id": buyer, "lines": [line]}],
            "send_immediately": True,
            "channel": "email",
            "created_by": "dora",
        }
    }
    with SmtpSink() as sink:
        defs = _defs(db, tmp_path, sink.port)
        invoicing = defs.resolve_job_def("batch_invoicing_job").execute_in_process(
            run_config={"ops": {"sales_invoices": {"config": {"request": request}}}},
            instance=instance,
            partition_key=org["slug"],
        )
        assert invoicing.success
        with tenant_transaction(db.engine, org["id"]) as conn:
            [(follow_up, kind, request_json)] = conn.execute(
                select(batch_jobs.c.id, batch_jobs.c.kind, batch_jobs.c.request).where(
                    batch_jobs.c.organization_id == org["id"], batch_jobs.c.kind != "customer_lines"
                )
            ).all()
        assert kind == "communications" and request_json["channel"] == "email"
        # the invoicing sensor leaves it to the communications sensor
        invoicing_launches, sending_launches = _ticks(db, instance)
        assert follow_up not in invoicing_launches and follow_up in sending_launches

        sending_job = defs.resolve_job_def("communications_batch_job")
        # its op waits on the mail provider: the run coordinator puts its runs in the mail lane
        [node] = sending_job.graph.node_defs
        assert node.pool == "mail"
        queued_job = {"request": {"queued_job": {"batch_job_id": follow_up}}}
        sent = sending_job.execute_in_process(
            run_config={"ops": {queue.COMMUNICATIONS_OP: {"config": queued_job}}},
            instance=instance,
        )
        assert sent.success
        [message] = sink.mailbox.messages
    assert message["To"] == "k@kunde.example"
    [event] = [
        e.event_specific_data.materialization
        for e in sent.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert event.asset_key.to_user_string() == "invoice_emails"
    assert event.partition == org["slug"] and event.metadata["succeeded"].value == 1
    # started: the sensor does not launch it again
    assert follow_up not in _ticks(db, instance)[1]


def test_a_documents_job_from_the_launchpad_records_the_combined_pdf(db, tmp_path):
    org, buyer = _org(db)
    ids = [sales_invoice(db.engine, org["id"], buyer) for _ in range(2)]
    job = _defs(db, tmp_path).resolve_job_def("invoice_batch_job")

    def config(organization: str | None) -> dict:
        request = {"documents": {"invoice_ids": ids, "combined_pdf": True}}
        return {"ops": {queue.OP: {"config": {"organization": organization, "request": request}}}}

    # the run coordinator finds the organization in the config: the run gets its tag and limit
    assert organization_in_run_config(config(org["slug"])) == org["slug"]
    result = job.execute_in_process(run_config=config(org["slug"]), instance=_instance(org["slug"]))
    assert result.success
    [event] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
    ]
    assert event.asset_key.to_user_string() == "sales_invoice_documents"
    metadata = {k: v.value for k, v in event.metadata.items()}
    assert metadata["succeeded"] == 2 and metadata["combined_pdf_pages"] == 2
    assert metadata["combined_pdf"].endswith(".pdf") and metadata["combined_pdf_bytes"] > 1000
    refused = job.execute_in_process(
        run_config=config(None), instance=_instance(org["slug"]), raise_on_error=False
    )
    assert refusal(refused) == "A new documents request needs the organization."


def test_a_second_sender_of_an_organization_is_refused_in_one_sentence(pg_database, tmp_path):
    db = pg_database
    org, buyer = _org(db)
    sales_invoice(db.engine, org["id"], buyer)
    defs = _defs(db, tmp_path)
    with session_lock(db.engine, Lock.SENDING, org["id"]):  # another run sends right now
        result = defs.resolve_job_def("send_invoices_job").execute_in_process(
            instance=_instance(org["slug"]), partition_key=org["slug"], raise_on_error=False
        )
    assert refusal(result) == (
        f"Another run is sending the invoices of {org['slug']} right now; start this one again "
        "when it has finished."
    )


def test_the_failed_deliveries_table_counts_what_it_does_not_show():
    failed = {invoice_id: "550 mailbox unavailable" for invoice_id in range(1, 53)}
    table = delivery_assets._table(failed, {1: "RE-2026-0001"}, limit=50).splitlines()
    assert table[2] == "| 1 | RE-2026-0001 | 550 mailbox unavailable |"
    assert len(table) == 2 + 50 + 1
    assert table[-1] == "| … |  | 2 more |"
