"""Plain PDF invoices where an EN 16931 e-invoice does not apply: a US seller with sales tax, a
seller without VAT id, a customer who asked for one; read as their recipients would (pdftotext),
on SQLite and PostgreSQL, through the documents path, Dagster and e-mail."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pypdf
from dagster import Definitions, instance_for_test
from sqlalchemy import insert, select, update

from invoice_pipelines.db.tables import (
    customers,
    sales_invoice_documents,
    sales_invoice_lines,
    sales_invoice_taxes,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
from invoice_pipelines.documents import assets as document_assets
from invoice_pipelines.documents.domain.formats import choose_format
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.documents.domain.renderer import DocumentRenderer
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

US_SELLER = {
    "street": "1200 Commerce Dr",
    "postal_code": "10017",
    "city": "New York",
    "email": "billing@acme-office.example",
}


def _text(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()


def _embedded(pdf: bytes) -> dict:
    return dict(pypdf.PdfReader(io.BytesIO(pdf)).attachments)


def _us_shop(db, **settings):
    """A US office supplier (no VAT id, USD) like the demo's, one customer, one invoice with a
    sales-taxed line and a non-taxable delivery charge; `settings` beside the seller's."""
    org = db.new_organization(
        name="Acme Office Supplies Inc.",
        country="US",
        currency="USD",
        timezone="America/New_York",
        vat_id=None,
        settings={"seller": US_SELLER, **settings},
    )
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        buyer = conn.execute(
            insert(customers)
            .values(
                organization_id=org["id"],
                customer_number="C-2001",
                name="Riverside Dental Group LLC",
                email="billing@riversidedental.example",
                street="410 Main St",
                postal_code="10001",
                city="New York",
                country="US",
                language="en",
            )
            .returning(customers.c.id)
        ).scalar_one()
        invoice = conn.execute(
            insert(sales_invoices)
            .values(
                organization_id=org["id"],
                invoice_number="INV-00007",
                sequence_number=7,
                customer_id=buyer,
                type_code="380",
                issue_date=date(2026, 11, 10),
                due_date=date(2026, 12, 10),
                currency="USD",
                net_total=D("273.00"),
                tax_total=D("22.91"),
                gross_total=D("295.91"),
                amount_due=D("295.91"),
            )
            .returning(sales_invoices.c.id)
        ).scalar_one()
        lines = [
            (1, "Toner cartridge HP 58A", D(2), D("129.00"), D("258.00"), "S", D("8.88")),
            (2, "Next-day delivery", D(1), D("15.00"), D("15.00"), "Z", D("0")),
        ]
        for no, text, quantity, price, net, category, rate in lines:
            conn.execute(
                insert(sales_invoice_lines).values(
                    organization_id=org["id"],
                    sales_invoice_id=invoice,
                    line_no=no,
                    description=text,
                    quantity=quantity,
                    unit_price=price,
                    net_amount=net,
                    vat_rate=rate,
                    vat_category=category,
                )
            )
        for category, rate, basis, amount in [
            ("S", D("8.88"), D("258.00"), D("22.91")),
            ("Z", D("0"), D("15.00"), D("0")),
        ]:
            conn.execute(
                insert(sales_invoice_taxes).values(
                    organization_id=org["id"],
                    sales_invoice_id=invoice,
                    vat_category=category,
                    vat_rate=rate,
                    basis=basis,
                    amount=amount,
                )
            )
    return org, buyer, invoice


def _rows(db, org_id: int) -> dict[int, tuple]:
    d = sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        return {
            r.sales_invoice_id: (r.status, r.format, r.format_reason, r.storage_key, r.errors)
            for r in conn.execute(
                select(sales_invoice_documents).where(
                    d.organization_id == org_id, d.kind == "facturx"
                )
            )
        }


