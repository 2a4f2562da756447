"""Dunning arithmetic: an organization's levels, fees and default interest, and which level is due.

Plain Python (no SQL, no Dagster). Money is Decimal, rounded half-up to cents once per amount (a
notice's interest: once, after summing its days across base-rate half-years).

An organization's dunning settings live in `organizations.settings["dunning"]` (JSON), e.g.

    {"levels": [
        {"name": "reminder", "days": 1},
        {"name": "first_dunning", "days": 14, "fee_fixed": "2.50"},
        {"name": "final_notice", "days": 30, "fee_fixed": "2.50"}],
     "law": "DE",
     "interest": {"margin_business_percent": "9", "margin_consumer_percent": "5",
                  "base_rates": [{"from": "2026-07-01", "percent": "1.27"}]},
     "flat_fee": true, "due_date_agreed": true, "invoice_default_sentence": false,
     "deliver": true}

Every key is optional. `law` "DE" (the default of an organization in Germany) follows the BGB:

- default (Verzug, § 286): a business debtor is in default from the day after the due date when
  the due date is agreed (`due_date_agreed`, default true: our due date comes from the payment
  terms agreed with the customer, a calendar date by § 286(2) no. 1), otherwise from the first
  reminder after the due date or 30 days after it (§ 286(3)), whichever is earlier; a consumer
  only from the first reminder after the due date, or 30 days after it when the invoice carries
  the § 286(3) sentence (`invoice_default_sentence`). A reminder puts the debtor in default on
  the day it is issued (its `as_of`);
- default interest (§ 288(1), (2)): the base rate of § 247 (`core.base_rates`, per half-year)
  plus 5 points for consumers, 9 for businesses, for every day in default up to the notice's day,
  at every level; `base_rate_percent` fixes one base rate for every day instead;
- the flat fee of EUR 40 (§ 288(5)) from a business debtor in default, once per invoice; the
  levels' own dunning costs are offset against it (claimed only as far as they exceed 40);
- level fees: 0.00 for the reminder (the reminder that causes default is no damage), 2.50 (the
  actual cost of a letter, what courts accept) for each later level.

Any other organization (`law` "none", the default outside Germany) has DEFAULT_LEVELS_OTHER (0 /
5 / 10), no flat fee, interest from the due date and none unless it sets its rates.

Default interest (Verzugszinsen) is accrued per day (actual/365) for each day after `interest_from`
(the start of default, or the day an earlier notice charged up to) up to and including
`interest_until`, never for a day an earlier notice already charged, on what was open that day:
the period is cut into segments where a payment changed the balance (`balance_segments`), each
charged at its own balance and per base-rate half-year. With `deliver`, notices of levels whose
channel is `email`, `sms` or `whatsapp` are sent that way (`overdue/domain/notice_sending.py`); every
other notice stays an in-app record. With `fee_invoices`, fees and interest are invoiced
through batch invoicing (`overdue/domain/fee_invoices.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoice_pipelines.core.base_rates import Accrued, BaseRates, accrue, is_half_year_start
from invoice_pipelines.core.channels import IN_APP, NOTICE_CHANNELS
from invoice_pipelines.core.money import ZERO, round_cents
from invoice_pipelines.core.organization import Organization

DAYS_PER_YEAR = Decimal(365)
LAWS = ("DE", "none")
BUSINESS, CONSUMER = "business", "consumer"
KINDS = (BUSINESS, CONSUMER)
FLAT_FEE_EUR = Decimal("40.00")  # § 288(5) BGB
DEFAULT_AFTER_DAYS = 30  # § 286(3) BGB
# § 288(1), (2) BGB: points above the base rate
MARGIN_CONSUMER, MARGIN_BUSINESS = Decimal("5"), Decimal("9")
# what the § 286(3) BGB sentence says on an invoice (`invoice_default_sentence`)
DEFAULT_SENTENCE_DE = (
    "Sie kommen spätestens in Verzug, wenn Sie nicht innerhalb von 30 Tagen nach Fälligkeit und "
    "Zugang dieser Rechnung zahlen (§ 286 Abs. 3 BGB)."
)
DEFAULT_SENTENCE_EN = (
    "You are in default at the latest if you do not pay within 30 days of the due date and "
    "receipt of this invoice (section 286(3) German Civil Code)."
)

DEFAULT_LEVELS_DE: tuple[dict[str, Any], ...] = (
    {"name": "reminder", "days": 1, "fee_fixed": "0.00"},
    {"name": "first_dunning", "days": 14, "fee_fixed": "2.50"},
    {"name": "final_notice", "days": 30, "fee_fixed": "2.50"},
)
DEFAULT_LEVELS_OTHER: tuple[dict[str, Any], ...] = (
    {"name": "reminder", "days": 1, "fee_fixed": "0.00", "interest": False},
    {"name": "first_dunning", "days": 14, "fee_fixed": "5.00"},
    {"name": "final_notice", "days": 30, "fee_fixed": "10.00"},
)
DEFAULT_LEVELS = DEFAULT_LEVELS_DE


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
    margin_business_percent: Decimal
    margin_consumer_percent: Decimal
    base_rates: BaseRates = field(default_factory=BaseRates)
    law: str = "DE"
    flat_fee: bool = True  # § 288(5) BGB, business debtors, law DE only
    due_date_agreed: bool = True  # our due date is an agreed calendar date (§ 286(2) no. 1)
    invoice_default_sentence: bool = False  # invoices carry the § 286(3) sentence
    deliver: bool = False  # send the notices of levels whose channel is email, sms or whatsapp
    fee_invoices: bool = False  # invoice fees and interest through batch invoicing

    @property
    def earliest_days(self) -> int:
        return self.levels[0].days

    def margin(self, kind: str) -> Decimal:
        return self.margin_business_percent if kind == BUSINESS else self.margin_consumer_percent


def _decimal(value: Any, where: str, *, negative: bool = False) -> Decimal:
    if isinstance(value, bool) or isinstance(value, float):
        raise DunningSettingsError(
            f'{where} must be a decimal string such as "5.00", got {value!r}.'
        )
    try:
        result = Decimal(str(value).strip())
    except InvalidOperation:
        raise DunningSettingsError(f"{where} is not a number: {value!r}.") from None
    if not result.is_finite() or (result < 0 and not negative):
        raise DunningSettingsError(f"{where} must be zero or more, got {value!r}.")
    return result


def _switch(raw: dict, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise DunningSettingsError(f"settings.dunning.{key} must be true or false, got {value!r}.")
    return value


def parse_base_rates(raw: Any, where: str = "settings.dunning.interest.base_rates") -> dict:
    """[{"from": "2026-07-01", "percent": "1.27"}, ...] -> {date: Decimal}; each `from` must be
    a 1 January or 1 July (§ 247 BGB resets the rate then)."""
    if not isinstance(raw, list):
        raise DunningSettingsError(f'{where} must be a list of {{"from", "percent"}} objects.')
    result = {}
    for i, entry in enumerate(raw, start=1):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict) or set(entry) != {"from", "percent"}:
            raise DunningSettingsError(f'{at} must be an object with "from" and "percent".')
        try:
            start = date.fromisoformat(str(entry["from"]))
        except ValueError:
            raise DunningSettingsError(
                f"{at}.from must be a date YYYY-MM-DD, got {entry['from']!r}."
            ) from None
        if not is_half_year_start(start):
            raise DunningSettingsError(
                f"{at}.from must be a 1 January or 1 July (the base rate changes then), "
                f"got {entry['from']!r}."
            )
        result[start] = _decimal(entry["percent"], f"{at}.percent", negative=True)
    return result


def parse_settings(raw: Any, country: str = "DE") -> DunningSettings:
    """The dunning settings of `organizations.settings["dunning"]` (None: the defaults of an
    organization in `country`)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DunningSettingsError("settings.dunning must be an object.")
    unknown = set(raw) - {
        "levels", "interest", "deliver", "fee_invoices", "law", "flat_fee", "due_date_agreed",
        "invoice_default_sentence",
    }  # fmt: skip
    if unknown:
        raise DunningSettingsError(
            f"settings.dunning has unknown keys: {', '.join(sorted(unknown))}."
        )
    law = raw.get("law", "DE" if country == "DE" else "none")
    if law not in LAWS:
        raise DunningSettingsError(f"settings.dunning.law must be DE or none, got {law!r}.")
    german = law == "DE"
    raw_levels = raw.get("levels", DEFAULT_LEVELS_DE if german else DEFAULT_LEVELS_OTHER)
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
        channel = entry.get("channel", IN_APP)
        if channel not in NOTICE_CHANNELS:
            raise DunningSettingsError(
                f"{where}.channel must be one of {', '.join(NOTICE_CHANNELS)}, got {channel!r}."
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
    levels = tuple(
        Level(n, name, days, fixed, pct, charge, template, channel)
        for n, (days, name, fixed, pct, charge, template, channel) in enumerate(parsed, start=1)
    )
    interest = raw.get("interest", {})
    keys = {
        "base_rate_percent", "margin_percent", "margin_business_percent",
        "margin_consumer_percent", "base_rates",
    }  # fmt: skip
    if not isinstance(interest, dict) or set(interest) - keys:
        raise DunningSettingsError(
            "settings.dunning.interest must be an object with some of "
            + ", ".join(sorted(keys))
            + "."
        )
    where = "settings.dunning.interest"
    # the base rate can be negative (it was, 2013-2022); the sum is what the debtor pays
    if "base_rate_percent" in interest:
        base = interest["base_rate_percent"]
        if isinstance(base, bool | float):
            raise DunningSettingsError(f"{where}.base_rate_percent is not a number: {base!r}.")
        fixed = _decimal(base, f"{where}.base_rate_percent", negative=True)
    else:
        # Germany: the § 247 BGB table; elsewhere no base rate unless the organization sets one
        fixed = None if german else ZERO
    rates = BaseRates(fixed=fixed).with_changes(
        parse_base_rates(interest["base_rates"]) if "base_rates" in interest else {}
    )
    both = interest.get("margin_percent")
    margins = {}
    for kind, default in ((BUSINESS, MARGIN_BUSINESS), (CONSUMER, MARGIN_CONSUMER)):
        key = f"margin_{kind}_percent"
        value = interest.get(key, both if both is not None else (default if german else "0"))
        margins[kind] = _decimal(value, f"{where}.{key if key in interest else 'margin_percent'}")
    if fixed is not None and fixed + min(margins.values()) < 0:
        raise DunningSettingsError(f"{where}: base rate plus margin is negative.")
    return DunningSettings(
        levels,
        margins[BUSINESS],
        margins[CONSUMER],
        rates,
        law=law,
        flat_fee=_switch(raw, "flat_fee", german),
        due_date_agreed=_switch(raw, "due_date_agreed", True),
        invoice_default_sentence=_switch(raw, "invoice_default_sentence", False),
        deliver=_switch(raw, "deliver", False),
        fee_invoices=_switch(raw, "fee_invoices", False),
    )


def customer_kind(kind: str | None, vat_id: str | None) -> str:
    """A customer's kind: as set, else business with a VAT id and consumer without (a business
    without a VAT id, a small one, is dunned as a consumer until its kind is set: the lower
    claim, never one the law does not allow)."""
    if kind in KINDS:
        return kind
    return BUSINESS if vat_id and vat_id.strip() else CONSUMER


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


@dataclass(frozen=True, slots=True)
class InterestSegment:
    """Days after `after` up to and including `until`, charged on `amount` (the balance then)."""

    after: date
    until: date
    amount: Decimal

    @property
    def days(self) -> int:
        return (self.until - self.after).days


def balance_segments(
    amount_due: Decimal,
    payments: Sequence[tuple[date, Decimal]] | None,
    after: date,
    until: date,
    paid_at_most: Decimal | None = None,
) -> list[InterestSegment]:
    """The days after `after` up to and including `until`, cut where a payment changed what was
    open: one segment per balance, in order, covering every day once (none when `until` is not
    after `after`).

    A day's balance is `amount_due` (open now) plus the payments made on or after that day: the
    day of a payment is still charged on what was open before it (interest runs until the money
    arrives), the next day on the rest. `payments` are (day, amount) of the money payments known;
    None or empty: none known, every day is charged on `amount_due` (at most what was open: never
    more). What is added back is capped at `paid_at_most` (the invoice's amount paid), so payment
    rows that say more than the invoice does never raise the claim."""
    if until <= after:
        return []
    known = sorted((day, amount) for day, amount in (payments or ()) if amount > 0)
    cuts = sorted({day for day, _ in known if after < day < until})
    segments: list[InterestSegment] = []
    start = after
    for end in [*cuts, until]:
        added = sum((amount for day, amount in known if day >= end), ZERO)
        if paid_at_most is not None:
            added = min(added, max(paid_at_most, ZERO))
        balance = amount_due + added
        if segments and segments[-1].amount == balance:
            segments[-1] = InterestSegment(segments[-1].after, end, balance)
        else:
            segments.append(InterestSegment(start, end, balance))
        start = end
    return segments


def accrue_segments(
    segments: Sequence[InterestSegment], margin_percent: Decimal, rates: BaseRates
) -> tuple[Accrued, tuple[InterestSegment, ...]]:
    """Default interest over `segments` (in order, adjoining), each on its own amount and per
    base-rate half-year, exact (the caller rounds once per notice), with the segments as far as
    they were charged: it stops before the first day no base rate is known for."""
    if not segments:
        raise ValueError("accrue_segments needs at least one segment")
    after = segments[0].after
    total, charged_until, rate = ZERO, after, ZERO
    charged: list[InterestSegment] = []
    for segment in segments:
        part = accrue(segment.amount, margin_percent, segment.after, segment.until, rates)
        total += part.percent_days
        if part.charged_until > segment.after:
            charged_until, rate = part.charged_until, part.rate_percent
            charged.append(InterestSegment(segment.after, part.charged_until, segment.amount))
        if part.missing_from is not None:
            return Accrued(total, charged_until, rate, part.missing_from), tuple(charged)
    return Accrued(total, charged_until, rate, None), tuple(charged)


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
    kind: str = BUSINESS
    previous_costs_total: Decimal | None = None  # None: notices before migration 0013
    # the money payments known for the invoice, (day, amount) (`sales_invoice_payments`); None or
    # empty: none known, interest runs on the amount due for every day (may claim less, never more)
    payments: tuple[tuple[date, Decimal], ...] | None = None
    amount_paid: Decimal | None = None  # caps what the payments add back to a day's balance


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
    costs_total: Decimal = ZERO  # the levels' own dunning costs so far (before the flat fee)
    interest_rate_percent: Decimal = ZERO  # base rate + margin of the last day charged
    missing_base_rate_from: date | None = None  # interest stopped before this day: no rate known
    # the days this notice charged, one segment per balance (empty: no interest charged)
    interest_segments: tuple[InterestSegment, ...] = ()


def default_begins(
    candidate: Candidate, settings: DunningSettings, today: date, level: Level
) -> date | None:
    """The last day before default (interest runs from the day after), or None: not in default
    as of `today`. Outside German law: the due date."""
    if settings.law != "DE":
        return candidate.due_date
    if candidate.previous_interest_until is not None:
        return candidate.previous_interest_until  # an earlier notice found the default
    starts = []
    if candidate.kind == BUSINESS and settings.due_date_agreed:
        starts.append(candidate.due_date)  # § 286(2) no. 1: no reminder needed
    if candidate.kind == BUSINESS or settings.invoice_default_sentence:
        # § 286(3): 30 days after due date and receipt (we take receipt on the due date at the
        # latest; a consumer only when the invoice said so)
        starts.append(candidate.due_date + timedelta(days=DEFAULT_AFTER_DAYS))
    if level.days > 0:
        starts.append(today)  # this notice is a reminder after the due date (§ 286(1))
    start = min(starts, default=None)
    return start if start is not None and start <= today else None


def notice_for(
    candidate: Candidate, settings: DunningSettings, today: date, currency: str
) -> NoticeFigures | None:
    """The notice `candidate` is due for today, or None (not yet, or that level was noticed).

    Jumped levels are not noticed on their own: only the highest due level is, and it charges
    only its own fee. Interest runs from the start of default, or from the day an earlier notice
    charged up to (no day is charged twice), to `today`, each day on what was open that day
    (`balance_segments`: a partial payment lowers the balance from the day after it).
    """
    if candidate.amount_due <= 0:
        return None
    days = (today - candidate.due_date).days
    level = due_level(settings.levels, days)
    if level is None or level.number <= candidate.previous_level:
        return None
    cost = level_fee(level, candidate.amount_due)
    if level.fee_fixed and candidate.currency != currency:
        raise NoticeError(
            f"invoice {candidate.invoice_number} is in {candidate.currency}, but the fixed fee of "
            f"level {level.name} is in the organization's currency {currency}."
        )
    begins = default_begins(candidate, settings, today, level) if level.days > 0 else None
    interest, interest_from = ZERO, None
    interest_until = candidate.previous_interest_until
    rate, missing, segments = ZERO, None, ()
    charging = settings.law == "DE" or (
        (settings.base_rates.fixed or ZERO) + settings.margin(candidate.kind) > 0
    )
    if begins is not None and level.charge_interest and charging:
        interest_from = max(d for d in (begins, interest_until) if d is not None)
        spans = balance_segments(
            candidate.amount_due,
            candidate.payments,
            interest_from,
            today,
            candidate.amount_paid,
        )
        if spans:
            accrued, segments = accrue_segments(
                spans, settings.margin(candidate.kind), settings.base_rates
            )
            interest = round_cents(accrued.exact)  # rounded once per notice
            interest_until, rate, missing = (
                accrued.charged_until,
                accrued.rate_percent,
                accrued.missing_from,
            )
        else:
            interest_until = interest_from
    elif begins == today and interest_until is None:
        # this notice put the debtor in default: later levels charge interest from today on
        interest_from = interest_until = today
    previous_costs = (
        candidate.previous_fees_total
        if candidate.previous_costs_total is None
        else candidate.previous_costs_total
    )
    costs_total = previous_costs + cost
    fees_total = candidate.previous_fees_total + cost
    flat = (
        settings.law == "DE"
        and settings.flat_fee
        and candidate.kind == BUSINESS
        and (begins is not None or candidate.previous_interest_until is not None)
    )
    if flat:
        if candidate.currency != "EUR":
            raise NoticeError(
                f"invoice {candidate.invoice_number} is in {candidate.currency}, but the flat fee "
                "of § 288(5) BGB is EUR 40 (settings.dunning.flat_fee false leaves it out)."
            )
        # § 288(5) sentence 3: the dunning costs are offset against the flat fee
        fees_total = max(candidate.previous_fees_total, max(FLAT_FEE_EUR, costs_total))
    fee = fees_total - candidate.previous_fees_total
    interest_total = candidate.previous_interest_total + interest
    return NoticeFigures(
        level=level,
        days_overdue=days,
        fee=fee,
        interest=interest,
        interest_from=interest_from,
        interest_until=interest_until,
        fees_total=fees_total,
        interest_total=interest_total,
        total_claimed=candidate.amount_due + fees_total + interest_total,
        costs_total=costs_total,
        interest_rate_percent=rate,
        missing_base_rate_from=missing,
        interest_segments=segments,
    )


def invoice_default_sentence(organization: Organization, language: str) -> str | None:
    """The § 286(3) BGB sentence an invoice of `organization` carries, or None: only under German
    law with `invoice_default_sentence` set, since dunning then counts a consumer's default from
    30 days after the due date and that is lawful only when the invoice said so. Settings dunning
    cannot read give no sentence here; the overdue run reports them."""
    raw = organization.settings.get("dunning")
    try:
        settings = parse_settings(raw, organization.country or "DE")
    except DunningSettingsError:
        return None
    if settings.law != "DE" or not settings.invoice_default_sentence:
        return None
    return DEFAULT_SENTENCE_EN if language == "en" else DEFAULT_SENTENCE_DE
