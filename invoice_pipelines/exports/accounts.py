"""DATEV partner accounts: a creditor account per supplier, a debtor account per customer.

A partner gets its account the first time an export books it and keeps it in every later export
(the advisor's ledger is keyed on it). New partners of one export are numbered in the order of
their keys after the highest account already given in the range, with one INSERT for all of them.
The caller holds the organization's export lock, so two exports never hand out the same number.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import partner_accounts
from invoice_pipelines.exports.bookings import InvoiceRecord
from invoice_pipelines.exports.export_settings import ExportSettings


class AccountRangeExhausted(RuntimeError):
    pass


@dataclass(frozen=True)
class PartnerAccount:
    key: str
    account: int
    name: str
    vat_id: str | None
    country: str | None


def kind_of(direction: str) -> str:
    return "creditor" if direction == "incoming" else "debtor"


def assign_accounts(
    conn: Connection,
    settings: ExportSettings,
    direction: str,
    invoices: Iterable[InvoiceRecord],
) -> dict[str, PartnerAccount]:
    """partner key -> account for every partner of `invoices`; new partners are inserted."""
    kind = kind_of(direction)
    low, high = settings.creditor_range if kind == "creditor" else settings.debtor_range
    wanted: dict[str, InvoiceRecord] = {}
    for invoice in invoices:
        key = invoice.partner_key
        if key is not None:
            wanted.setdefault(key, invoice)
    t = partner_accounts.c
    known: dict[str, PartnerAccount] = {}
    highest = low - 1
    for key, account, name, vat_id, country in conn.execute(
        select(t.partner_key, t.account_number, t.name, t.vat_id, t.country).where(
            t.organization_id == settings.organization_id, t.kind == kind
        )
    ):
        known[key] = PartnerAccount(key, account, name, vat_id, country)
        if low <= account <= high:
            highest = max(highest, account)
    new = sorted(k for k in wanted if k not in known)
    if not new:
        return known
    if highest + len(new) > high:
        raise AccountRangeExhausted(
            f"the {kind} range {low}-{high} has no room for {len(new)} more accounts"
        )
    rows = []
    for offset, key in enumerate(new, start=1):
        invoice = wanted[key]
        account = PartnerAccount(
            key,
            highest + offset,
            ((invoice.partner_name or key.partition(":")[2]) or key)[:255],
            invoice.partner_vat_id,
            invoice.partner_country or _country(invoice.partner_vat_id),
        )
        known[key] = account
        rows.append(
            {
                "organization_id": settings.organization_id,
                "kind": kind,
                "partner_key": key[:255],
                "account_number": account.account,
                "name": account.name,
                "vat_id": (account.vat_id or None) and account.vat_id[:64],
                "country": account.country,
            }
        )
    conn.execute(insert(partner_accounts), rows)
    return known


def _country(vat_id: str | None) -> str | None:
    prefix = (vat_id or "").strip().upper()[:2]
    return prefix if len(prefix) == 2 and prefix.isalpha() else None
