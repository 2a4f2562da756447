"""Dunning arithmetic: an organization's levels, fees and default interest, and which level is due.

Plain Python (no SQL, no Dagster). Money is Decimal, rounded half-up to cents once per amount.

An organization's dunning settings live in `organizations.settings["dunning"]` (JSON), e.g.

    {"levels": [
        {"name": "reminder", "days": 1},
        {"name": "first_dunning", "days": 14, "fee_fixed": "5.00"},
        {"name": "final_notice", "days": 30, "fee_fixed": "10.00", "fee_percent": "1"}],
     "interest": {"base_rate_percent": "1.27", "margin_percent": "9"},
     "deliver": true}

Every key is optional; what is left out comes from DEFAULT_LEVELS / no interest. A level's `days`
counts from the due date (negative: a friendly reminder before it). Default interest (Verzugszinsen)
is a yearly rate over a base rate, accrued per day (actual/365) on the open amount from the due
date, or from the last partial payment, and never for a day an earlier notice already charged.
With `deliver`, notices of levels whose channel is `email`, `sms` or `whatsapp` are sent that way
(`overdue/delivery.py`); every other notice stays an in-app record. With `fee_invoices`, fees and interest are invoiced
through batch invoicing (`overdue/fee_invoices.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoice_pipelines.core.money import ZERO, round_cents

CHANNELS = ("in_app", "email", "sms", "whatsapp")
DAYS_PER_YEAR = Decimal(365)

DEFAULT_LEVELS: tuple[dict[str, Any], ...] = (
    {"name": "reminder", "days": 1, "fee_fixed": "0.00", "interest": False},
    {"name": "first_dunning", "days": 14, "fee_fixed": "5.00"},
    {"name": "final_notice", "days": 30, "fee_fixed": "10.00"},
)


class DunningSettingsError(ValueError):
    """Dunning settings a run cannot use; the message is one sentence naming the setting."""


class NoticeError(ValueError):
    """One invoice that cannot be noticed; the message says why (the others go on)."""


@dataclass(frozen=True)
class Level:
    number: int  # 1 = the earliest level; notices are unique per invoice and number
    name: str
    days: int
    fee_fixed: Decimal
    fee_percent: Decimal
    charge_interest: bool
    template: str
    channel: str


@dataclass(frozen=True)
class DunningSettings:
    levels: tuple[Level, ...]
    base_rate_percent: Decimal
    margin_percent: Decimal
    deliver: bool = False  # send the notices of levels whose channel is email, sms or whatsapp
    fee_invoices: bool = False  # invoice fees and interest through batch invoicing

    @property
    def yearly_interest_percent(self) -> Decimal:
        return self.base_rate_percent + self.margin_percent

    @property
    def earliest_days(self) -> int:
        return self.levels[0].days


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise DunningSettingsError(
            f'{where} must be a decimal string such as "5.00", got {value!r}.'
        )
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise DunningSettingsError(f"{where} is not a number: {value!r}.") from None
    if not result.is_finite() or result < 0:
        raise DunningSettingsError(f"{where} must be zero or more, got {value!r}.")
    return result


def parse_settings(raw: Any) -> DunningSettings:
    """The dunning settings of `organizations.settings["dunning"]` (None: the defaults)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DunningSettingsError("settings.dunning must be an object.")
    unknown = set(raw) - {"levels", "interest", "deliver", "fee_invoices"}
    if unknown:
        raise DunningSettingsError(
            f"settings.dunning has unknown keys: {', '.join(sorted(unknown))}."
        )
    raw_levels = raw.get("levels", DEFAULT_LEVELS)
    if not isinstance(raw_levels, list | tuple) or not raw_levels:
        raise DunningSettingsError("settings.dunning.levels must be a non-empty list.")
    parsed = []
    for i, entry in enumerate(raw_levels, start=1):
        where = f"settings.dunning.levels[{i}]"
        if not isinstance(entry, dict):
            raise DunningSettingsError(f"{where} must be an object.")
        unknown = set(entry) - {
            "name", "days", "fee_fixed", "fee_percent", "interest", "template", "channel"
        }  # fmt: skip
        if unknown:
            raise DunningSettingsError(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")
        days = entry.get("days")
        if isinstance(days, bool) or not isinstance(days, int):
            raise DunningSettingsError(
                f"{where}.days must be a whole number of days, got {days!r}."
            )
        name = str(entry.get("name") or f"level_{i}")
        channel = entry.get("channel", "in_app")
        if channel not in CHANNELS:
            raise DunningSettingsError(
                f"{where}.channel must be one of {', '.join(CHANNELS)}, got {channel!r}."
            )
        parsed.append(
            (
                days,
                name,
                _decimal(entry.get("fee_fixed", "0"), f"{where}.fee_fixed"),
                _decimal(entry.get("fee_percent", "0"), f"{where}.fee_percent"),
                # before the due date there is no default, so no interest
                bool(entry.get("interest", days > 0)) and days > 0,
                str(entry.get("template") or name),
                channel,
            )
        )
    parsed.sort(key=lambda p: p[0])
    days_seen = [p[0] for p in parsed]
    if len(set(days_seen)) != len(days_seen):
        raise DunningSettingsError("settings.dunning.levels: two levels have the same days.")
    names = [p[1] for p in parsed]
    if len(set(names)) != len(names):
        raise DunningSettingsError("settings.dunning.levels: two levels have the same name.")
    interest = raw.get("interest", {})
    if not isinstance(interest, dict) or set(interest) - {"base_rate_percent", "margin_percent"}:
        raise DunningSettingsError(
            "settings.dunning.interest must be an object with base_rate_percent and margin_percent."
        )
    levels = tuple(
        Level(n, name, days, fixed, pct, charge, template, channel)
        for n, (days, name, fixed, pct, charge, template, channel) in enumerate(parsed, start=1)
    )
    # the base rate can be negative (it was, 2013-2022); the sum is what the debtor pays
    base = interest.get("base_rate_percent", "0")
    try:
        base_rate = Decimal(str(base).strip()) if not isinstance(base, bool | float) else None
    except InvalidOperation:
        base_rate = None
    if base_rate is None or not base_rate.is_finite():
        raise DunningSettingsError(
            f"settings.dunning.interest.base_rate_percent is not a number: {base!r}."
        )
    margin = _decimal(
        interest.get("margin_percent", "0"), "settings.dunning.interest.margin_percent"
    )
    if base_rate + margin < 0:
        raise DunningSettingsError("settings.dunning.interest: base rate plus margin is negative.")
    switches = {}
    for key in ("deliver", "fee_invoices"):
        switches[key] = raw.get(key, False)
        if not isinstance(switches[key], bool):
            raise DunningSettingsError(
                f"settings.dunning.{key} must be true or false, got {switches[key]!r}."
            )
    return DunningSettings(levels, base_rate, margin, **switches)


def organization_zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DunningSettingsError(f"The organization's timezone {name!r} is unknown.") from None


def local_date(moment: datetime, zone: ZoneInfo) -> date:
    """The calendar day `moment` falls on in the organization's timezone."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime cannot be placed in a timezone")
    return moment.astimezone(zone).date()


def due_level(levels: tuple[Level, ...], days_overdue: int) -> Level | None:
    """The highest level due after `days_overdue` days (negative: days before the due date)."""
    due = None
    for level in levels:
        if days_overdue >= level.days:
            due = level
    return due


def level_fee(level: Level, open_amount: Decimal) -> Decimal:
    return round_cents(level.fee_fixed + open_amount * level.fee_percent / Decimal(100))


def default_interest(open_amount: Decimal, yearly_percent: Decimal, days: int) -> Decimal:
    """Interest on `open_amount` for `days` days at `yearly_percent` a year (actual/365)."""
    if days <= 0 or yearly_percent <= 0 or open_amount <= 0:
        return ZERO
    return round_cents(open_amount * yearly_percent / Decimal(100) * days / DAYS_PER_YEAR)


@dataclass(slots=True)
class Candidate:
    """An overdue invoice as the selection read it, with what earlier notices already charged."""

    invoice_id: int
    invoice_number: str
    currency: str
    due_date: date
    amount_due: Decimal
    last_payment_date: date | None
    previous_level: int
    previous_interest_until: date | None
    previous_fees_total: Decimal
    previous_interest_total: Decimal


@dataclass(slots=True)
class NoticeFigures:
    level: Level
    days_overdue: int
    fee: Decimal
    interest: Decimal
    interest_from: date | None
    interest_until: date | None
    fees_total: Decimal
    interest_total: Decimal
    total_claimed: Decimal


def notice_for(
    candidate: Candidate, settings: DunningSettings, today: date, currency: str
) -> NoticeFigures | None:
    """The notice `candidate` is due for today, or None (not yet, or that level was noticed).

    Jumped levels are not noticed on their own: only the highest due level is, and it charges
    only its own fee. Interest runs from the latest of the due date, the last payment and the
    day an earlier notice charged up to, so no day is charged twice.
    """
    if candidate.amount_due <= 0:
        return None
    days = (today - candidate.due_date).days
    level = due_level(settings.levels, days)
    if level is None or level.number <= candidate.previous_level:
        return None
    fee = level_fee(level, candidate.amount_due)
    if level.fee_fixed and candidate.currency != currency:
        raise NoticeError(
            f"invoice {candidate.invoice_number} is in {candidate.currency}, but the fixed fee of "
            f"level {level.name} is in the organization's currency {currency}."
        )
    interest, interest_from, interest_until = ZERO, None, None
    if level.charge_interest and settings.yearly_interest_percent > 0:
        interest_from = max(
            d
            for d in (
                candidate.due_date,
                candidate.last_payment_date,
                candidate.previous_interest_until,
            )
            if d is not None
        )
        interest_until = max(today, interest_from)
        interest = default_interest(
            candidate.amount_due,
            settings.yearly_interest_percent,
            (interest_until - interest_from).days,
        )
    fees_total = candidate.previous_fees_total + fee
    interest_total = candidate.previous_interest_total + interest
    return NoticeFigures(
        level=level,
        days_overdue=days,
        fee=fee,
        interest=interest,
        interest_from=interest_from,
        interest_until=interest_until
        if interest_from is not None
        else candidate.previous_interest_until,
        fees_total=fees_total,
        interest_total=interest_total,
        total_claimed=candidate.amount_due + fees_total + interest_total,
    )
