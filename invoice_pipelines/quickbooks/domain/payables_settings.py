"""An organization's settings for its supplier invoices in QuickBooks: whether the bill push may
create vendors, the expense account per supplier (and the default), the exchange rates of foreign
currencies. Plain database reads and writes: `qbo-payables` (cli.py) sets them, the vendors sync
and the bill push (sync/vendors.py, sync/bills.py) read them.

- `create_vendors` (the connection's settings, default off): a supplier without a QBO vendor gets
  one created by the push; off, its bills wait with a finding that names the vendor to create.
- `qbo_expense_accounts`: the QBO account (its Id) a supplier's bill lines are booked on, keyed
  `vendor:<QBO vendor id>`, `vat:<VAT id>` or `name:<normalized name>`; the key '' is the
  organization's default. The most specific key wins, in that order.
- `exchange_rates` (the connection's settings): home-currency units per unit of a foreign
  currency, `{"EUR": "1.0850", "2026-11": {"EUR": "1.0790"}}`; the month of the bill's date first.
  QBO needs a rate on a bill in another currency than the company's (the simulator refuses one
  without); one we do not have keeps the bill waiting with a finding.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import Engine, delete, select, update

from invoice_pipelines.core.suppliers import vat_id_key
from invoice_pipelines.db.audit_log import checked_who_and_why, record_policy_change
from invoice_pipelines.db.inserts import insert_into
from invoice_pipelines.db.tables import qbo_connections, qbo_expense_accounts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.quickbooks.domain.errors import NotConnected

CREATE_VENDORS = "create_vendors"
EXCHANGE_RATES = "exchange_rates"
DEFAULT_KEY = ""
# a VAT id as stored and compared: without blanks, dots, dashes or slashes, upper case (the
# supplier register's key, so a bill's supplier and the register's speak of one VAT id)
vat_key = vat_id_key


def name_key(value: object) -> str:
    """A name as the vendor match compares it: compatibility forms folded (NFKC), case-folded,
    every character that is not a letter or digit removed ("ACME, Inc." is "acmeinc")."""
    folded = unicodedata.normalize("NFKC", str(value or "")).casefold()
    return "".join(c for c in folded if unicodedata.category(c)[0] in "LN")[:255]


def supplier_keys(vendor_qbo_id: str | None, vat_id: str | None, name: str | None) -> list[str]:
    """The expense-account keys of a supplier, most specific first, ending with the default."""
    keys = []
    if vendor_qbo_id:
        keys.append(f"vendor:{vendor_qbo_id}")
    if vat_key(vat_id):
        keys.append(f"vat:{vat_key(vat_id)}")
    if name_key(name):
        keys.append(f"name:{name_key(name)}")
    keys.append(DEFAULT_KEY)
    return keys


@dataclass
class PayablesSettings:
    create_vendors: bool = False
    tax_codes: dict[str, str] = field(default_factory=dict)
    exchange_rates: dict = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # supplier key -> QBO account id

    def account_for(self, vendor_qbo_id: str | None, vat_id: str | None, name: str | None):
        """The QBO account id a supplier's lines go to, or None (the bill waits)."""
        for key in supplier_keys(vendor_qbo_id, vat_id, name):
            if key in self.accounts:
                return self.accounts[key]
        return None

    def rate_for(self, currency: str, day: date | None) -> Decimal | None:
        """Home-currency units per unit of `currency` for a bill dated `day` (its month's rate,
        else the general one), or None."""
        rates = self.exchange_rates or {}
        monthly = rates.get(f"{day:%Y-%m}") if day else None
        for source in (monthly, rates):
            if isinstance(source, dict) and source.get(currency) not in (None, ""):
                try:
                    rate = Decimal(str(source[currency]))
                except InvalidOperation:
                    return None
                return rate if rate.is_finite() and rate > 0 else None
        return None


def load_settings(conn, organization_id: int, connection_settings: dict) -> PayablesSettings:
    accounts = dict(
        conn.execute(
            select(qbo_expense_accounts.c.supplier_key, qbo_expense_accounts.c.account_id).where(
                qbo_expense_accounts.c.organization_id == organization_id
            )
        ).all()
    )
    return PayablesSettings(
        create_vendors=connection_settings.get(CREATE_VENDORS) is True,
        tax_codes={str(k): str(v) for k, v in (connection_settings.get("tax_codes") or {}).items()},
        exchange_rates=dict(connection_settings.get(EXCHANGE_RATES) or {}),
        accounts=accounts,
    )


