"""Where a rejection notice goes, how often, and what it may say (issue 46), through the real
intake run, the production mail client and the SMTP stand-in on 127.0.0.1; PostgreSQL and SQLite.

A notice goes only to the notice address the supplier register holds for the supplier (a person
set it) or to the upload's sender, never to what the rejected document claims;
only a plain mailbox@domain is an address; one notice a day per address, listing the day's
rejected documents; what a document says is shown as bounded plain text, never as a link."""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from sqlalchemy import insert, select, update

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoices, supplier_notices, uploads
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.notice_states import rejected_documents
from invoice_pipelines.intake.domain.notices import mailbox, send_supplier_notices
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.resources.messaging.smtp import Smtp
from invoice_pipelines.supplier_register import Change, change_supplier, supplier_rows
from invoice_pipelines_devtools.standins.smtp import SmtpSink
from invoice_pipelines_tests.intake.test_bad_input import own_invoice
from invoice_pipelines_tests.intake.test_review import InProcess, broken_totals, run_intake
from invoice_pipelines_tests.intake.test_review_visibility import _register
from invoice_pipelines_tests.intake.test_supplier_register import confirm

SELLER_ADDRESS = (
    b"<ram:PostalTradeAddress><ram:CountryID>DE</ram:CountryID></ram:PostalTradeAddress>"
)
KNOWN = "rechnung@seller.example"


def document(
    number: str,
    *,
    email: str | None = None,
    rejected: bool = True,
    vat_id: str | None = None,
    seller: str | None = None,
) -> bytes:
    """Our CII test invoice of 'Own Test Seller GmbH' (DE999999999); `rejected`: its totals do
    not add up (BR-CO-15, rejected by the default policy); `email`: the seller e-mail it names."""
    data = broken_totals(escape(number)) if rejected else own_invoice(escape(number))
    if email is not None:
        data = data.replace(
            SELLER_ADDRESS,
            SELLER_ADDRESS + b"<ram:URIUniversalCommunication>"
            b'<ram:URIID schemeID="EM">' + escape(email).encode() + b"</ram:URIID>"
            b"</ram:URIUniversalCommunication>",
            1,
        )
    if vat_id is not None:
        data = data.replace(b">DE999999999<", f">{vat_id}<".encode())
    if seller is not None:
        data = data.replace(b"Own Test Seller GmbH", escape(seller).encode())
    return data


def known_supplier(db, tmp_path: Path, org) -> None:
    """An earlier invoice of the seller, accepted by the rules, registered the supplier (the
    first-invoice policy); a person gave the register its notice address. The address the
    accepted invoice named is not one: only what a person confirmed is."""
    rows = run_intake(
        db,
        tmp_path / "accepted",
        org,
        {"ok.xml": document("OK-1", email="from-the-document@seller.example", rejected=False)},
    )
    assert rows["ok.xml"]["status"] == "VALIDATED"
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        assert supplier["notice_email"] is None
        change_supplier(
            conn,
            org["id"],
            supplier["id"],
            Change(notice_email=KNOWN),
            changed_by="Anna Buchhaltung",
            reason="the supplier's accounts department, confirmed by phone",
        )


def send(db, org) -> tuple:
    with SmtpSink() as sink:
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        summary = send_supplier_notices(db.engine, mailer, org["id"])
        return summary, sink.mailbox.messages, list(sink.mailbox.raw)


def notices(db, org) -> dict[int, dict]:
    n = supplier_notices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return {
            row.incoming_invoice_id: row._asdict()
            for row in conn.execute(
                select(n.id, n.incoming_invoice_id, n.recipient, n.status, n.error, n.folded_into)
                .where(n.organization_id == org["id"])
                .order_by(n.id)
            )
        }


