"""The base rate of § 247 BGB by half-year, and default interest over periods that span several.

Plain Python (no SQL, no Dagster). The Deutsche Bundesbank publishes the base rate
(Basiszinssatz) for each half-year: it is reset on 1 January and 1 July and holds until the next
reset. `PUBLISHED` holds the rates we are certain of; an organization adds later ones in
`settings.dunning.interest.base_rates` (`invoice-pipelines dunning-base-rate`). A day after the
last known half-year has no rate: we do not guess it, so that day is not charged (the notice says
how far it charged and the run says which half-year is missing).

Interest is worked out exactly (Decimal, unrounded) per day at that day's rate, summed over the
half-years, and rounded half-up to cents once per notice by the caller (`core.dunning`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

DAYS_PER_YEAR = Decimal(365)

# Deutsche Bundesbank, Basiszinssatz nach § 247 BGB, each valid from that day until the next entry.
# -0.88 % held from 1 July 2016 through 31 December 2022 (unchanged at every reset in between).
PUBLISHED: tuple[tuple[date, Decimal], ...] = (
    (date(2016, 7, 1), Decimal("-0.88")),
    (date(2023, 1, 1), Decimal("1.62")),
    (date(2023, 7, 1), Decimal("3.12")),
    (date(2024, 1, 1), Decimal("3.62")),
    (date(2024, 7, 1), Decimal("3.37")),
    (date(2025, 1, 1), Decimal("2.27")),
    (date(2025, 7, 1), Decimal("1.27")),
    (date(2026, 1, 1), Decimal("1.27")),
)
# the last entry holds until the end of its half-year; later half-years need a rate set
PUBLISHED_UNTIL = date(2026, 6, 30)


def is_half_year_start(day: date) -> bool:
    return day.day == 1 and day.month in (1, 7)


def half_year_end(day: date) -> date:
    return date(day.year, 6, 30) if day.month <= 6 else date(day.year, 12, 31)


@dataclass(frozen=True)
class BaseRates:
    """Base rates by validity: each (from, percent) holds until the next entry; the last one until
    `known_until`. `fixed` (an organization's own single rate) holds for every day instead."""

    changes: tuple[tuple[date, Decimal], ...] = PUBLISHED
    known_until: date | None = PUBLISHED_UNTIL
    fixed: Decimal | None = None

    def with_changes(self, extra: dict[date, Decimal]) -> BaseRates:
        """These rates plus `extra` (half-year starts; an extra entry replaces a published one)."""
        if not extra:
            return self
        merged = dict(self.changes)
        merged.update(extra)
        changes = tuple(sorted(merged.items()))
        ends = [half_year_end(max(extra))] + ([self.known_until] if self.known_until else [])
        return BaseRates(changes, max(ends), self.fixed)

    def periods(self, first: date, last: date) -> list[tuple[date, date, Decimal | None]]:
        """[first, last] (both days charged) cut where the rate changes: (from, to, percent), the
        percent None for days no rate is known for."""
        if first > last:
            return []
        if self.fixed is not None:
            return [(first, last, self.fixed)]
        cuts: list[tuple[date, Decimal | None]] = [(date.min, None), *self.changes]
        if self.known_until is not None and self.known_until < date.max:
            cuts.append((self.known_until + timedelta(days=1), None))
        result = []
        for i, (start, percent) in enumerate(cuts):
            end = cuts[i + 1][0] - timedelta(days=1) if i + 1 < len(cuts) else date.max
            lo, hi = max(start, first), min(end, last)
            if lo <= hi:
                result.append((lo, hi, percent))
        return result


@dataclass(frozen=True)
class Accrued:
    # amount x percent x days, summed over the days charged: exact (multiplications only), so the
    # pieces of a split period add up to the whole; divided once, in `exact`
    percent_days: Decimal
    charged_until: date  # the last day charged (== the period's start: nothing charged)
    rate_percent: Decimal  # base rate + margin of the last day charged (0: none)
    missing_from: date | None  # the first day no base rate is known for (not charged, nor after)

    @property
    def exact(self) -> Decimal:
        """The interest before rounding (the caller rounds it to cents once per notice)."""
        return self.percent_days / Decimal(100) / DAYS_PER_YEAR


def accrue(
    amount: Decimal, margin_percent: Decimal, after: date, until: date, rates: BaseRates
) -> Accrued:
    """Default interest on `amount` for each day after `after` up to and including `until`, at
    that day's base rate plus `margin_percent` a year (actual/365; a negative sum counts as 0).
    Stops before the first day with no known base rate."""
    total, charged_until, rate = Decimal(0), after, Decimal(0)
    for first, last, base in rates.periods(after + timedelta(days=1), until):
        if base is None:
            return Accrued(total, charged_until, rate, first)
        rate = base + margin_percent
        days = (last - first).days + 1
        if rate > 0 and amount > 0:
            total += amount * rate * days
        charged_until = last
    return Accrued(total, charged_until, rate if charged_until > after else Decimal(0), None)