def _connection_settings(conn, organization_id: int) -> dict:
    row = conn.execute(
        select(qbo_connections.c.settings).where(
            qbo_connections.c.organization_id == organization_id
        )
    ).first()
    if row is None:
        raise NotConnected("the organization is not connected to QuickBooks Online")
    return dict(row.settings or {})


def read_settings(engine: Engine, organization_id: int) -> PayablesSettings:
    with tenant_transaction(engine, organization_id) as conn:
        return load_settings(conn, organization_id, _connection_settings(conn, organization_id))


def change_connection_settings(engine: Engine, organization_id: int, **changes) -> dict:
    """Set keys of the connection's settings (a None value removes the key); the new settings."""
    with tenant_transaction(engine, organization_id, write=True) as conn:
        settings = _connection_settings(conn, organization_id)
        for key, value in changes.items():
            if value is None:
                settings.pop(key, None)
            else:
                settings[key] = value
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == organization_id)
            .values(settings=settings)
        )
    return settings


def switch_create_vendors(
    engine: Engine, organization_id: int, on: bool, *, by: str | None, reason: str | None
) -> bool:
    """Switch whether the bill push creates QuickBooks vendors: a money-path policy (a bill may
    then reach a vendor no person made), so it names who and why (a ValueError, one sentence,
    without them) and is audited with the setting before and after in its transaction; the
    setting it has already records nothing. The setting now."""
    who, why = checked_who_and_why(by, reason, "create_vendors (qbo-payables --create-vendors)")
    with tenant_transaction(engine, organization_id, write=True) as conn:
        settings = _connection_settings(conn, organization_id)
        before = settings.get(CREATE_VENDORS) is True
        if before != on:
            settings[CREATE_VENDORS] = on
            conn.execute(
                update(qbo_connections)
                .where(qbo_connections.c.organization_id == organization_id)
                .values(settings=settings)
            )
            record_policy_change(
                conn, organization_id, CREATE_VENDORS, before, on, by=who, reason=why
            )
    return on


def set_exchange_rate(
    engine: Engine, organization_id: int, currency: str, rate: Decimal, month: str | None = None
) -> dict:
    """One rate (home-currency units per unit of `currency`), for `month` ("2026-11") or general."""
    if not (rate.is_finite() and rate > 0):
        raise ValueError(f"an exchange rate is a number above 0, not {rate}")
    with tenant_transaction(engine, organization_id) as conn:
        rates = dict(_connection_settings(conn, organization_id).get(EXCHANGE_RATES) or {})
    currency = currency.strip().upper()
    if month:
        rates[month] = {**dict(rates.get(month) or {}), currency: format(rate, "f")}
    else:
        rates[currency] = format(rate, "f")
    return change_connection_settings(engine, organization_id, **{EXCHANGE_RATES: rates})


def set_expense_account(
    engine: Engine,
    organization_id: int,
    account_id: str | None,
    supplier_key: str = DEFAULT_KEY,
    *,
    by: str | None = None,
) -> None:
    """The account of `supplier_key` (see `supplier_keys`; '' the default); None removes it."""
    table = qbo_expense_accounts
    with tenant_transaction(engine, organization_id, write=True) as conn:
        if account_id is None:
            conn.execute(
                delete(table).where(
                    table.c.organization_id == organization_id,
                    table.c.supplier_key == supplier_key,
                )
            )
            return
        conn.execute(
            insert_into(conn, table)
            .values(
                organization_id=organization_id,
                supplier_key=supplier_key,
                account_id=str(account_id),
                created_by=by,
                # to the microsecond: the bill sensor's run key moves with every change
                updated_at=utcnow(),
            )
            .on_conflict_do_update(
                index_elements=["organization_id", "supplier_key"],
                set_={"account_id": str(account_id), "created_by": by, "updated_at": utcnow()},
            )
        )
