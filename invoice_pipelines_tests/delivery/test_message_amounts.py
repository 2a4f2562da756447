"""Every message says what its document says (issue 37): each e-mail, SMS and WhatsApp text, in
each language, of an invoice, a partly credited invoice, a credit note and a dunning notice at
each level. Every amount in a text must be named by the words before it and equal that figure of
the document: the total the PDF's embedded Factur-X XML states (`über` / `for`), what is still
open of the invoice (`davon offen:`, `Offen:`, `still open:` ...: its row's amount_due, which the
credit note's own total explains) and a notice's fees, interest and total claimed (its row). An
amount nobody named, or named as something it is not, fails.

The documents, credit notes and notices are made by the project's own code (billing's credit
notes, the documents builder, the dunning run) and the messages are sent through the production
channels to the SMTP and text-provider stand-ins on loopback."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from decimal import Decimal

import pypdf
from lxml import etree
from sqlalchemy import select, update

from invoice_pipelines.db.tables import (
    customers,
    dunning_notices,
    sales_invoice_documents,
    sales_invoices,
)
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.delivery.domain.pipeline import send_invoice_emails, send_invoices
from invoice_pipelines.documents.domain.pipeline import generate_documents
from invoice_pipelines.overdue.domain.notice_sending import GENERIC_TITLE, TITLES, send_notices
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.channels import TextTransport
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.resources.messaging.text_messages import TextMessages
from invoice_pipelines_devtools.standins.sms import TextProviderStandIn
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.documents.test_credit_note_service_date import credit_second_line
from invoice_pipelines_tests.documents.test_pipeline import SELLER
from invoice_pipelines_tests.exports.books import customer, sales_invoice

AS_OF = date(2026, 11, 20)  # the dunning run's day
CHANNELS = ("email", "sms", "whatsapp")
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
}
MONEY = {
    "de": re.compile(r"(\d{1,3}(?:\.\d{3})*,\d{2}) ([A-Z]{3})"),
    "en": re.compile(r"(\d{1,3}(?:,\d{3})*\.\d{2}) ([A-Z]{3})"),
}
# the words right before an amount (lower case) -> the figure they name; longest first
LABELS = sorted(
    {
        "davon offen: ": "open",
        "still open: ": "open",
        "offen: ": "open",
        "offen sind noch ": "open",
        "offen sind ": "open",
        "offener rechnungsbetrag: ": "open",
        "amount open: ": "open",
        "mahngebühren: ": "fees",
        "dunning fees: ": "fees",
        # a business's fees under German law: the § 288(5) BGB flat fee (overdue/domain/wording.py)
        "pauschale nach § 288 abs. 5 bgb: ": "fees",
        "flat fee under § 288(5) bgb: ": "fees",
        "verzugszinsen: ": "interest",
        "default interest: ": "interest",
        "gesamtforderung: ": "claimed",
        "total claimed: ": "claimed",
        "über ": "total",
        "rechnungsbetrag ": "total",
        "for ": "total",
    }.items(),
    key=lambda item: -len(item[0]),
)
KIND = {
    ("de", "380"): "Rechnung",
    ("de", "381"): "Rechnungskorrektur",
    ("en", "380"): "invoice",
    ("en", "381"): "credit note",
}


def _amount(text: str, language: str) -> Decimal:
    return Decimal(text.replace("." if language == "de" else ",", "").replace(",", "."))


def named_amounts(text: str, language: str) -> list[tuple[str, Decimal, str]]:
    """(figure, amount, currency) for every amount in the text; AssertionError for one that the
    words before it do not name."""
    found = []
    for match in MONEY[language].finditer(text):
        before = text[: match.start()].lower()
        figure = next((name for words, name in LABELS if before.endswith(words)), None)
        assert figure, (
            f"an amount nobody named: ...{text[max(0, match.start() - 40) : match.end()]}"
        )
        found.append((figure, _amount(match.group(1), language), match.group(2)))
    return found


def assert_figures(text: str, language: str, figures: dict[str, Decimal], currency: str) -> set:
    """Each amount equals the figure its words name; returns the figures the text shows."""
    shown = set()
    for figure, amount, in_currency in named_amounts(text, language):
        assert figure in figures, f"{figure} {amount} where the document has no {figure}: {text}"
        assert (amount, in_currency) == (figures[figure], currency), (figure, text)
        shown.add(figure)
    assert "total" in shown, f"the document's total is not stated: {text}"
    return shown


def pdf_figures(pdf: bytes) -> dict:
    """What the PDF's embedded Factur-X XML says: number, type code, gross total, the invoice a
    credit note corrects."""
    xml = pypdf.PdfReader(io.BytesIO(pdf)).attachments["factur-x.xml"][0]
    root = etree.fromstring(xml)

    def one(path: str) -> str | None:
        values = root.xpath(f"{path}/text()", namespaces=NS)
        return values[0] if values else None

    return {
        "number": one("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID"),
        "type_code": one("/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode"),
        "total": Decimal(
            one("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount")
        ),
        "due": Decimal(
            one("//ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount")
        ),
        "corrects": one("//ram:InvoiceReferencedDocument/ram:IssuerAssignedID"),
    }


def _shop(db, tmp_path):
    """One organization (German law, a fixed base rate, every notice level delivered by e-mail),
    a German and an English business customer; per language: an invoice, an invoice partly
    credited by a credit note, and five overdue or nearly due invoices for the dunning run (two
    of them partly credited). Every document is built by the documents pipeline."""
    org = db.new_organization(
        name="Müller Werkzeugbau GmbH",
        vat_id="DE123456789",
        country="DE",
        timezone="UTC",
        settings={
            "seller": SELLER,
            "dunning": {
                "deliver": True,
                "law": "DE",
                "interest": {"base_rate_percent": "1.27"},
                "levels": [
                    {"name": "friendly", "days": -3, "channel": "email"},
                    {"name": "reminder", "days": 1, "channel": "email"},
                    {"name": "first_dunning", "days": 14, "fee_fixed": "2.50", "channel": "email"},
                    {"name": "final_notice", "days": 30, "fee_fixed": "2.50", "channel": "email"},
                ],
            },
        },
    )
    two_rates = [("S", "19", "200.00", "38.00"), ("S", "7", "100.00", "7.00")]
    shop = {"org": org, "messages": {}, "dunning": {}}
    for language in ("de", "en"):
        who = customer(
            db.engine, org["id"], f"K-{language}", f"Kunde {language}", vat_id="DE987654321"
        )
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                update(customers)
                .where(customers.c.id == who)
                .values(
                    email=f"einkauf-{language}@kunde.example",
                    phone="+491512345678" if language == "de" else "+447700900123",
                    language=language,
                )
            )
        day = date(2026, 11, 10)
        whole = sales_invoice(db.engine, org["id"], who, day=day, taxes=two_rates)
        partly = sales_invoice(db.engine, org["id"], who, day=day, taxes=two_rates)
        note = _credit(db, org, partly, day + timedelta(days=10))
        shop["messages"][language] = {"invoice": whole, "partly credited": partly, "credit": note}
        # due in 2 days (a friendly notice), today, 5, 20 and 40 days ago
        overdue = []
        for late in (-2, 0, 5, 20, 40):
            issued = AS_OF - timedelta(days=14 + late)
            invoice_id = sales_invoice(db.engine, org["id"], who, day=issued, taxes=two_rates)
            if late in (-2, 5):
                _credit(db, org, invoice_id, issued)
            overdue.append(invoice_id)
        shop["dunning"][language] = overdue
    shop["store"] = store = LocalFiles(str(tmp_path / "documents"))
    summary = generate_documents(db.engine, store, find_organization(db.engine, org["slug"]))
    assert not summary.failed and summary.generated == 2 * 10
    return shop


def _credit(db, org, invoice_id: int, on: date) -> int:
    """A credit note of the invoice's second line (100.00 at 7 %): its id."""
    note = credit_second_line(db, org, invoice_id, on)
    assert note.gross_total == Decimal("107.00")
    return note.id