def test_a_us_seller_gets_a_plain_pdf_with_sales_tax(db, tmp_path):
    org, _, invoice = _us_shop(db)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))

    assert summary.generated == 1 and not summary.failed and summary.plain_pdf == 1
    status, fmt, reason, key, errors = _rows(db, org["id"])[invoice]
    assert (status, fmt, errors) == ("generated", "pdf", [])
    assert "outside the EU" in reason and "US" in reason
    pdf = store.read(key)
    assert _embedded(pdf) == {}  # no e-invoice XML inside
    text = _text(pdf)
    for seen in (
        "Acme Office Supplies Inc.",
        "Riverside Dental Group LLC",
        "410 Main St",
        "Invoice number: INV-00007",
        "Invoice date: 11/10/2026",
        "Toner cartridge HP 58A",
        "Next-day delivery",
        "Subtotal",
        "273.00 USD",
        "Total amount",
        "295.91 USD",
        "Payable within 30 days",
    ):
        assert seen in text, seen
    [sales_tax] = [line for line in text.splitlines() if "Sales tax" in line]
    assert "8.88 %" in sales_tax and "22.91 USD" in sales_tax
    assert "VAT" not in text and "USt" not in text and "EUR" not in text
    assert "Sales tax 0 %" not in text  # the non-taxable delivery is no sales tax total


def test_a_us_sellers_discount_is_dated_like_the_rest_of_its_invoice(db, tmp_path):
    org, _, invoice = _us_shop(db, skonto=[{"days": 10, "percent": "2"}])
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))

    assert summary.generated == 1 and summary.plain_pdf == 1, summary.failed
    text = " ".join(_text(store.read(_rows(db, org["id"])[invoice][3])).split())
    assert "Invoice date: 11/10/2026" in text
    # 2 % of 295.91 = 5.92 until ten days after 11/10/2026, written as the page writes its dates
    assert (
        "If paid by 11/20/2026, deduct a 2 % early-payment discount (5.92 USD): 289.99 USD to pay."
        in text
    )
    assert "2026-11-20" not in text


def test_a_german_seller_keeps_factur_x_and_a_customer_can_ask_for_a_plain_pdf(db, tmp_path):
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH", vat_id="DE123456789", settings={"seller": SELLER}
    )
    usual = sales_invoice(db.engine, org["id"], customer(db.engine, org["id"], "K-1", "Kunde GmbH"))
    plain_customer = customer(db.engine, org["id"], "K-2", "Privat Schmidt")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(customers).where(customers.c.id == plain_customer).values(document_format="pdf")
        )
    plain = sales_invoice(db.engine, org["id"], plain_customer)
    store = LocalFiles(str(tmp_path))

    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))

    assert summary.generated == 2 and summary.plain_pdf == 1 and not summary.failed
    rows = _rows(db, org["id"])
    assert rows[usual][1] == "facturx" and "EU seller" in rows[usual][2]
    assert b"urn:cen.eu:en16931:2017" in _embedded(store.read(rows[usual][3]))["factur-x.xml"][0]
    assert rows[plain][1:3] == ("pdf", "set for customer K-2")
    pdf = store.read(rows[plain][3])
    assert _embedded(pdf) == {}
    text = _text(pdf)
    assert "Privat Schmidt" in text and "Leistung 1" in text
    [tax] = [line for line in text.splitlines() if "USt. 19 %" in line]
    assert "38,00 EUR" in tax and "238,00 EUR" in text
    assert "USt-IdNr.: DE123456789" in text


