"""Who e-mailed a document: the message's From is a claim, compared with the supplier register
(issue 86), as a Peppol envelope's sender is (peppol_inbound.py).

The intake calls `mail_sender_doubts` in the transaction that records its outcomes, after the
register's comparison (supplier_checks.py) has found the document's seller. For each document
that came by e-mail (its original upload is in `mailbox_uploads`):

- the seller is a registered supplier with a notice address, and the From address is that
  address (compared without regard to case): nothing to say;
- the seller is registered with another address: IP-MAIL-02, the From address is not the
  supplier's;
- the register knows no address for the seller (or not the seller): IP-MAIL-01, the sender cannot
  be checked.

Each is a review finding of stage `mailbox`: the document waits for a person (NEEDS_REVIEW), not
VALIDATED, whatever else it proves. The message's Authentication-Results (SPF, DKIM, DMARC as the
receiving server saw them) are quoted in the finding for that person, never trusted alone: a pass
says the sending domain sent it, not that the domain is the supplier's.
"""

from __future__ import annotations

import dataclasses

from sqlalchemy import select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.rules import Finding
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tables import mailbox_messages, mailbox_uploads
from invoice_pipelines.einvoice.read import ParseOutcome

STAGE = "mailbox"
SENDER_UNKNOWN = "IP-MAIL-01"
SENDER_NOT_SUPPLIER = "IP-MAIL-02"


def mail_senders(conn: Connection, document_ids: list[int]) -> dict[int, tuple[str, str | None]]:
    """Document id -> (From address, Authentication-Results) of the message its original came in."""
    if not document_ids:
        return {}
    u, m = mailbox_uploads.c, mailbox_messages.c
    rows = conn.execute(
        select(u.incoming_invoice_id, m.from_address, m.authentication_results)
        .select_from(
            mailbox_uploads.join(
                mailbox_messages,
                (m.organization_id == u.organization_id) & (m.id == u.mailbox_message_id),
            )
        )
        .where(u.incoming_invoice_id.in_(document_ids), u.duplicate.is_(False))
        .order_by(u.id)
    ).all()
    found: dict[int, tuple[str, str | None]] = {}
    for row in rows:
        found.setdefault(
            row.incoming_invoice_id, (row.from_address or "", row.authentication_results)
        )
    return found


def _authentication(results: str | None) -> str:
    if not results:
        return " The message carries no Authentication-Results."
    return f" Authentication-Results (recorded, not proof): {terminal_text(results[:300])}."


def sender_finding(sender: str, supplier, results: str | None) -> Finding | None:
    """The finding on an e-mailed document's sender, or None when it is the registered address."""
    shown = terminal_text(sender or "(no From address)")
    address = getattr(supplier, "notice_email", None)
    if supplier is not None and address and sender and sender.casefold() == address.casefold():
        return None
    if supplier is not None and address:
        return Finding(
            SENDER_NOT_SUPPLIER,
            f"the e-mail came from {shown}, not from {terminal_text(address)}, the address the "
            f"register has for {supplier.described()}: confirm it only if that sender sends for "
            f"the supplier.{_authentication(results)}",
            "warning",
            STAGE,
        )
    whose = supplier.described() if supplier is not None else "the seller (not in the register)"
    return Finding(
        SENDER_UNKNOWN,
        f"the e-mail came from {shown}, and the register has no address for {whose} to compare "
        f"it with: confirm it only if that sender sends for the seller.{_authentication(results)}",
        "warning",
        STAGE,
    )


def mail_sender_doubts(
    conn: Connection, outcomes: dict[int, ParseOutcome], suppliers: dict
) -> dict[int, ParseOutcome]:
    """Each read document's outcome with its sender's finding among its review findings (module
    docstring); `suppliers`: what `check_suppliers` said of each. One query for the group."""
    read = sorted(doc_id for doc_id, outcome in outcomes.items() if outcome.invoice is not None)
    senders = mail_senders(conn, read)
    if not senders:
        return outcomes
    checked = dict(outcomes)
    for doc_id, (sender, results) in senders.items():
        check = suppliers.get(doc_id)
        supplier = check.comparison.supplier if check is not None else None
        finding = sender_finding(sender, supplier, results)
        outcome = checked[doc_id]
        if finding is not None and finding not in outcome.review:
            checked[doc_id] = dataclasses.replace(outcome, review=[*outcome.review, finding])
    return checked
