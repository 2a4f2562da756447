"""Dunning letters: each notice as a PDF/A letter with the organization's letterhead, every figure
of the notice, the base rate behind its interest and an EPC QR code a banking app reads; written
once, mailed once with the e-mail (production mailer, a real SMTP server on loopback), never again
after a run that died while sending."""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import threading
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pypdf
import pytest
from dagster import Definitions, instance_for_test
from sqlalchemy import select, update

from invoice_pipelines.db.tables import dunning_notices, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.documents.domain.letter_writer import PdfaLetterWriter
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.einvoice.layout import format_money, format_rate
from invoice_pipelines.overdue import assets as overdue_assets
from invoice_pipelines.overdue.domain.letter import CHUNK, write_letters
from invoice_pipelines.overdue.domain.notice_sending import send_notices
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.overdue.jobs import dunning_job
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.letters import Letter, LetterError, WrittenLetter
from invoice_pipelines.resources.messaging.mail import SmtpMailer
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_message_provider import TextMessageProvider
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.conftest import require_programs
from invoice_pipelines_tests.overdue.helpers import customer, invoice, notices, pay, set_settings

IBAN = "DE02120300000000202051"
SELLER = {
    "street": "Industriestraße 12",
    "postal_code": "70565",
    "city": "Stuttgart",
    "iban": IBAN,
    "bic": "BYLADEM1001",
}
EMAIL_LEVELS = {
    "deliver": True,
    "levels": [
        {"name": "reminder", "days": 1, "channel": "email"},
        {"name": "first_dunning", "days": 14, "fee_fixed": "2.50", "channel": "email"},
        {"name": "final_notice", "days": 30, "fee_fixed": "2.50", "channel": "email"},
    ],
}


def _org(db, dunning=None):
    org = db.new_organization(
        timezone="UTC", name="Müller Werkzeugbau GmbH", vat_id="DE123456789", country="DE"
    )
    set_settings(db, org, {"seller": SELLER, "dunning": dunning or EMAIL_LEVELS})
    return org


def _text(pdf: bytes, tmp_path: Path) -> str:
    """The letter's text as pdftotext reads it (layout kept: a label and its amount on one line)."""
    require_programs("pdftotext")
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout


def _qr(pdf: bytes, tmp_path: Path) -> list[str]:
    """The EPC QR code as a banking app reads it from the printed first page."""
    require_programs("pdftoppm", "zbarimg")
    (tmp_path / "qr.pdf").write_bytes(pdf)
    page = tmp_path / "page"
    subprocess.run(
        ["pdftoppm", "-r", "150", "-png", "-f", "1", "-l", "1", "-singlefile",
         str(tmp_path / "qr.pdf"), str(page)],
        check=True,
    )  # fmt: skip
    # the payload's bytes as they are (zbar would guess a character set for them): UTF-8, as the
    # EPC payload says (character set 1)
    scanned = subprocess.run(
        ["zbarimg", "--raw", "-q", "-Sbinary", f"{page}.png"], capture_output=True, check=True
    ).stdout
    return scanned.decode("utf-8").splitlines()


def _assert_pdfa(pdf: bytes) -> pypdf.PdfReader:
    """What the documents tests check of an invoice's PDF/A-3b: the XMP's part and conformance,
    the sRGB output intent, every font embedded, a file ID, every object readable in strict mode,
    Info and XMP titles alike."""
    assert pdf.startswith(b"%PDF-1.7\n%") and pdf.rstrip().endswith(b"%%EOF")
    reader = pypdf.PdfReader(io.BytesIO(pdf), strict=True)
    root = reader.trailer["/Root"]
    xmp = root["/Metadata"].get_object().get_data().decode("utf-8")
    assert "<pdfaid:part>3</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>" in xmp
    intent = root["/OutputIntents"][0].get_object()
    assert intent["/S"] == "/GTS_PDFA1" and "/DestOutputProfile" in intent
    assert "/ID" in reader.trailer
    for number in range(1, reader.trailer["/Size"]):
        reader.get_object(number)
    for page in reader.pages:
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            assert "/FontFile2" in descendant["/FontDescriptor"].get_object()
    title = reader.metadata["/Title"]
    assert xmp.count(f">{title}</rdf:li>") == 2
    return reader