def test_a_seller_without_vat_id_or_tax_number_gets_a_plain_pdf_and_bad_settings_are_recorded(
    db, tmp_path
):
    kleinunternehmer = db.new_organization(
        name="Schreinerei Klein", vat_id=None, settings={"seller": {**SELLER}}
    )
    exempt = sales_invoice(
        db.engine,
        kleinunternehmer["id"],
        customer(db.engine, kleinunternehmer["id"], "K-1", "Kunde GmbH"),
        taxes=[("E", "0", "400.00", "0.00")],
    )
    store = LocalFiles(str(tmp_path))
    summary = generate_documents(
        db.engine, store, find_organization(db.engine, kleinunternehmer["slug"])
    )
    assert summary.generated == 1 and summary.plain_pdf == 1
    status, fmt, reason, key, _ = _rows(db, kleinunternehmer["id"])[exempt]
    assert (status, fmt) == ("generated", "pdf") and "neither VAT id nor tax number" in reason
    text = _text(store.read(key))
    assert "Steuerbefreit" in text and "400,00 EUR" in text

    # an unknown organization setting fails that organization's invoices with the reason,
    # recorded, and they are tried again once it is fixed
    typo = db.new_organization(
        name="Tippfehler GmbH",
        vat_id="DE123456789",
        settings={"seller": SELLER, "documents": {"format": "zugferd"}},
    )
    waiting = sales_invoice(
        db.engine, typo["id"], customer(db.engine, typo["id"], "K-1", "Kunde GmbH")
    )
    failed = generate_documents(db.engine, store, find_organization(db.engine, typo["slug"]))
    assert failed.generated == 0 and failed.failed[waiting][0]["rule"] == "IP-DOC-FORMAT"
    assert "zugferd" in failed.failed[waiting][0]["message"]
    assert _rows(db, typo["id"])[waiting][0] == "failed"


def test_the_format_rules():
    def choose(**given):
        values = {
            "customer_format": None,
            "organization_format": None,
            "organization_country": "DE",
            "seller_vat_id": "DE123456789",
            "seller_tax_number": None,
            "einvoice_format": "facturx",
        }
        return choose_format(**{**values, **given}).format

    assert choose() == "facturx"
    assert choose(organization_country="US", seller_vat_id=None) == "pdf"
    assert choose(seller_vat_id=None) == "pdf"
    assert choose(seller_vat_id=None, seller_tax_number="99/123/45678") == "facturx"
    assert choose(organization_format="pdf") == "pdf"
    assert choose(organization_format="pdf", customer_format="facturx") == "facturx"
    assert choose(organization_format="facturx", customer_format="auto") == "facturx"
    # a public buyer who receives XRechnung is never sent a plain PDF on its own
    assert choose(seller_vat_id=None, einvoice_format="xrechnung-cii") == "facturx"
    assert choose(organization_format="xml") == "invalid"


def test_the_asset_records_the_format_and_the_mail_carries_the_plain_pdf(db, tmp_path):
    org, _, invoice = _us_shop(db)
    store = LocalFiles(str(tmp_path / "documents"))
    defs = Definitions(
        assets=[document_assets.sales_invoice_documents_asset],
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "document_store": store,
            "document_renderer": DocumentRenderer(workers=1),
        },
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [org["slug"]])
        run = defs.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, partition_key=org["slug"]
        )
    assert run.success
    [event] = run.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert metadata["generated"].value == 1 and metadata["plain_pdf"].value == 1
    [(why, count)] = metadata["formats"].value.items()
    assert why.startswith("pdf: auto: the seller's country US is outside the EU") and count == 1
    assert "Sales tax" in _text(Path(metadata["example_1"].value).read_bytes())

    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="billing@acme-office.example")
        summary = send_invoice_emails(
            db.engine, store, mailer, find_organization(db.engine, org["slug"])
        )
        assert summary.sent == 1 and not summary.failed
        [message] = list(sink.mailbox.messages)
    assert message["To"] == "billing@riversidedental.example"
    assert "INV-00007" in message["Subject"]
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "INV-00007.pdf"
    pdf = attachment.get_content()
    assert _embedded(pdf) == {}
    assert "295.91 USD" in _text(pdf) and invoice in _rows(db, org["id"])
    # the text does not promise an e-invoice the PDF does not carry
    body = message.get_body(("plain",)).get_content()
    assert "The invoice is attached as a PDF." in body and "Factur-X" not in body
