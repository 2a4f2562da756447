"""seed-demo creates three realistic organizations once."""

import io
import re
from pathlib import Path

from sqlalchemy import func, select

from invoice_pipelines.db.tables import customers, organizations, sales_order_lines, sales_orders
from invoice_pipelines.db.tenancy import find_organization, system_transaction
from invoice_pipelines_devtools.demo.seed import seed_demo


def _counts(engine):
    with system_transaction(engine) as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (organizations, customers, sales_orders, sales_order_lines)
        )


def test_seed_demo_is_idempotent_and_realistic(tmp_path, sqlite_migrated_factory):
    from invoice_pipelines.db.engine import make_engine

    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    first = seed_demo(engine, system=engine)
    assert len(first["created"]) == 3
    assert len(first["batch_jobs"]) == 1  # queued for the batch_jobs_sensor
    counts = _counts(engine)
    assert counts[0] == 3 and counts[1] >= 12 and counts[2] >= 60
    again = seed_demo(engine, system=engine)
    assert again["created"] == [] and again["batch_jobs"] == []
    assert _counts(engine) == counts
    with system_transaction(engine) as conn:
        currencies = set(conn.execute(select(organizations.c.currency)).scalars())
        statuses = set(conn.execute(select(sales_orders.c.status)).scalars())
    assert currencies == {"EUR", "USD"}
    assert "reviewed" in statuses and "pending" in statuses


def _demo_engine(tmp_path, sqlite_migrated_factory):
    from invoice_pipelines.db.engine import make_engine

    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    return make_engine(url)


def test_a_demo_invoice_shows_the_seller_its_bank_account_and_an_epc_qr_code(
    tmp_path, sqlite_migrated_factory
):
    """What `make run` shows: the queued demo job's invoices of brandt-it-service, their PDFs
    (the seller's address, IBAN, an EPC QR code a banking app reads) and their e-mails (the
    account to pay to). Before, no demo organization had seller settings: no address, no IBAN,
    no QR code, and an e-mail that asked for a transfer without saying where to."""
    import subprocess

    import pypdf

    from invoice_pipelines.billing.domain.invoicing import process_batch_job
    from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails
    from invoice_pipelines.documents.domain.pipeline import generate_documents
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines.resources.messaging.smtp import Smtp
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.conftest import require_programs

    require_programs("pdftoppm", "zbarimg")
    engine = _demo_engine(tmp_path, sqlite_migrated_factory)
    [job] = seed_demo(engine, system=engine)["batch_jobs"]
    assert process_batch_job(engine, job, system=engine, runner="test").status == "completed"
    store = LocalFiles(str(tmp_path / "documents"))
    documents = generate_documents(engine, store, find_organization(engine, "brandt-it-service"))
    assert documents.generated > 0 and not documents.failed
    pdf = Path(documents.paths[0]).read_bytes()

    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "Brandt IT-Service OHG · Rheinuferstraße 7 · 50668 Köln" in text
    assert "IBAN: DE02 1203 0000 0000 2020 51" in text
    assert "Zahlbar innerhalb von 14 Tagen ohne Abzug." in text
    number = re.search(r"Rechnungsnummer: (\S+)", text).group(1)
    # the EPC QR code (GiroCode) as a banking app reads it from the printed page
    page = tmp_path / "page"
    (tmp_path / "invoice.pdf").write_bytes(pdf)
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile",
         str(tmp_path / "invoice.pdf"), str(page)],
        check=True,
    )  # fmt: skip
    scanned = subprocess.run(
        ["zbarimg", "--raw", "-q", f"{page}.png"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert scanned[:7] == [
        "BCD", "002", "1", "SCT", "BYLADEM1001", "Brandt IT-Service OHG",
        "DE02120300000000202051",
    ]  # fmt: skip
    assert scanned[7].startswith("EUR") and number in scanned

    # the e-mail says where to transfer the amount
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="rechnung@brandt-it.example")
        sent = send_invoice_emails(
            engine, store, mailer, find_organization(engine, "brandt-it-service")
        )
        messages = list(sink.mailbox.messages)
    assert sent.sent == len(messages) > 0
    body = messages[0].get_body(("plain",)).get_content()
    assert "auf das Konto DE02 1203 0000 0000 2020 51" in body


def test_demo_organizations_seeded_before_the_seller_settings_get_them(
    tmp_path, sqlite_migrated_factory
):
    from sqlalchemy import update

    engine = _demo_engine(tmp_path, sqlite_migrated_factory)
    seed_demo(engine, system=engine)
    with system_transaction(engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.slug == "mueller-werkzeugbau")
            .values(settings={"exports": {"close_months": True}})
        )
    again = seed_demo(engine, system=engine)
    assert again["settings_completed"] == ["mueller-werkzeugbau"]
    with system_transaction(engine) as conn:
        settings = conn.execute(
            select(organizations.c.settings).where(organizations.c.slug == "mueller-werkzeugbau")
        ).scalar_one()
    # what was there stays; what was missing is added
    assert settings["exports"] == {"close_months": True}
    assert settings["seller"]["iban"] == "DE89370400440532013000"
    assert seed_demo(engine, system=engine)["settings_completed"] == []


def test_the_demo_has_overdue_invoices_for_every_dunning_level(tmp_path, sqlite_migrated_factory):
    """Before, no demo invoice was overdue and dunning_notices had nothing to show. Now
    mueller-werkzeugbau has three unpaid invoices, properly numbered, overdue 6, 26 and 61 days
    on the day of seeding: a dunning run that day notices one at each default level."""
    from datetime import date

    from invoice_pipelines.overdue.domain.pipeline import run_overdue

    engine = _demo_engine(tmp_path, sqlite_migrated_factory)
    seeded = seed_demo(engine, system=engine, today=date(2026, 11, 23))
    assert seeded["overdue_invoices"] == [
        "RE-2026-000001",
        "RE-2026-000002",
        "RE-2026-000003",
    ]
    assert len(seeded["batch_jobs"]) == 1  # brandt-it-service's job is still the one queued

    result = run_overdue(
        engine, find_organization(engine, "mueller-werkzeugbau"), on=date(2026, 11, 23)
    )

    assert result.status == "SUCCESS", result.errors
    assert dict(result.created_by_level) == {
        "reminder": 1,
        "first_dunning": 1,
        "final_notice": 1,
    }
    assert result.fees > 0 and result.interest > 0
    assert seed_demo(engine, system=engine)["overdue_invoices"] == []  # once