def _money(amount: Decimal) -> str:
    return f"{format_money(amount, 'de')} EUR"


def test_a_notices_letter_is_pdfa_with_every_figure_of_the_notice_and_its_qr_code(db, tmp_path):
    """A business customer, noticed three times; the final notice's interest runs across
    1 July 2025, where the base rate fell from 2.27 % to 1.27 %."""
    org = _org(db, {"levels": EMAIL_LEVELS["levels"]})  # in-app: letters all the same
    buyer = customer(
        db, org, email="einkauf@kunde.example", vat_id="DE987654321", name="Kunde Hoffmann KG",
        street="Marktplatz 3", postal_code="80331", city="München",
    )  # fmt: skip
    due = date(2025, 6, 10)
    late = invoice(db, org, buyer, due, gross="1190.00", amount_due="1190.00")
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2025, 6, 12))
    pay(db, org, late, "300.00", date(2025, 6, 20))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2025, 6, 25))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2025, 7, 20))
    store = LocalFiles(str(tmp_path / "documents"))

    letters = write_letters(
        db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"])
    )

    rows = {n["level_name"]: n for n in notices(db, org)}
    assert set(rows) == {"reminder", "first_dunning", "final_notice"}
    assert len(letters.written) == 3 and not letters.failed
    final = rows["final_notice"]
    assert final["letter_status"] == "written" and final["letter_pages"] == 1
    pdf = store.read(final["letter_key"])
    assert final["letter_size_bytes"] == len(pdf)
    assert Path(store.location(final["letter_key"])).is_file()
    reader = _assert_pdfa(pdf)
    assert reader.metadata["/Title"] == "Müller Werkzeugbau GmbH: Letzte Mahnung"
    text = _text(pdf, tmp_path)
    lines = [" ".join(line.split()) for line in text.splitlines()]

    # the letterhead as the invoices print it, and the customer's address
    assert "Müller Werkzeugbau GmbH · Industriestraße 12 · 70565 Stuttgart" in lines
    assert any("USt-IdNr.: DE123456789" in line for line in lines)
    assert "Kunde Hoffmann KG" in lines and "80331 München" in lines
    assert "Letzte Mahnung" in lines
    # the claim of the invoice: its total and what is open of it
    [claim] = [line for line in lines if line.startswith("RE-")]
    assert claim.endswith(f"{_money(Decimal('1190.00'))} {_money(final['amount_open'])}")
    assert final["amount_open"] == Decimal("890.00")
    # interest of this notice: period, rate, the base rate of each half-year, the amount
    assert final["interest"] > 0 and final["interest_total"] > final["interest"]
    assert final["interest_rate_percent"] == Decimal("10.27")
    first_day = final["interest_from"] + timedelta(days=1)
    assert f"vom {first_day:%d.%m.%Y} bis 20.07.2025" in " ".join(lines)
    assert (
        f"{first_day:%d.%m.%Y} bis 30.06.2025: Basiszinssatz 2,27 % + 9 Prozentpunkte = 11,27 % p. a."
        in lines
    )
    assert (
        "01.07.2025 bis 20.07.2025: Basiszinssatz 1,27 % + 9 Prozentpunkte = "
        f"{format_rate(final['interest_rate_percent'])} p. a." in lines
    )

    def amount_of(label: str) -> str:
        """The amount beside a label (its one line: the label, then the amount)."""
        [amount] = [
            found.group(1)
            for line in lines
            if (found := re.fullmatch(rf"{re.escape(label)} (-?[0-9.,]+ EUR)", line))
        ]
        return amount

    assert amount_of("Verzugszinsen aus früheren Schreiben") == _money(
        final["interest_total"] - final["interest"]
    )
    assert amount_of("Verzugszinsen") == _money(final["interest"])
    # the flat fee of § 288(5) BGB, claimed on the first notice in default, the level fees
    # offset against it
    assert final["fees_total"] == Decimal("40.00") and final["fee"] == Decimal("0.00")
    assert amount_of("Pauschale nach § 288 Abs. 5 BGB") == _money(final["fees_total"])
    assert amount_of("Gesamtforderung") == _money(final["total_claimed"])
    assert (
        final["total_claimed"]
        == final["amount_open"] + final["fees_total"] + final["interest_total"]
    )
    assert (
        f"Mit diesem Schreiben neu berechnet: Mahnkosten {_money(final['fee'])}, "
        f"Verzugszinsen {_money(final['interest'])}." in " ".join(lines)
    )
    assert "IBAN: DE02 1203 0000 0000 2020 51" in lines
    # the EPC QR code asks for the total claimed, to the organization's account
    scanned = _qr(pdf, tmp_path)
    assert scanned[:8] == [
        "BCD", "002", "1", "SCT", "BYLADEM1001", "Müller Werkzeugbau GmbH", IBAN,
        f"EUR{final['total_claimed']}",
    ]  # fmt: skip
    number = claim.split()[0]
    assert scanned[8:] == ["", "", f"{number} Letzte Mahnung"]  # the transfer's reference

    # the reminder: a business in default from the due date owes the flat fee from the first
    # notice on, and two days' interest on the whole amount
    reminder = rows["reminder"]
    assert reminder["fee"] == Decimal("40.00") and reminder["amount_open"] == Decimal("1190.00")
    reminder_text = " ".join(_text(store.read(reminder["letter_key"]), tmp_path).split())
    assert "Zahlungserinnerung" in reminder_text
    assert f"Pauschale nach § 288 Abs. 5 BGB {_money(reminder['fee'])}" in reminder_text
    assert f"Verzugszinsen {_money(reminder['interest'])}" in reminder_text
    assert f"Gesamtforderung {_money(reminder['total_claimed'])}" in reminder_text
    assert _qr(store.read(reminder["letter_key"]), tmp_path)[7] == f"EUR{reminder['total_claimed']}"

    # a second run writes nothing again
    assert (
        write_letters(
            db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"])
        ).written
        == []
    )


