"""The demo's invoice mailbox (`make run`, issue 86): a real IMAP server on loopback (Dovecot) holding
mueller-werkzeugbau's invoice mailbox, and a supplier that e-mails it.

- `configure_demo_mailbox` (seed-demo): the organization's mailbox (127.0.0.1, the demo port, the
  password by its variable's name, INVOICE_PIPELINES_DEMO_IMAP_PASSWORD, which `make run` sets),
  and the supplier in its register, confirmed, with the address its invoices come from: so they
  are VALIDATED, not held for the sender rule (docs/intake.md, "E-mail intake").
- `serve`: starts the IMAP server, an SMTP server beside it that delivers what it receives into
  the mailbox (what a mail server's delivery agent does), and sends through it, once per demo
  data folder: the supplier's message with an XRechnung (CII XML) and a Factur-X PDF, the same
  message delivered a second time, and an out-of-office reply. `mailbox_sensor` takes them up
  within seconds: two uploads, VALIDATED; the second delivery recorded as a duplicate; the reply
  refused as an automatic message.
"""

from __future__ import annotations

import argparse
import signal
import smtplib
import threading
from datetime import date, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from pathlib import Path

from sqlalchemy import Engine, select

DEMO_MAIL_ORGANIZATION = "mueller-werkzeugbau"
IMAP_PORT = 1143
SMTP_PORT = 2525
PASSWORD_VARIABLE = "INVOICE_PIPELINES_DEMO_IMAP_PASSWORD"
PORT_VARIABLE = "INVOICE_PIPELINES_DEMO_IMAP_PORT"
MARKER = ".demo-mail-sent"
D = Decimal


def mail_supplier():
    from invoice_pipelines_devtools.demo.invoices import Company, german_iban, german_vat_id

    return Company(
        name="Papierhaus Lindner GmbH",
        street="Friedrichstraße 88",
        postcode="40217",
        city="Düsseldorf",
        vat_id=german_vat_id("52718364"),
        iban=german_iban("30050110", "1007265340"),
        email="rechnung@papierhaus-lindner.example",
        contact_name="Jonas Lindner",
        contact_phone="+49 211 5550188",
    )


def demo_mail_invoices(today: date) -> list[tuple[str, bytes]]:
    """(file name, bytes) of the supplier's two invoices: an XRechnung CII and a Factur-X PDF."""
    from invoice_pipelines.documents.domain.render import render_pdf
    from invoice_pipelines.einvoice.cii import EN16931_GUIDELINE, XRECHNUNG_GUIDELINE, write_cii
    from invoice_pipelines_devtools.demo.invoices import (
        DEMO_BUYER,
        LineItem,
        document_extras,
        invoice_from_lines,
    )

    seller = mail_supplier()
    issued = today  # in the running month: the demo's closed month is exported as it was
    files = []
    for number, guideline, lines in (
        ("PL-2026-1041", XRECHNUNG_GUIDELINE, [LineItem("Kopierpapier A4, 500 Blatt", D(20), D("4.85"))]),
        ("PL-2026-1042", EN16931_GUIDELINE, [LineItem("Ordner, breit", D(12), D("2.40"))]),
    ):  # fmt: skip
        invoice = invoice_from_lines(
            number=number, issue_date=issued, due_date=issued + timedelta(days=30),
            seller=seller, buyer=DEMO_BUYER, lines=lines, guideline_id=guideline,
        )  # fmt: skip
        extras = document_extras(
            seller, DEMO_BUYER, buyer_reference=f"MWB-{today:%Y}-0815",
            payment_terms="Zahlbar innerhalb von 30 Tagen ohne Abzug.",
            delivery_date=issued - timedelta(days=1),
        )  # fmt: skip
        xml = write_cii(invoice, guideline_id=guideline, extra=extras)
        if guideline == XRECHNUNG_GUIDELINE:
            files.append((f"{number}.xml", xml))
        else:
            files.append((f"{number}.pdf", render_pdf(invoice, xml=xml)))
    return files


