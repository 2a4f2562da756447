"""An organization's export settings: DATEV numbers, chart, accounts, tax keys, directions.

They live in the organization row (`datev_berater_nr`, `datev_mandant_nr`, `datev_chart`) and in
`organizations.settings["exports"]` (JSON), for example:

    {"directions": ["incoming", "sales"], "encoding": "cp1252", "account_length": 4,
     "fiscal_year_start_month": 1, "close_months": false, "initials": "",
     "expense_accounts": {"S:19": 3400, "S:7": 3300, "AE": 3200},
     "revenue_accounts": {"S:19": 8400}, "automatic_accounts": [3400, 3300, 8400],
     "tax_keys": {"incoming": {"AE": "94"}, "sales": {"S:19": "3"}},
     "partner_expense_accounts": {"vat:DE123456789": 4930},
     "cost_centers": {"kost1": "100", "partners": {"customer:K-1001": {"kost1": "200"}}},
     "exchange_rates": {"USD": "1.0850", "2026-11": {"USD": "1.0790"}},
     "bank_account": 1200, "discount_accounts": {"S:19": 8736, "S:7": 8731}}

Account mappings are keyed by VAT category and rate ("S:19", "S:7") or by category alone for
categories where the invoice shows no VAT ("AE" reverse charge, "K" intra-EU, "E" exempt, "Z"
zero rated, "G" export, "O" outside scope). The organization's keys are laid over the defaults of
its chart below. The defaults are a starting point for the tax advisor to confirm, not advice:
standard rates go to automatic accounts (DATEV computes the VAT, so no BU key); reverse charge
and intra-EU acquisitions go to a non-automatic goods account with the key for the self-assessed
VAT (94/91 for §13b, 19/18 for intra-EU acquisitions at 19 %/7 %).

Sales payments are booked on `bank_account` (a Finanzkonto; SKR03 1200, SKR04 1800 by default)
against the customer's debtor account, a discount taken with one to the `discount_accounts` entry
of its VAT key ("Gewährte Skonti": SKR03 8736 at 19 %, 8731 at 7 %; SKR04 4736, 4731; see
docs/exports.md for all defaults and what is not verified about them).

Bad settings raise ExportSettingsError with one sentence, before anything is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from invoice_pipelines.core.datev import CP1252, UTF8_BOM, DatevFieldError, Header
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.readiness import DATEV_NUMBERS, gaps

DIRECTIONS = ("incoming", "sales")

# Chart defaults. Keys: "<category>:<rate>" or "<category>".
CHART_DEFAULTS: dict[str, dict[str, Any]] = {
    "SKR03": {
        "expense_accounts": {
            "S:19": 3400,  # Wareneingang 19 % Vorsteuer (automatic)
            "S:7": 3300,  # Wareneingang 7 % Vorsteuer (automatic)
            "AE": 3200,  # Wareneingang, with the §13b key
            "K": 3200,  # Wareneingang, with the intra-EU acquisition key
            "E": 3200,
            "Z": 3200,
            "O": 3200,
            "G": 3200,
        },
        "revenue_accounts": {
            "S:19": 8400,  # Erlöse 19 % USt (automatic)
            "S:7": 8300,  # Erlöse 7 % USt (automatic)
            "K": 8125,  # steuerfreie innergemeinschaftliche Lieferungen (automatic)
            "AE": 8337,  # Erlöse aus Leistungen nach §13b UStG (automatic)
            "E": 8100,  # steuerfreie Umsätze (automatic)
            "Z": 8100,
            "G": 8120,  # steuerfreie Umsätze §4 Nr. 1a (exports, automatic)
            "O": 8100,
        },
        "automatic_accounts": [3400, 3300, 8400, 8300, 8125, 8337, 8100, 8120],
        # payments (exports/domain/payments.py): the bank account money comes in on, and the accounts
        # "Gewährte Skonti" a customer's discount goes to, by the VAT of the invoice
        "bank_account": 1200,  # Bank
        "discount_accounts": {
            "S:19": 8736,  # Gewährte Skonti 19 % USt
            "S:7": 8731,  # Gewährte Skonti 7 % USt
            "AE": 8741,  # Gewährte Skonti, Leistungen nach § 13b UStG
            "K": 8743,  # Gewährte Skonti, steuerfreie innergemeinschaftliche Lieferungen
            "E": 8730,  # Gewährte Skonti
            "Z": 8730,
            "G": 8730,
            "O": 8730,
        },
    },
    "SKR04": {
        "expense_accounts": {
            "S:19": 5400,
            "S:7": 5300,
            "AE": 5200,
            "K": 5200,
            "E": 5200,
            "Z": 5200,
            "O": 5200,
            "G": 5200,
        },
        "revenue_accounts": {
            "S:19": 4400,
            "S:7": 4300,
            "K": 4125,
            "AE": 4337,
            "E": 4100,
            "Z": 4100,
            "G": 4120,
            "O": 4100,
        },
        "automatic_accounts": [5400, 5300, 4400, 4300, 4125, 4337, 4100, 4120],
        "bank_account": 1800,
        "discount_accounts": {
            "S:19": 4736,
            "S:7": 4731,
            "AE": 4741,
            "K": 4743,
            "E": 4730,
            "Z": 4730,
            "G": 4730,
            "O": 4730,
        },
    },
}

# BU keys for bookings on non-automatic accounts (classic DATEV tax keys).
DEFAULT_TAX_KEYS: dict[str, dict[str, str]] = {
    "incoming": {
        "S:19": "9",  # Vorsteuer 19 %
        "S:7": "8",  # Vorsteuer 7 %
        # the invoice shows 0 % for these: the key says the rate the recipient self-assesses;
        # an organization buying at the reduced rate sets 91 (§13b) / 18 (intra-EU) instead
        "AE": "94",  # §13b: 19 % Vorsteuer and Umsatzsteuer
        "K": "19",  # intra-EU acquisition, 19 % Vorsteuer and Umsatzsteuer
        "E": "",  # no VAT: no key
        "Z": "",
        "O": "",
        "G": "",
    },
    "sales": {
        "S:19": "3",  # Umsatzsteuer 19 %
        "S:7": "2",  # Umsatzsteuer 7 %
        "E": "1",  # umsatzsteuerfrei
        "Z": "1",
    },
}

# Standard and reduced rates an invoice from a German organization may carry, per category S.
DEFAULT_KNOWN_RATES = ("19", "7")


class ExportSettingsError(ValueError):
    """Settings an export cannot run with; the message is one sentence for the user."""


class DatevNumbersMissing(ExportSettingsError):
    """The organization was added without its DATEV numbers, as it may be (core/readiness.py):
    its months are held, not failed, until they are set."""


@dataclass(frozen=True)
class ExportSettings:
    organization_id: int
    slug: str
    name: str
    currency: str
    country: str
    adviser_number: int
    client_number: int
    chart: str  # "SKR03" | "SKR04"
    account_length: int = 4
    fiscal_year_start_month: int = 1
    directions: tuple[str, ...] = DIRECTIONS
    encoding: str = CP1252
    close_months: bool = False
    initials: str = ""
    expense_accounts: dict[str, int] = field(default_factory=dict)
    revenue_accounts: dict[str, int] = field(default_factory=dict)
    automatic_accounts: frozenset[int] = frozenset()
    tax_keys: dict[str, dict[str, str]] = field(default_factory=dict)
    partner_expense_accounts: dict[str, int] = field(default_factory=dict)
    cost_centers: dict[str, Any] = field(default_factory=dict)
    exchange_rates: dict[str, Any] = field(default_factory=dict)
    known_rates: frozenset[Decimal] = frozenset(Decimal(r) for r in DEFAULT_KNOWN_RATES)
    # sales payments (exports/domain/payments.py): the Finanzkonto they are booked on (Konto) and the
    # discount account of each VAT key ("Abw. Skontokonto")
    bank_account: int = 0
    discount_accounts: dict[str, int] = field(default_factory=dict)

    @property
    def chart_code(self) -> str:
        return self.chart[-2:]

    @property
    def creditor_range(self) -> tuple[int, int]:
        """Kreditoren: 70000-99999 for 4-digit general ledger accounts (one digit longer)."""
        return 7 * 10**self.account_length, 10 ** (self.account_length + 1) - 1

    @property
    def debtor_range(self) -> tuple[int, int]:
        """Debitoren: 10000-69999 for 4-digit general ledger accounts."""
        return 10**self.account_length, 7 * 10**self.account_length - 1

    def fiscal_year_start(self, period_start: date) -> date:
        """WJ-Beginn of the fiscal year the month belongs to (a year may start in any month)."""
        month = self.fiscal_year_start_month
        year = period_start.year if period_start.month >= month else period_start.year - 1
        return date(year, month, 1)

    def header(self, period_start: date, period_end: date, *, closed: bool) -> Header:
        return Header(
            adviser_number=self.adviser_number,
            client_number=self.client_number,
            fiscal_year_start=self.fiscal_year_start(period_start),
            account_length=self.account_length,
            period_start=period_start,
            period_end=period_end,
            description=f"{self.slug} {period_start:%Y-%m}",
            chart=self.chart_code,
            currency=self.currency,
            closed=closed,
            initials=self.initials,
        )

    def exchange_rate(self, currency: str, period: str) -> Decimal | None:
        """Units of `currency` per unit of the organization's currency, for that month or overall."""
        for source in (self.exchange_rates.get(period), self.exchange_rates):
            if isinstance(source, dict) and source.get(currency) not in (None, ""):
                return Decimal(str(source[currency]))
        return None