def _rows(db, org_id: int) -> dict[int, dict]:
    """Each sales invoice's row with its stored PDF's storage key."""
    s, doc = sales_invoices.c, sales_invoice_documents.c
    with tenant_transaction(db.engine, org_id) as conn:
        rows = conn.execute(
            select(s.id, s.invoice_number, s.type_code, s.gross_total, s.amount_due, s.currency,
                   s.corrects_invoice_id, doc.storage_key)
            .join(sales_invoice_documents, doc.sales_invoice_id == s.id)
            .where(s.organization_id == org_id, doc.kind == "facturx")
        ).mappings()  # fmt: skip
        return {r["id"]: dict(r) for r in rows}


def _check_invoice_message(text: str, language: str, pdf: bytes, row: dict, rows: dict) -> set:
    """A message about an invoice or credit note against its PDF and its row."""
    document = pdf_figures(pdf)
    assert (document["number"], document["type_code"]) == (row["invoice_number"], row["type_code"])
    figures = {"total": document["total"]}
    kind = KIND[(language, document["type_code"])]
    assert f"{kind} {document['number']}" in text, text  # its own kind and number
    if document["type_code"] == "381":
        # what it corrects, by number, and no request to pay
        assert document["corrects"] == rows[row["corrects_invoice_id"]]["invoice_number"]
        assert document["corrects"] in text
        assert not re.search(r"überweisen|pay|transfer", text, re.IGNORECASE), text
    else:
        figures["open"] = row["amount_due"]
        assert document["due"] == document["total"]  # the PDF asks for its total
    return assert_figures(text, language, figures, row["currency"])


