"""DATEV partner accounts: a creditor account per supplier, a debtor account per customer.

A supplier whose DATEV creditor account a person set in the supplier register gets that account
(supplier_register.py); the others are numbered.

A partner gets its account the first time an export books it and keeps it in every later export
(the advisor's ledger is keyed on it). New partners of one export are numbered in the order of
their keys after the highest account already given in the range, with one INSERT for all of them.
The caller holds the organization's export lock, so two exports never hand out the same number;
should two writers meet all the same, the insert is race-free (`_insert_or_get`).

`assign_accounts` reads, numbers and writes on one connection. The export of a month of incoming
invoices on PostgreSQL numbers them from rows read beside it in its snapshot (`number_accounts`)
and writes them once its recording is done (`write_accounts`), in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from invoice_pipelines.db.tables import partner_accounts, suppliers
from invoice_pipelines.exports.domain.bookings import InvoiceRecord, partner_key
from invoice_pipelines.exports.domain.export_settings import ExportSettings

KEY_LENGTH = partner_accounts.c.partner_key.type.length  # 255


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
    known, new = number_accounts(
        settings,
        direction,
        invoices,
        conn.execute(given_query(settings.organization_id, kind)),
        lambda: conn.execute(registered_query(settings.organization_id)),
    )
    write_accounts(conn, new)
    return known


def given_query(organization_id: int, kind: str):
    """The accounts the organization's partners of `kind` have (rows for `number_accounts`)."""
    t = partner_accounts.c
    return select(t.partner_key, t.account_number, t.name, t.vat_id, t.country).where(
        t.organization_id == organization_id, t.kind == kind
    )


def number_accounts(
    settings: ExportSettings,
    direction: str,
    invoices: Iterable[InvoiceRecord],
    given: Iterable,
    registered: Callable[[], Iterable],
) -> tuple[dict[str, PartnerAccount], list[dict]]:
    """(partner key -> account for every partner of `invoices`, the rows of the new partners'
    accounts for `write_accounts`), from the accounts `given` already (rows of `given_query`)
    and, asked only when there are new creditors, the supplier register's (`registered()`: rows
    of `registered_query`). Reads nothing itself: the rows may come from any connection in the
    export's snapshot, and the new accounts be written later in the same transaction.

    A new partner is named as its first invoice of `invoices` names it; new partners are numbered
    in the order of their keys after the highest account already given in the range."""
    kind = kind_of(direction)
    low, high = settings.creditor_range if kind == "creditor" else settings.debtor_range
    wanted: dict[str, InvoiceRecord] = {}
    for invoice in invoices:
        key = invoice.partner_key
        if key is not None:
            wanted.setdefault(key, invoice)
    known: dict[str, PartnerAccount] = {}
    highest = low - 1
    for key, account, name, vat_id, country in given:
        known[key] = PartnerAccount(key, account, name, vat_id, country)
        if low <= account <= high:
            highest = max(highest, account)
    for key in wanted:
        # a key is stored cut to the column's length: a longer one (a supplier named with more
        # than 250 characters) is found again by its cut, or every later export of its months
        # would give it a new account on a key that is taken
        cut = key[:KEY_LENGTH]
        if key not in known and cut != key and cut in known:
            known[key] = known[cut]
    new = sorted(k for k in wanted if k not in known)
    if not new:
        return known, []
    found = _registered_accounts(registered()) if kind == "creditor" else {}
    given_numbers = {a.account for a in known.values()}
    numbers = _numbers(new, found, given_numbers, highest, high, f"the {kind} range {low}-{high}")
    rows = []
    for key in new:
        invoice = wanted[key]
        account = PartnerAccount(
            key,
            numbers[key],
            ((invoice.partner_name or key.partition(":")[2]) or key)[:255],
            invoice.partner_vat_id,
            invoice.partner_country or _country(invoice.partner_vat_id),
        )
        known[key] = account
        rows.append(
            {
                "organization_id": settings.organization_id,
                "kind": kind,
                "partner_key": key[:KEY_LENGTH],
                "account_number": account.account,
                "name": account.name,
                "vat_id": (account.vat_id or None) and account.vat_id[:64],
                "country": account.country,
            }
        )
    return known, rows


def write_accounts(conn: Connection, rows: list[dict]) -> None:
    """The new partners' accounts `number_accounts` gave, in one INSERT (`_insert_or_get`)."""
    if rows:
        _insert_or_get(conn, rows)


class PartnerAccountTaken(RuntimeError):
    """A new partner's key or account number is already given, in rows this export can see."""


def _insert_or_get(conn: Connection, rows: list[dict]) -> None:
    """Inserts the new partners' accounts, never with a UniqueViolation.

    One writer per organization holds the export lock, so nobody else gives accounts meanwhile.
    Should two writers still meet (two deployments on one database, a run that outlived its lock),
    the second one's conflicting rows are skipped: on PostgreSQL the export's REPEATABLE READ
    snapshot cannot see the rows the other one committed, so PostgreSQL ends the statement with a
    serialization failure (40001), and `run_export` exports the month again in a new snapshot,
    which then gets the accounts the other writer gave. A conflict with a row this snapshot sees
    cannot come from a concurrent writer: it is refused with the partner named."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = set(
        conn.execute(
            dialect.insert(partner_accounts)
            .on_conflict_do_nothing()
            .returning(partner_accounts.c.partner_key),
            rows,
        ).scalars()
    )
    skipped = [row for row in rows if row["partner_key"] not in inserted]
    if skipped:
        row = skipped[0]
        raise PartnerAccountTaken(
            f"the {row['kind']} account {row['account_number']} for {row['partner_key']!r} "
            "is already given to another partner"
        )


def registered_query(organization_id: int):
    """The supplier register's active suppliers with a DATEV creditor account a person set."""
    s = suppliers.c
    return select(s.vat_id, s.name, s.other_names, s.datev_creditor_account).where(
        s.organization_id == organization_id,
        s.datev_creditor_account.is_not(None),
        s.active.is_(True),
    )


def _registered_accounts(rows: Iterable) -> dict[str, int]:
    """The DATEV creditor accounts of `registered_query`'s rows, by partner key (the supplier's
    VAT id, else each of its names)."""
    found: dict[str, int] = {}
    for vat_id, name, other_names, account in rows:
        if vat_id:
            found[partner_key(None, vat_id, None)] = account
        else:
            for each in (name, *(other_names or ())):
                found[partner_key(None, None, each)] = account
    return found


def _numbers(
    new: list[str], registered: dict[str, int], given: set[int], highest: int, high: int, what: str
) -> dict[str, int]:
    """The account of each new partner: the register's where it sets one (and no partner has it
    already), else the next number of the range after `highest` that neither a partner nor the
    register holds."""
    numbers: dict[str, int] = {}
    used = set(given)
    taken = given | set(registered.values())
    for key in new:
        account = registered.get(key)
        if account is None:
            continue
        if account in used:
            raise AccountRangeExhausted(
                f"DATEV creditor account {account}, which the supplier register gives to "
                f"{key.partition(':')[2]}, is another partner's already: change it in the register"
            )
        numbers[key] = account
        used.add(account)
    following = highest
    for key in new:
        if key in numbers:
            continue
        following += 1
        while following in taken:
            following += 1
        if following > high:
            raise AccountRangeExhausted(f"{what} has no room for {len(new)} more accounts")
        numbers[key] = following
    return numbers


def _country(vat_id: str | None) -> str | None:
    prefix = (vat_id or "").strip().upper()[:2]
    return prefix if len(prefix) == 2 and prefix.isalpha() else None
