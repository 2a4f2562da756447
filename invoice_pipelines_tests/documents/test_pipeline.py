"""Documents of an organization's sales invoices on SQLite and PostgreSQL, and in Dagster."""

from __future__ import annotations

from pathlib import Path

import pypdf
from dagster import Definitions, build_sensor_context, instance_for_test
from sqlalchemy import select, update

from invoice_pipelines.db.tables import customers, sales_invoice_documents
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents import assets as document_assets
from invoice_pipelines.documents import sensors as document_sensors
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import customer, sales_invoice

SELLER = {
    "street": "Industriestraße 5",
    "postal_code": "70565",
    "city": "Stuttgart",
    "iban": "DE02120300000000202051",
    "bic": "BYLADEM1001",
    "email": "rechnung@mueller.example",
    "phone": "+49 711 123456",
    "contact_name": "Buchhaltung",
}


def _org(db, **seller):
    return db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        settings={"seller": {**SELLER, **seller}},
    )


def _documents(db, org_id: int) -> dict[int, list[tuple]]:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        rows = conn.execute(
            select(d.sales_invoice_id, d.kind, d.status, d.storage_key, d.errors).where(
                d.organization_id == org_id
            )
        ).all()
    found: dict[int, list[tuple]] = {}
    for invoice_id, kind, status, key, errors in rows:
        found.setdefault(invoice_id, []).append((kind, status, key, errors))
    return found


def test_every_invoice_gets_its_documents_once_and_bad_ones_are_retried(db, tmp_path):
    org = _org(db)
    home = customer(db.engine, org["id"], "K-1", "Bäckerei Hoffmann e.K.")
    town = customer(db.engine, org["id"], "K-2", "Stadt Musterhausen")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers)
            .where(customers.c.id == town)
            .values(einvoice_format="xrechnung-cii", email="rechnung@musterhausen.example")
        )
    mixed = sales_invoice(
        db.engine,
        org["id"],
        home,
        taxes=[("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")],
    )
    credit = sales_invoice(
        db.engine, org["id"], home, type_code="381", taxes=[("S", "19", "50.00", "9.50")]
    )
    public = sales_invoice(db.engine, org["id"], town)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert summary.generated == 2 and set(summary.failed) == {public}
    assert summary.failed[public][0]["rule"] == "IP-DOC-LEITWEG"  # no Leitweg-ID yet
    docs = _documents(db, org["id"])
    assert docs[public] == [("facturx", "failed", None, summary.failed[public])]
    for invoice_id in (mixed, credit):
        [(kind, status, key, errors)] = docs[invoice_id]
        assert (kind, status, errors) == ("facturx", "generated", [])
        data = (tmp_path / key).read_bytes()
        read = parse_document(data, Path(key).name)
        assert read.status == "VALIDATED" and read.format == "facturx-pdf"
        assert read.invoice.type_code == ("381" if invoice_id == credit else "380")

    # nothing new: nothing written again (the files keep their bytes)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.pdf")}
    again = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert again.generated == 0 and set(again.failed) == {public}
    assert {p: p.read_bytes() for p in tmp_path.rglob("*.pdf")} == before

    # the customer's Leitweg-ID is added: the next run writes the PDF and the XRechnung
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == town).values(buyer_reference="991-12345-67")
        )
    fixed = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert fixed.generated == 1 and fixed.xrechnung == 1 and not fixed.failed
    kinds = sorted((kind, status) for kind, status, _, _ in _documents(db, org["id"])[public])
    assert kinds == [("facturx", "generated"), ("xrechnung", "generated")]


def test_an_invalid_seller_iban_fails_every_document_with_the_reason(db, tmp_path):
    org = _org(db, iban="DE00 1203 0000 0000 2020 51")
    sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH"))
    summary = generate_documents(
        db.engine, LocalFiles(str(tmp_path)), find_organization(db.engine, org["slug"])
    )
    [errors] = summary.failed.values()
    assert errors[0]["rule"] == "IP-DOC-IBAN"
    assert list(tmp_path.rglob("*")) == []


def test_the_asset_writes_documents_through_worker_processes(db, tmp_path):
    org = _org(db)
    invoice = sales_invoice(
        db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH")
    )
    defs = Definitions(
        assets=[document_assets.sales_invoice_documents_asset],
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "document_store": LocalFileStore(root=str(tmp_path)),
            "document_renderer": DocumentRenderer(workers=1),
        },
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [org["slug"]])
        # the sensor sees the organization's invoice waiting
        with build_sensor_context(
            instance=instance,
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ) as context:
            result = document_sensors.documents_sensor(context)
        [request] = [r for r in result.run_requests if r.partition_key == org["slug"]]
        assert request.run_key == f"documents-{org['slug']}-{invoice}"
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, partition_key=org["slug"]
        )
    assert run.success
    [event] = run.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["generated"].value == 1 and metadata["failed"].value == 0
    pdf = Path(metadata["example_1"].value)
    assert pdf.is_file() and pypdf.PdfReader(pdf).trailer["/Root"]["/AF"]
    checks = [e for e in run.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    assert [c.asset_check_evaluation_data.passed for c in checks] == [True]
