"""The months exports book: a month's bounds, where a month stands today, and the range of
months the export assets have partitions for. The exports area partitions by them; the intake's
check names the documents no partition will ever book. Plain Python (and one setting)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from invoice_pipelines.settings import env

START_MONTH_SETTING = "INVOICE_PIPELINES_EXPORT_START_MONTH"


def month_bounds(period: str) -> tuple[date, date]:
    """'2026-11' -> (2026-11-01, 2026-12-01): first day and the day after the month."""
    year, month = (int(p) for p in period.split("-"))
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def month_state(period: str, today: date | None = None) -> str:
    """ "over", "running" or "future": where a month YYYY-MM stands on `today` (UTC, as the
    month partitions count)."""
    today = today or datetime.now(UTC).date()
    running = f"{today:%Y-%m}"
    if period < running:
        return "over"
    return "running" if period == running else "future"


def first_export_month() -> str:
    """The first month the export assets have a partition for (the setting, as YYYY-MM)."""
    return f"{datetime.strptime(env(START_MONTH_SETTING), '%Y-%m'):%Y-%m}"


def export_months() -> tuple[str, str]:
    """The first month the export assets have a partition for and the last one they will have
    once the running month is over (the running month itself: its documents wait for it)."""
    first = first_export_month()
    return first, max(first, f"{datetime.now(UTC):%Y-%m}")