def test_a_notice_goes_to_the_address_known_for_the_supplier_not_to_the_documents_own(
    db, tmp_path, monkeypatch, capsys
) -> None:
    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    rows = run_intake(
        db,
        tmp_path / "rejected",
        org,
        {
            # the seller's VAT id, someone else's address
            "claims.xml": document("N-1", email="attacker@evil.example"),
            # a seller the organization never accepted an invoice of
            "other.xml": document(
                "N-2", email="rechnung@other.example", vat_id="DE811569869", seller="Other GmbH"
            ),
        },
    )
    assert {r["status"] for name, r in rows.items() if name != "ok.xml"} == {"FAILED"}
    recorded = notices(db, org)
    claims, other = recorded[rows["claims.xml"]["id"]], recorded[rows["other.xml"]["id"]]
    assert (claims["recipient"], claims["status"]) == (KNOWN, "pending")
    assert (other["recipient"], other["status"]) == (None, "failed")
    assert other["error"].startswith("no address known for this supplier")

    summary, messages, raw = send(db, org)
    (message,) = messages
    assert message["To"] == KNOWN and len(summary.sent) == 1
    assert b"attacker" not in raw[0] and b"other.example" not in raw[0]
    assert "N-1" in message.get_body(("plain",)).get_content()

    # where a person looks: incoming list (text and JSON), show, the rejected documents' table
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    assert main(["incoming", "list", "--org", org["slug"], "--status", "FAILED"]) == 0
    out = capsys.readouterr().out
    assert f"notice to {KNOWN}: sent" in out
    assert "notice to (no address): failed (no address known for this supplier" in out
    assert (
        main(["incoming", "show", "--org", org["slug"], "--id", str(rows["other.xml"]["id"])]) == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["notice"]["error"].startswith("no address known for this supplier")
    with tenant_transaction(db.engine, org["id"]) as conn:
        counts, listed = rejected_documents(conn, org["id"])
    assert counts == {"sent": 1, "failed": 1}
    assert {(r.invoice_number, r.status) for r in listed} == {("N-1", "sent"), ("N-2", "failed")}


def test_a_notice_the_server_closed_the_connection_on_waits_for_the_next_run(db, tmp_path):
    """The mail server drops the connection at the notice's MAIL (a restart, an idle timeout):
    nothing of it left, so it is pending again with the reason, not unknown, and the next run
    sends it once."""
    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    rows = run_intake(db, tmp_path / "rejected", org, {"r.xml": document("D-1")})
    notice_id = notices(db, org)[rows["r.xml"]["id"]]["id"]
    with SmtpSink() as sink:
        sink.mailbox.drops = 1
        mailer = Smtp(port=sink.port, sender="eingang@buyer.example")
        first = send_supplier_notices(db.engine, mailer, org["id"])
        waiting = notices(db, org)[rows["r.xml"]["id"]]
        second = send_supplier_notices(db.engine, mailer, org["id"])
        arrived = [m["To"] for m in sink.mailbox.messages]
    assert first.sent == [] and first.unknown == [] and list(first.failed) == [notice_id]
    assert waiting["status"] == "pending"
    assert "closed the connection before the message was handed over" in waiting["error"]
    assert second.sent == [notice_id] and arrived == [KNOWN]
    assert notices(db, org)[rows["r.xml"]["id"]]["status"] == "sent"


def test_only_a_plain_mailbox_is_an_address(db, tmp_path) -> None:
    """IP literals, `%` and `!` relays, quoted local parts, routes and local-only names are no
    address, whether an upload's sender or an accepted invoice names them; a plain one is."""
    hostile = [
        "postmaster@[127.0.0.1]",
        "a%b@relay",
        "a%b@relay.example",
        "relay!user@seller.example",
        '"a b"@seller.example',
        "@relay.example:user@seller.example",
        "user@127.0.0.1",
        "user@localhost",
        "user@seller.example, other@evil.example",
    ]
    assert [mailbox(a) for a in hostile] == [None] * len(hostile)
    assert mailbox(" Buchhaltung@Lieferant.Example ") == "buchhaltung@lieferant.example"

    org = db.new_organization()
    # an accepted invoice that names an IP literal makes no known address for its seller
    rows = run_intake(
        db,
        tmp_path / "accepted",
        org,
        {"ok.xml": document("OK-1", email="postmaster@[127.0.0.1]", rejected=False)},
    )
    assert rows["ok.xml"]["status"] == "VALIDATED"
    store = LocalUploads(str(tmp_path / "mailed"))
    senders = {f"s{i}.xml": sender for i, sender in enumerate([*hostile, "ap@seller.example"])}
    ids = _register(db, store, org, {name: document(f"M-{name}") for name in senders})
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        for doc_id in ids:  # as an upload channel that knows its sender records it (a mailbox)
            upload_id, name = conn.execute(
                select(incoming_invoices.c.upload_id, uploads.c.filename)
                .join(uploads, uploads.c.id == incoming_invoices.c.upload_id)
                .where(incoming_invoices.c.id == doc_id)
            ).one()
            conn.execute(
                update(uploads).where(uploads.c.id == upload_id).values(created_by=senders[name])
            )
    organization = find_organization(db.engine, org["slug"])
    process_documents(db.engine, store, organization, ids, parser=InProcess(), ocr=None)

    recorded = [notices(db, org)[doc_id] for doc_id in ids]
    assert [n["recipient"] for n in recorded].count(None) == len(hostile)
    assert {n["recipient"] for n in recorded} == {None, "ap@seller.example"}
    summary, messages, _ = send(db, org)
    assert [m["To"] for m in messages] == ["ap@seller.example"]
    assert len(summary.sent) == 1 and summary.failed == {}


def test_one_notice_a_day_per_address_lists_the_days_rejected_documents(db, tmp_path) -> None:
    """20 slightly changed uploads: one notice with the count and a bounded list; one more the
    same day before it left is listed in it too; one after it left is recorded, not sent again."""
    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    first = run_intake(
        db, tmp_path / "r1", org, {f"f{i}.xml": document(f"F-{i:02d}") for i in range(20)}
    )
    later = run_intake(db, tmp_path / "r2", org, {"late.xml": document("F-LATE")})
    recorded = notices(db, org)
    states = [recorded[r["id"]]["status"] for name, r in later.items() if name != "ok.xml"]
    assert sorted(states) == ["folded"] * 20 + ["pending"]
    [carrier] = [n for n in recorded.values() if n["status"] == "pending"]
    assert {n["folded_into"] for n in recorded.values() if n["status"] == "folded"} == {
        carrier["id"]
    }

    summary, messages, raw = send(db, org)
    (message,) = messages
    assert message["To"] == KNOWN and len(summary.sent) == 1
    assert message["Subject"] == f"Not accepted: 21 documents to {org['name']}"
    body = message.get_body(("plain",)).get_content()
    assert "received 21 documents" in body and "and 11 more documents, not listed" in body
    assert body.count("\n- invoice F-") == 10 and len(raw[0]) < 20_000

    after = run_intake(db, tmp_path / "r3", org, {"after.xml": document("F-AFTER")})
    late = notices(db, org)[after["after.xml"]["id"]]
    assert (late["status"], late["folded_into"]) == ("suppressed", carrier["id"])
    summary, messages, _ = send(db, org)
    assert messages == [] and summary.sent == []
    with tenant_transaction(db.engine, org["id"]) as conn:
        counts, listed = rejected_documents(conn, org["id"])
    assert counts == {"sent": 1, "folded": 20, "suppressed": 1}
    why = {r.invoice_number: r.error for r in listed}
    assert "had left already; not sent again" in why["F-AFTER"]
    folded = [r.error for r in listed if r.status == "folded"]
    assert len(folded) == 20 and all(
        w.startswith("listed in the day's notice to this address (document") for w in folded
    )
    assert first  # the 20 were read in one run


def test_what_a_document_says_is_bounded_plain_text_never_a_link(db, tmp_path) -> None:
    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    link = '<a href="https://evil.example/pay">pay here</a> www.evil.example '
    number = link + "\u202e" + "9" * 100_000
    seller = "Own Test Seller GmbH"  # the known seller; its name in the document is shown
    run_intake(
        db,
        tmp_path / "r",
        org,
        {"www.evil.example.xml": document(number, seller=seller + " http://evil.example\u200b")},
    )
    summary, messages, raw = send(db, org)
    (message,) = messages
    assert len(summary.sent) == 1
    body = message.get_body(("plain",)).get_content()
    # one text/plain part, no HTML
    assert [p.get_content_type() for p in message.walk() if not p.is_multipart()] == ["text/plain"]
    assert len(raw[0]) < 8_000 and len(str(message["Subject"])) <= 120
    for text in (body, str(message["Subject"])):
        assert "http://" not in text and "https://" not in text and "www." not in text
        assert "evil.example" not in text and "\u202e" not in text and "\u200b" not in text
    assert "hxxps[:]//evil[.]example/pay" in body and "www[.]evil[.]example.xml" in body
    assert "9" * 100 not in body and "\u2026" in body
    assert "seller named in it: Own Test Seller GmbH hxxp[:]//evil[.]example" in body


def test_a_notice_recorded_before_addresses_were_checked_is_not_sent(db, tmp_path) -> None:
    """A pending notice from before migration 0026 (no day) took its address from the rejected
    document: the sender refuses it, saying why."""
    org = db.new_organization()
    rows = run_intake(db, tmp_path, org, {"old.xml": document("OLD-1")})
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        conn.execute(
            supplier_notices.delete().where(
                supplier_notices.c.incoming_invoice_id == rows["old.xml"]["id"]
            )
        )
        conn.execute(
            insert(supplier_notices).values(
                organization_id=org["id"],
                incoming_invoice_id=rows["old.xml"]["id"],
                recipient="attacker@evil.example",
                subject="Not accepted: invoice OLD-1",
                body="- invoice OLD-1",
            )
        )
    summary, messages, _ = send(db, org)
    assert messages == [] and summary.sent == []
    (reason,) = summary.failed.values()
    assert "its address came from the rejected document itself" in reason


def test_an_accepted_invoice_with_another_address_does_not_redirect_the_notices(
    db, tmp_path
) -> None:
    """Before the register, the latest accepted invoice of a seller named where its notices go:
    one invoice stating a known supplier's VAT id and another address redirected them. Now such
    an invoice waits for a person (IP-SUP-05), and even confirmed it changes no address."""
    org = db.new_organization()
    known_supplier(db, tmp_path, org)
    rows = run_intake(
        db,
        tmp_path / "redirect",
        org,
        {"redirect.xml": document("R-1", email="attacker@evil.example", rejected=False)},
    )
    held = rows["redirect.xml"]
    assert held["status"] == "NEEDS_REVIEW"
    result = confirm(db, held)
    assert result.status == "VALIDATED"
    rows = run_intake(db, tmp_path / "later", org, {"bad.xml": document("R-2")})
    assert rows["bad.xml"]["status"] == "FAILED"
    notice = notices(db, org)[rows["bad.xml"]["id"]]
    assert notice["recipient"] == KNOWN
