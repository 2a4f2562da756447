"""A notice's e-mail and letter say the same: the fee by its name in law, and only the earlier
notices that were sent."""

from __future__ import annotations

from datetime import date

from sqlalchemy import update

from invoice_pipelines.db.tables import dunning_notices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.overdue.domain.letter import write_letters
from invoice_pipelines.overdue.domain.notice_sending import send_notices
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.overdue.helpers import customer, invoice
from invoice_pipelines_tests.overdue.test_letters import _org, _text

DUE = date(2026, 11, 1)


def _round(db, org, store, tmp_path, day: date) -> dict[str, tuple[str, str]]:
    """One dunning round on `day`: notices, letters, e-mails; per recipient (e-mail text, letter
    text) of what went out."""
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=day)
    write_letters(db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"]))
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        messages = list(sink.mailbox.messages)
    sent = {}
    for message in messages:
        body = " ".join(message.get_body(("plain",)).get_content().split())
        [letter] = list(message.iter_attachments())
        sent[message["To"]] = (body, " ".join(_text(letter.get_content(), tmp_path).split()))
    return sent


def test_email_and_letter_name_the_fee_and_only_the_notices_that_were_sent(db, tmp_path):
    org = _org(db)
    reminded, failed, jumped = (
        customer(db, org, email=f"{who}@kunde.example", vat_id="DE987654321")
        for who in ("reminded", "failed", "jumped")
    )
    invoice(db, org, reminded, DUE)
    invoice(db, org, failed, DUE)
    store = LocalFiles(str(tmp_path / "store"))
    first = _round(db, org, store, tmp_path, date(2026, 11, 3))  # two reminders
    assert set(first) == {"reminded@kunde.example", "failed@kunde.example"}
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        # the reminder to `failed` bounced: it was never read
        conn.execute(
            update(dunning_notices)
            .where(dunning_notices.c.customer_id == failed)
            .values(delivery_status="failed", delivery_error="550 mailbox unavailable")
        )
    invoice(db, org, jumped, date(2026, 10, 1))  # 46 days overdue on the next round: final notice

    second = _round(db, org, store, tmp_path, date(2026, 11, 16))

    for who, (mail, letter) in second.items():
        # the flat fee by its name in law, in both; never "Mahngebühren"
        assert "Pauschale nach § 288 Abs. 5 BGB: 40,00 EUR" in mail, who
        assert "Pauschale nach § 288 Abs. 5 BGB 40,00 EUR" in letter, who
        assert "Mahngebühren" not in mail + letter, who
        if who == "reminded@kunde.example":
            named = "trotz unserer Zahlungserinnerung vom 03.11.2026"
            assert named in mail and named in letter
        else:
            # a reminder that bounced, or none at all (the invoice jumped to the final notice)
            assert "trotz" not in mail + letter and "Erinnerung " not in mail + letter, who
            assert "Mahnungen" not in mail + letter, who
    assert "Dies ist unsere letzte Mahnung." in second["jumped@kunde.example"][1]