def test_an_english_consumers_letter_has_level_fees_and_no_flat_fee(db, tmp_path):
    org = _org(db, {"levels": EMAIL_LEVELS["levels"]})
    buyer = customer(db, org, language="en", name="Jane Doe", kind="consumer")
    invoice(db, org, buyer, date(2026, 10, 1))
    run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 10, 20)
    )  # first dunning: 2.50
    store = LocalFiles(str(tmp_path))
    write_letters(db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"]))
    [notice] = notices(db, org)
    text = " ".join(_text(store.read(notice["letter_key"]), tmp_path).split())
    assert "First reminder" in text and "§ 288(5)" not in text
    assert f"Dunning fees {format_money(notice['fees_total'], 'en')} EUR" in text
    assert f"Total claimed {format_money(notice['total_claimed'], 'en')} EUR" in text


def test_interest_after_a_partial_payment_is_listed_per_balance_in_the_letter(db, tmp_path):
    """Issue 46: the days up to the payment on what was open then, the rest on what is open now;
    the letter names each amount with its days, then the rate."""
    org = _org(db, {"levels": EMAIL_LEVELS["levels"]})
    buyer = customer(db, org, vat_id="DE987654321")
    late = invoice(db, org, buyer, date(2025, 6, 10), gross="1190.00", amount_due="1190.00")
    run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=date(2025, 6, 12)
    )  # reminder: charged up to here
    pay(db, org, late, "300.00", date(2025, 6, 20))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2025, 6, 25))
    store = LocalFiles(str(tmp_path / "documents"))

    write_letters(db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"]))

    first = {n["level_name"]: n for n in notices(db, org)}["first_dunning"]
    assert first["interest_segments"] == [
        {"after": "2025-06-12", "until": "2025-06-20", "amount": "1190.00"},
        {"after": "2025-06-20", "until": "2025-06-25", "amount": "890.00"},
    ]
    # (1190.00 x 8 + 890.00 x 5) x 11.27 % / 365 = 4.313 -> 4.31 (on 890.00 alone: 3.58)
    assert first["interest"] == Decimal("4.31")
    text = " ".join(_text(store.read(first["letter_key"]), tmp_path).split())
    assert (
        "Verzugszinsen für die Zeit vom 13.06.2025 bis 25.06.2025 (13 Tage) nach § 288 BGB: "
        "auf 1.190,00 EUR vom 13.06.2025 bis 20.06.2025 (8 Tage) "
        "auf 890,00 EUR vom 21.06.2025 bis 25.06.2025 (5 Tage) "
        "13.06.2025 bis 25.06.2025: Basiszinssatz 2,27 % + 9 Prozentpunkte = 11,27 % p. a. "
        "Verzugszinsen 4,31 EUR" in text
    )


class CountingWriter(PdfaLetters):
    """The production writer, counting the letters it writes (across threads)."""

    def write(self, letter: Letter, *, created=None) -> WrittenLetter:
        written = super().write(letter, created=created)
        with _lock:
            _written.append(letter.title)
        return written


_lock = threading.Lock()
_written: list[str] = []


def test_two_runs_at_once_write_each_letter_once(db, tmp_path):
    org = _org(db, {"levels": EMAIL_LEVELS["levels"]})
    kunde = customer(db, org)
    count = 2 * CHUNK + 10  # three claims: the two runs take turns
    for n in range(count):
        invoice(db, org, kunde, date(2026, 10, 1) + timedelta(days=n % 20))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 11, 5))
    store = LocalFiles(str(tmp_path))
    _written.clear()
    results = []
    runs = [
        threading.Thread(
            target=lambda: results.append(
                write_letters(
                    db.engine, CountingWriter(), store, find_organization(db.engine, org["slug"])
                )
            )
        )
        for _ in range(2)
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert len(_written) == count
    assert sorted(w["notice_id"] for r in results for w in r.written) == sorted(
        n["id"] for n in notices(db, org)
    )
    assert {n["letter_status"] for n in notices(db, org)} == {"written"}


def test_a_letter_another_run_is_writing_waits_and_a_dead_runs_claim_is_taken_over(db, tmp_path):
    org = _org(db)
    invoice(db, org, customer(db, org, email="einkauf@kunde.example"), date(2026, 11, 1))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 11, 3))
    store = LocalFiles(str(tmp_path))
    n = dunning_notices.c
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            update(dunning_notices)
            .where(n.organization_id == org["id"])
            .values(letter_status="writing", letter_started_at=utcnow())
        )
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        assert (
            write_letters(
                db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"])
            ).written
            == []
        )
        waiting = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        assert sink.mailbox.messages == [] and len(waiting.postponed) == 1
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                update(dunning_notices)
                .where(n.organization_id == org["id"])
                .values(letter_started_at=utcnow() - timedelta(hours=1))
            )
        assert (
            len(
                write_letters(
                    db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"])
                ).written
            )
            == 1
        )
        sent = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        assert sent.sent == 1 and len(sink.mailbox.messages) == 1


