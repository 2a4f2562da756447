"""Days a person gives (a dunning run's as-of day, a credit note's date): the plausible window,
and the `as_of` a dunning run is asked to notice at (the run coordinator checks it before a run
is queued, the overdue area when it runs).

A day far outside it is a typo or an attack, never a business date: `overdue --as-of 9999-12-31`
once wrote final notices with a million in interest on 1,384.57 open, `--as-of 0001-01-01` ended
in an OverflowError, and a credit note could be dated 9999-12-31. One sentence says why instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from invoice_pipelines.limits import DUNNING_AS_OF_MAX_DAYS_AHEAD

# Nothing this system keeps is older: no invoice, payment or organization before it.
EARLIEST_DAY = date(2000, 1, 1)


class ImplausibleDay(ValueError):
    """A day outside the plausible window; the message is one sentence naming the bound."""


def check_plausible_day(day: date, *, today: date, days_ahead: int, what: str) -> date:
    """`day` when it lies between EARLIEST_DAY and `days_ahead` days after `today`; else
    ImplausibleDay, e.g. "--as-of 9999-12-31 is more than 7 days after today (2026-11-25)."."""
    if day < EARLIEST_DAY:
        raise ImplausibleDay(
            f"{what} {day.isoformat()} is before {EARLIEST_DAY.isoformat()}, "
            "earlier than anything this system keeps."
        )
    if day > today + timedelta(days=days_ahead):
        raise ImplausibleDay(
            f"{what} {day.isoformat()} is more than {days_ahead} days after today "
            f"({today.isoformat()})."
        )
    return day


class AsOfError(ValueError):
    """An `as_of` that is neither a day nor an instant with its UTC offset (the sentence says)."""


def parse_as_of(value: str, *, today: date | None = None) -> tuple[datetime | None, date | None]:
    """(instant, day) from a dunning run's `as_of`: YYYY-MM-DD (a backfill, in each
    organization's timezone) or ISO 8601 with an offset (the schedule's tick); both None for
    empty (now). Anything else, or a day outside the plausible window (from 2000-01-01 to
    `limits.DUNNING_AS_OF_MAX_DAYS_AHEAD` days after `today`, default today in UTC), raises
    AsOfError with one sentence."""
    value = value.strip()
    if not value:
        return None, None
    try:
        day = date.fromisoformat(value) if len(value) == 10 else None
        moment = None if day else datetime.fromisoformat(value)
    except ValueError:
        raise AsOfError(f"as_of {value!r} is neither a date (YYYY-MM-DD) nor an instant.") from None
    if day is not None:
        return None, check_as_of_day(day, today=today)
    assert moment is not None
    if moment.tzinfo is None:
        raise AsOfError(f"as_of {value!r} has no UTC offset; add one (e.g. +00:00).")
    try:
        in_utc = moment.astimezone(UTC).date()
    except OverflowError:  # 0001-01-01T00:00+01:00 has no UTC day
        in_utc = date.min
    check_as_of_day(in_utc, today=today)
    return moment, None


def check_as_of_day(day: date, *, today: date | None = None, what: str = "as_of") -> date:
    """`day` when a dunning run may notice as of it; else AsOfError in one sentence."""
    try:
        return check_plausible_day(
            day,
            today=today or datetime.now(UTC).date(),
            days_ahead=DUNNING_AS_OF_MAX_DAYS_AHEAD,
            what=what,
        )
    except ImplausibleDay as exc:
        raise AsOfError(str(exc)) from None