def demo_emails(today: date) -> list[bytes]:
    """The messages the demo sends: the invoices, the same message again, an automatic reply."""
    seller = mail_supplier()
    invoices = EmailMessage()
    invoices["From"] = f"{seller.name} <{seller.email}>"
    invoices["To"] = "rechnungseingang@mueller-werkzeugbau.de"
    invoices["Subject"] = "Rechnungen PL-2026-1041 und PL-2026-1042"
    invoices["Message-ID"] = f"<rechnungen-{today:%Y%m%d}@papierhaus-lindner.example>"
    invoices["Authentication-Results"] = (
        "mx.mueller-werkzeugbau.de; spf=pass smtp.mailfrom=papierhaus-lindner.example; dkim=pass"
    )
    invoices.set_content("Sehr geehrte Damen und Herren,\n\nanbei unsere Rechnungen.\n")
    for name, data in demo_mail_invoices(today):
        subtype = "pdf" if name.endswith(".pdf") else "xml"
        invoices.add_attachment(data, maintype="application", subtype=subtype, filename=name)
    reply = EmailMessage()
    reply["From"] = "buchhaltung@nordhafen-logistik.example"
    reply["To"] = "rechnungseingang@mueller-werkzeugbau.de"
    reply["Subject"] = "Abwesenheitsnotiz: Ihre Anfrage"
    reply["Auto-Submitted"] = "auto-replied"
    reply.set_content("Ich bin bis Montag nicht im Büro.")
    # CRLF line ends, as SMTP carries them (smtplib sends bytes as they are)
    return [m.as_bytes(policy=SMTP_POLICY) for m in (invoices, invoices, reply)]


def configure_demo_mailbox(
    engine: Engine, system: Engine, port: int | None = None, slug: str = DEMO_MAIL_ORGANIZATION
) -> bool:
    """The demo organization's mailbox and the mailing supplier in its register (each once);
    whether anything was added. `port`: INVOICE_PIPELINES_DEMO_IMAP_PORT, or 1143."""
    import os

    port = port or int(os.environ.get(PORT_VARIABLE) or IMAP_PORT)
    from invoice_pipelines.db.tables import organizations
    from invoice_pipelines.db.tenancy import (
        find_organization,
        system_transaction,
        tenant_transaction,
    )
    from invoice_pipelines.intake.domain.mailbox_config import checked, mailbox_of, set_mailbox
    from invoice_pipelines.supplier_register import add_supplier, load_register
    from invoice_pipelines_devtools.standins.imap import USER

    with system_transaction(system) as conn:
        found = conn.execute(
            select(organizations.c.id).where(organizations.c.slug == slug)
        ).scalar()
    if found is None:
        return False
    org = find_organization(system, slug)
    added = False
    if mailbox_of(engine, org) is None:
        values = checked(
            host="127.0.0.1", port=port, tls="none", username=USER,
            secret_name=PASSWORD_VARIABLE, folder="INBOX", processed_folder="Verarbeitet",
            processed_flag=None, address=None,
        )  # fmt: skip
        set_mailbox(engine, org, values)
        added = True
    seller = mail_supplier()
    with tenant_transaction(engine, org.id, write=True) as conn:
        if not any(s.vat_id == seller.vat_id for s in load_register(conn, org.id).suppliers):
            add_supplier(
                conn, org.id, name=seller.name, vat_id=seller.vat_id,
                ibans=[(seller.iban, None)], notice_email=seller.email, changed_by="seed-demo",
                reason="the demo's supplier that sends its invoices by e-mail",
            )  # fmt: skip
            added = True
    return added


def delivering_smtp(imap, port: int):
    """An SMTP server on loopback that puts each message it accepts into the IMAP INBOX."""
    from aiosmtpd.controller import Controller

    class Deliver:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802
            imap.deliver(envelope.original_content or envelope.content)
            return "250 delivered to the invoice mailbox"

    controller = Controller(Deliver(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def serve(port: int, smtp_port: int, data_dir: Path, password: str) -> None:
    from invoice_pipelines_devtools.standins.imap import USER, start_imap_server

    imap = start_imap_server(USER, password, port=port)
    smtp = delivering_smtp(imap, smtp_port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    try:
        marker = data_dir / MARKER
        if not marker.exists():
            with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as client:
                for raw in demo_emails(date.today()):
                    client.sendmail(
                        "rechnung@papierhaus-lindner.example",
                        ["rechnungseingang@mueller-werkzeugbau.de"],
                        raw,
                    )
            data_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text("sent\n")
        print(f"demo mailbox: IMAP 127.0.0.1:{port}, its SMTP 127.0.0.1:{smtp_port}", flush=True)
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        smtp.stop()
        imap.stop()


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m invoice_pipelines_devtools.demo.mailbox")
    parser.add_argument("--port", type=int, default=IMAP_PORT)
    parser.add_argument("--smtp-port", type=int, default=SMTP_PORT)
    parser.add_argument("--data-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_VARIABLE) or "local-imap-password"
    serve(args.port, args.smtp_port, args.data_dir, password)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
