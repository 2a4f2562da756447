"""Days a person gives (a dunning run's as-of day, a credit note's date): the plausible window.

A day far outside it is a typo or an attack, never a business date: `overdue --as-of 9999-12-31`
once wrote final notices with a million in interest on 1,384.57 open, `--as-of 0001-01-01` ended
in an OverflowError, and a credit note could be dated 9999-12-31. One sentence says why instead.
"""

from __future__ import annotations

from datetime import date, timedelta

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