def test_every_invoice_and_credit_note_message_states_its_documents_amounts(db, tmp_path):
    shop = _shop(db, tmp_path)
    org, store = shop["org"], shop["store"]
    rows = _rows(db, org["id"])
    sent: dict[tuple[str, str, str], str] = {}
    pdfs: dict[tuple[str, str], bytes] = {}
    with SmtpSink() as sink, TextProviderStandIn() as api:
        mailer = Smtp(port=sink.port, sender="rechnung@mueller.example")
        provider = TextMessages(base_url=api.url)
        texts = {"sms": TextTransport(provider), "whatsapp": TextTransport(provider, "whatsapp")}
        for language, documents in shop["messages"].items():
            for case, invoice_id in documents.items():
                # one invoice at a time, so each message is known to be this document's
                summary = send_invoice_emails(
                    db.engine,
                    store,
                    mailer,
                    find_organization(db.engine, org["slug"]),
                    [invoice_id],
                    max_per_second=0,
                )
                assert summary.sent == 1, summary
                message = sink.mailbox.messages[-1]
                [attachment] = list(message.iter_attachments())
                pdfs[(language, case)] = attachment.get_content()
                body = message.get_body(("plain",)).get_content()
                sent[(language, case, "email")] = f"{message['Subject']}\n\n{body}"
                for channel_name, channel in texts.items():
                    summary = send_invoices(
                        db.engine,
                        store,
                        channel,
                        find_organization(db.engine, org["slug"]),
                        [invoice_id],
                        max_per_second=0,
                    )
                    assert summary.sent == 1, summary
                    sent[(language, case, channel_name)] = api.outbox.messages[-1]["body"]

    assert len(sent) == 2 * 3 * len(CHANNELS)
    for (language, case, channel), text in sent.items():
        invoice_id = shop["messages"][language][case]
        row = rows[invoice_id]
        pdf = pdfs[(language, case)]
        # the attached PDF is the stored document the row names
        assert pdf == (tmp_path / "documents" / row["storage_key"]).read_bytes()
        shown = _check_invoice_message(text, language, pdf, row, rows)
        if case == "partly credited":
            # what is open is named as such, and it is the total less the credit note's
            note = pdf_figures(pdfs[(language, "credit")])
            assert row["amount_due"] == pdf_figures(pdf)["total"] - note["total"]
            assert "open" in shown, (channel, text)
        elif case == "invoice":
            assert "open" not in shown, (channel, text)  # open in full: one amount, the total
        if channel == "email" and case == "credit":
            attached = {"de": "Die Rechnungskorrektur liegt als PDF bei",
                        "en": "The credit note is attached as a PDF"}  # fmt: skip
            assert attached[language] in text