def test_the_letter_is_mailed_once_and_a_run_that_died_sending_leaves_unknown(db, tmp_path):
    org = _org(db)
    mailed = invoice(db, org, customer(db, org, email="einkauf@kunde.example"), date(2026, 11, 1))
    stuck = invoice(db, org, customer(db, org, email="stuck@kunde.example"), date(2026, 11, 1))
    run_overdue(
        db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 11, 20)
    )  # first dunning
    store = LocalFiles(str(tmp_path))
    writer = PdfaLetters()
    n = dunning_notices.c
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        for _ in range(2):  # two runs of what the dunning asset does
            write_letters(db.engine, writer, store, find_organization(db.engine, org["slug"]))
            if not sink.mailbox.messages:
                # the run dies after committing its intent for this one, before handing it over
                with tenant_transaction(db.engine, org["id"], write=True) as conn:
                    conn.execute(
                        update(dunning_notices)
                        .where(n.sales_invoice_id == stuck)
                        .values(
                            delivery_status="sending",
                            delivery_started_at=utcnow() - timedelta(hours=1),
                        )
                    )
            send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        messages = list(sink.mailbox.messages)

    assert [m["To"] for m in messages] == ["einkauf@kunde.example"]
    [message] = messages
    rows = {r["sales_invoice_id"]: r for r in notices(db, org)}
    assert rows[stuck]["delivery_status"] == "unknown"
    assert rows[mailed]["delivery_status"] == "sent"
    body = message.get_body(("plain",)).get_content()
    assert "Unser Schreiben (1. Mahnung) liegt als PDF bei." in body
    [letter] = list(message.iter_attachments())
    assert letter.get_content_type() == "application/pdf"
    with tenant_transaction(db.engine, org["id"]) as conn:
        number = conn.execute(
            select(sales_invoices.c.invoice_number).where(sales_invoices.c.id == mailed)
        ).scalar_one()
    assert message["Subject"].startswith(f"1. Mahnung: Rechnung {number} ")
    assert letter.get_filename() == f"Mahnung_{number}_2.pdf"
    assert letter.get_content() == store.read(rows[mailed]["letter_key"])
    _assert_pdfa(letter.get_content())
    assert _money(rows[mailed]["total_claimed"]) in _text(letter.get_content(), tmp_path)