def _integer(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise ExportSettingsError(f"{what} must be a whole number, not {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    raise ExportSettingsError(f"{what} must be a whole number, not {value!r}")


_DATEV_NUMBER_NAMES = {
    "adviser_number": "the Beraternummer",
    "client_number": "the Mandantennummer",
}


def _datev_number(raw: dict, key: str, column: int | None) -> int | None:
    """A DATEV number of the export settings (`key`), else of the organization's column; None
    when neither names one: the gap `load_settings` holds the months for."""
    if key not in raw and column is None:
        return None
    return _integer(raw.get(key, column), _DATEV_NUMBER_NAMES[key])


def _accounts(value: Any, what: str, length: int, *, upper: bool = True) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ExportSettingsError(f"{what} must be a mapping of VAT key to account number")
    accounts = {}
    for key, account in value.items():
        number = _integer(account, f"the account for {key!r} in {what}")
        if not 1 <= number < 10**length:
            raise ExportSettingsError(
                f"the account {number} for {key!r} in {what} does not fit the Sachkontenlänge "
                f"of {length} digits"
            )
        accounts[str(key).upper() if upper else str(key)] = number
    return accounts


def enabled_directions(organization: Organization) -> tuple[str, ...]:
    """The directions an organization exports (settings exports.directions, default both)."""
    raw = organization.section("exports")
    directions = raw.get("directions", list(DIRECTIONS)) if isinstance(raw, dict) else DIRECTIONS
    if not isinstance(directions, list) or not set(directions) <= set(DIRECTIONS):
        raise ExportSettingsError(
            f"export directions must be a list of {', '.join(DIRECTIONS)}, not {directions!r}"
        )
    return tuple(directions)


def load_settings(organization: Organization) -> ExportSettings:
    """ExportSettings of an organization; ExportSettingsError when unusable."""
    raw = organization.section("exports")
    if not isinstance(raw, dict):
        raise ExportSettingsError('the organization\'s settings["exports"] must be a JSON object')
    slug = organization.slug
    adviser = _datev_number(raw, "adviser_number", organization.datev_berater_nr)
    client = _datev_number(raw, "client_number", organization.datev_mandant_nr)
    chart = str(organization.datev_chart or "SKR03").upper()
    if chart not in CHART_DEFAULTS:
        raise ExportSettingsError(f"the chart of accounts {chart!r} is not SKR03 or SKR04")
    length = _integer(raw.get("account_length", 4), "the Sachkontenlänge")
    if not 4 <= length <= 8:
        raise ExportSettingsError(f"the Sachkontenlänge {length} is outside 4..8 digits")
    month = _integer(raw.get("fiscal_year_start_month", 1), "the fiscal year's first month")
    if not 1 <= month <= 12:
        raise ExportSettingsError(f"the fiscal year's first month {month} is not 1..12")
    directions = enabled_directions(organization)
    encoding = {"cp1252": CP1252, "windows-1252": CP1252, "utf-8-bom": UTF8_BOM}.get(
        str(raw.get("encoding", "cp1252")).lower()
    )
    if encoding is None:
        raise ExportSettingsError(
            f"the export encoding {raw.get('encoding')!r} is not cp1252 or utf-8-bom"
        )
    defaults = CHART_DEFAULTS[chart]
    expense = {
        **defaults["expense_accounts"],
        **_accounts(raw.get("expense_accounts", {}), "expense_accounts", length),
    }
    revenue = {
        **defaults["revenue_accounts"],
        **_accounts(raw.get("revenue_accounts", {}), "revenue_accounts", length),
    }
    automatic = raw.get("automatic_accounts", defaults["automatic_accounts"])
    if not isinstance(automatic, list):
        raise ExportSettingsError("automatic_accounts must be a list of account numbers")
    tax_keys = {d: dict(DEFAULT_TAX_KEYS.get(d, {})) for d in DIRECTIONS}
    for direction, keys in (raw.get("tax_keys") or {}).items():
        if direction not in DIRECTIONS or not isinstance(keys, dict):
            raise ExportSettingsError(f"tax_keys must map {' or '.join(DIRECTIONS)} to keys")
        for key, value in keys.items():
            if value not in ("", None) and not (str(value).isdigit() and len(str(value)) <= 4):
                raise ExportSettingsError(f"the BU key {value!r} for {key!r} is not 1 to 4 digits")
            tax_keys[direction][str(key).upper()] = str(value or "")
    rates = raw.get("exchange_rates", {})
    if not isinstance(rates, dict):
        raise ExportSettingsError("exchange_rates must map currency codes to rates")
    try:
        for value in [
            *rates.values(),
            *(v for r in rates.values() if isinstance(r, dict) for v in r.values()),
        ]:
            if not isinstance(value, dict):
                if Decimal(str(value)) <= 0:
                    raise InvalidOperation
        known = frozenset(Decimal(str(r)) for r in raw.get("known_vat_rates", DEFAULT_KNOWN_RATES))
    except (InvalidOperation, ValueError):
        raise ExportSettingsError(
            "exchange rates and VAT rates must be positive decimal numbers"
        ) from None
    initials = str(raw.get("initials", "")).upper()
    bank = _integer(raw.get("bank_account", defaults["bank_account"]), "the bank_account")
    if not 1 <= bank < 10**length:
        raise ExportSettingsError(
            f"the bank_account {bank} does not fit the Sachkontenlänge of {length} digits"
        )
    discounts = {
        **defaults["discount_accounts"],
        **_accounts(raw.get("discount_accounts", {}), "discount_accounts", length),
    }
    partners = _accounts(
        raw.get("partner_expense_accounts", {}), "partner_expense_accounts", length, upper=False
    )
    automatic_accounts = frozenset(_integer(a, "an automatic account") for a in automatic)
    # last, once the other settings are known to be usable: an organization may be added without
    # its DATEV numbers (core/readiness.py), and its months are held, not failed, until they are
    if DATEV_NUMBERS in gaps(organization):
        raise DatevNumbersMissing(f"organization {DATEV_NUMBERS.sentence(slug)}")
    settings = ExportSettings(
        organization_id=organization.id,
        slug=slug,
        name=organization.name or slug,
        currency=organization.currency or "EUR",
        country=organization.country or "DE",
        adviser_number=adviser,
        client_number=client,
        chart=chart,
        account_length=length,
        fiscal_year_start_month=month,
        directions=tuple(directions),
        encoding=encoding,
        close_months=bool(raw.get("close_months", False)),
        initials=initials,
        expense_accounts=expense,
        revenue_accounts=revenue,
        automatic_accounts=automatic_accounts,
        tax_keys=tax_keys,
        partner_expense_accounts=partners,
        cost_centers=raw.get("cost_centers") or {},
        exchange_rates=rates,
        known_rates=known,
        bank_account=bank,
        discount_accounts=discounts,
    )
    try:
        settings.header(date(2000, 1, 1), date(2000, 1, 31), closed=False).check()
    except DatevFieldError as exc:
        raise ExportSettingsError(str(exc)) from None
    return settings
