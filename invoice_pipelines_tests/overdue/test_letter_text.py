"""What a customer's name holds reaches the letter as visible text in its own column: a tab never
moves text into the right-hand column, a bidi override is not drawn, a character the font has no
glyph for is a "?", and the customer's notice goes out with its letter."""

from __future__ import annotations

import io
from datetime import date

import pypdf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.documents.domain.letters import PdfaLetters
from invoice_pipelines.overdue.domain.letter import write_letters
from invoice_pipelines.overdue.domain.letter_text import letter_text
from invoice_pipelines.overdue.domain.notice_sending import send_notices
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines.resources.messaging.letters import Letter
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.overdue.helpers import customer, invoice, notices
from invoice_pipelines_tests.overdue.test_letters import _org, _text

HOSTILE = "株式会社 Kunde\tGmbH \u202eTRL\u202c 😀 Ltd\x1b[31m\r\nZeile"


def test_a_hostile_name_is_set_as_visible_text_and_its_notice_goes_out(db, tmp_path):
    org = _org(db)
    hostile = customer(
        db, org, email="einkauf@kunde.example", name=HOSTILE, street="Markt\tplatz 3\u2067"
    )
    plain = customer(db, org, email="buchhaltung@kunde.example", name="Kunde Hoffmann KG")
    for buyer in (hostile, plain):
        invoice(db, org, buyer, date(2026, 11, 1))
    run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(2026, 11, 3))
    store = LocalFiles(str(tmp_path))

    letters = write_letters(
        db.engine, PdfaLetters(), store, find_organization(db.engine, org["slug"])
    )

    assert letters.failed == {} and len(letters.written) == 2
    by_customer = {n["customer_id"]: n for n in notices(db, org)}
    text = _text(store.read(by_customer[hostile]["letter_key"]), tmp_path)
    lines = [line.strip() for line in text.splitlines()]
    # one line, in the left column, in the order it is stored; what the font lacks is a "?"
    assert "???? Kunde GmbH TRL ? Ltd [31m Zeile" in lines
    assert "Marktplatz 3" not in lines and "Markt platz 3" in lines
    assert "\u202e" not in text and "\u2067" not in text and "\x1b" not in text
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="mahnung@mueller.example")
        summary = send_notices(db.engine, mailer, store, find_organization(db.engine, org["slug"]))
        assert sorted(m["To"] for m in sink.mailbox.messages) == [
            "buchhaltung@kunde.example",
            "einkauf@kunde.example",
        ]
    assert summary.sent == 2 and summary.failed == {}


def test_a_name_too_long_for_the_line_is_cut_not_refused():
    letter = Letter(
        author="Müller Werkzeugbau GmbH",
        title="1. Mahnung",
        head=("Kunde " * 200, "\tDatum: 03.11.2026"),
        body=("Text",),
    )
    written = PdfaLetters().write(letter)
    first = pypdf.PdfReader(io.BytesIO(written.pdf)).pages[0].extract_text().splitlines()[0]
    assert first.startswith("Kunde Kunde") and first.endswith("…")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.text(alphabet=st.characters(categories=("L", "N", "P", "S", "Z", "Cc", "Cf"))))
def test_letter_text_is_one_line_of_visible_text(value):
    shown = letter_text(value)
    assert "\t" not in shown and "\n" not in shown and "  " not in shown
    assert shown == shown.strip()
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in shown)
    assert letter_text(shown) == shown