class _RefusingWriter(PdfaLetters):
    """Refuses the letter of one customer, as a writer refuses what it cannot lay out."""

    def write(self, letter: Letter, *, created=None) -> WrittenLetter:
        if any("Unsetzbar" in line for line in letter.head):
            raise LetterError("the letter takes 3 pages, more than the 2 a letter may take")
        return super().write(letter, created=created)


def test_a_letter_that_cannot_be_written_fails_its_notice_and_no_other(db, tmp_path):
    org = _org(db)
    refused = customer(db, org, email="einkauf@kunde.example", name="Unsetzbar AG")
    fine = customer(db, org, email="buchhaltung@kunde.example", name="Kunde GmbH")
    for buyer in (refused, fine):
        invoice(db, org, buyer, date(2026, 11, 1))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 11, 3))
    store = LocalFiles(str(tmp_path))
    letters = write_letters(
        db.engine, _RefusingWriter(), store, find_organization(db.engine, org["slug"])
    )
    [reason] = letters.failed.values()
    assert reason == (
        "the dunning letter cannot be written: the letter takes 3 pages, more than the 2 a "
        "letter may take"
    )
    assert len(letters.written) == 1
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        summary = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        assert [m["To"] for m in sink.mailbox.messages] == ["buchhaltung@kunde.example"]
    by_customer = {n["customer_id"]: n for n in notices(db, org)}
    failed, sent = by_customer[refused], by_customer[fine]
    assert failed["letter_status"] == "failed" and failed["delivery_status"] == "failed"
    assert failed["delivery_error"] == reason and summary.failed == {failed["id"]: reason}
    assert (sent["letter_status"], sent["delivery_status"]) == ("written", "sent")


def test_the_dunning_asset_writes_mails_and_shows_the_letters(db):
    org = _org(db)
    invoice(db, org, customer(db, org, email="einkauf@kunde.example"), date(2026, 11, 1))
    root = tempfile.mkdtemp(prefix="dunning-letters-")
    with SmtpSink() as sink, instance_for_test() as instance:
        instance.add_dynamic_partitions("organizations", [org["slug"]])
        defs = Definitions(
            assets=[overdue_assets.dunning_notices],
            jobs=[dunning_job],
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
                "mailer": SmtpMailer(port=sink.port, sender="mahnung@mueller.example"),
                "document_store": LocalFileStore(root=root),
                "text_messages": TextMessageProvider(base_url="http://127.0.0.1:1"),
                "letter_writer": PdfaLetterWriter(),
            },
        )
        result = defs.resolve_job_def("dunning_job").execute_in_process(
            instance=instance,
            partition_key=org["slug"],
            run_config={"ops": {"dunning_notices": {"config": {"as_of": "2026-11-20"}}}},
        )
        (message,) = sink.mailbox.messages
    (event,) = result.get_asset_materialization_events()
    metadata = event.event_specific_data.materialization.metadata
    assert (metadata["letters_written"].value, metadata["notices_sent"].value) == (1, 1)
    [notice] = notices(db, org)
    path = str(Path(root) / notice["letter_key"])
    table = metadata["letters"].value.replace("\\_", "_")  # markdown escapes underscores
    assert f"| {path} | {notice['letter_size_bytes']} | 1 |" in table
    [letter] = list(message.iter_attachments())
    assert letter.get_content() == Path(path).read_bytes()


def test_a_letter_longer_than_the_writer_allows_is_refused():
    letter = Letter(
        author="Müller Werkzeugbau GmbH",
        title="1. Mahnung",
        head=("Kunde",),
        body=tuple(f"Zeile {n}" for n in range(120)),
    )
    written = PdfaLetters(max_pages=3).write(letter)  # 120 lines: three pages
    assert written.pages == len(pypdf.PdfReader(io.BytesIO(written.pdf)).pages) == 3
    with pytest.raises(LetterError, match="takes 3 pages, more than the 2"):
        PdfaLetters().write(letter)