def _notices(db, org_id: int) -> dict[int, dict]:
    n = dunning_notices.c
    with tenant_transaction(db.engine, org_id) as conn:
        rows = conn.execute(select(dunning_notices).where(n.organization_id == org_id)).mappings()
        return {r["id"]: dict(r) for r in rows}


def test_every_dunning_message_states_the_notices_own_figures(db, tmp_path):
    shop = _shop(db, tmp_path)
    org, store = shop["org"], shop["store"]
    rows = _rows(db, org["id"])
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=AS_OF)
    notices = _notices(db, org["id"])
    # one notice per overdue invoice, every level, fees and interest where the law gives them
    assert sorted(n["sales_invoice_id"] for n in notices.values()) == sorted(
        i for ids in shop["dunning"].values() for i in ids
    )
    assert {n["level"] for n in notices.values()} == {1, 2, 3, 4}
    assert any(n["fees_total"] and n["interest_total"] for n in notices.values())
    texts: dict[tuple[int, str], str] = {}
    n = dunning_notices.c
    with SmtpSink() as sink, TextProviderStandIn() as api:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        provider = TextMessages(base_url=api.url)
        for channel in CHANNELS:
            # the same notices over each channel in turn: pending again, on this channel
            with tenant_transaction(db.engine, org["id"], write=True) as conn:
                conn.execute(
                    update(dunning_notices)
                    .where(n.organization_id == org["id"])
                    .values(channel=channel, delivery_status="pending", message_id=None,
                            recipient=None, sent_at=None, delivery_error=None)
                )  # fmt: skip
            before_mail, before_text = len(sink.mailbox.messages), len(api.outbox.messages)
            summary = send_notices(
                db.engine,
                mailer,
                store,
                find_organization(db.engine, org["slug"]),
                text_messages=provider,
            )
            assert summary.sent == len(notices) and not summary.failed, summary
            by_id = {r["message_id"]: r["id"] for r in _notices(db, org["id"]).values()}
            for message in sink.mailbox.messages[before_mail:]:
                body = message.get_body(("plain",)).get_content()
                notice_id = by_id[str(message["Message-ID"]).strip()]
                texts[(notice_id, channel)] = f"{message['Subject']}\n\n{body}"
            for message in api.outbox.messages[before_text:]:
                texts[(by_id[message["sid"]], channel)] = message["body"]

    assert len(texts) == len(notices) * len(CHANNELS)
    partly_open = 0
    for (notice_id, channel), text in texts.items():
        notice = notices[notice_id]
        row = rows[notice["sales_invoice_id"]]
        document = pdf_figures((tmp_path / "documents" / row["storage_key"]).read_bytes())
        assert document["number"] == row["invoice_number"] and row["invoice_number"] in text
        language = notice["language"]
        title = TITLES[language].get(notice["level_name"], GENERIC_TITLE[language])
        assert text.startswith((f"{title}: ", f"Müller Werkzeugbau GmbH: {title}")), text
        figures = {
            "total": document["total"],
            "open": notice["amount_open"],
            "fees": notice["fees_total"],
            "interest": notice["interest_total"],
            "claimed": notice["total_claimed"],
        }
        # the notice's own figures add up
        assert figures["open"] + figures["fees"] + figures["interest"] == figures["claimed"]
        shown = assert_figures(text, language, figures, notice["currency"])
        if notice["fees_total"] or notice["interest_total"]:
            assert {"open", "claimed"} <= shown, (channel, text)
        if notice["amount_open"] != document["total"]:
            partly_open += 1
            assert "open" in shown, (channel, text)
    assert partly_open == 2 * 2 * len(CHANNELS)  # two partly credited invoices per language
