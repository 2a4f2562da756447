"""What may be removed when: the retention rules as housekeeping applies them, in plain Python (no
SQL, no Dagster).

The periods are the law's per class of record, written once in `core/retention.py`: booking
documents (the originals of received invoices among them: the uploads) 8 years, books and records
(the DATEV and CSV export files) 10 years (§ 147 (1), (3) AO and § 257 HGB as amended from 2025).
An organization may keep a class longer (its `settings["retention"]`), never shorter: a setting
below the class's legal period is refused with one sentence, never silently raised or used. A
legal hold (`settings["retention"]["legal_hold"]: true`, during an audit or a lawsuit) keeps
everything of the organization. How the settings are read is core/retention.py's
`retention_settings`, the one reading the offboarding's deletion uses too.

The period does not run from the upload day: it begins at the end of the calendar year in which
the document was received or made, or the booking was made (§147(4) AO). So a document of year Y
with a retention of N years may go from 1 January of Y + N + 1 on, in the organization's own time
zone; where a document has several dates (received, invoice date, booked), the latest counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from invoice_pipelines.core.retention import LEGAL_YEARS, SETTING_OF

# each setting's legal period (the settings are read by core/retention.py's retention_settings)
LEGAL_MINIMUM = {SETTING_OF[record_class]: years for record_class, years in LEGAL_YEARS.items()}
# the shortest period of any class: nothing younger is looked at
LEGAL_MINIMUM_YEARS = min(LEGAL_MINIMUM.values())


def last_retained_year(today: date, years: int) -> int:
    """The latest calendar year whose documents may go on `today`: a document of year Y is kept
    until the end of year Y + years."""
    return today.year - years - 1


def removable_from(document_year: int, years: int) -> date:
    """The first day a document of `document_year` may be removed."""
    return date(document_year + years + 1, 1, 1)


@dataclass(frozen=True)
class Cutoff:
    """Every date of a document must lie before these for it to go."""

    instant: (
        datetime  # UTC: 1 January of the first year still kept, 00:00 in the organization's zone
    )
    day: date  # the same day, for calendar dates (invoice date)


def cutoff(today: date, years: int, timezone: str) -> Cutoff:
    """The cutoff for `today` (in the organization's time zone) and a retention of `years`."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # unknown zone: the earliest New Year on Earth, so nothing goes that any zone would keep
        zone = ZoneInfo("Etc/GMT-14")
    first_kept = date(last_retained_year(today, years) + 1, 1, 1)
    # a document stamped on the last evening of a year in UTC may already be the next local year:
    # comparing with local midnight keeps it
    local = datetime(first_kept.year, 1, 1, tzinfo=zone)
    return Cutoff(local.astimezone(UTC), first_kept)


def may_remove(dates: list[datetime | date | None], limit: Cutoff) -> bool:
    """Whether a document with these dates (received, issued, booked; None: unknown) may go."""
    for value in dates:
        if value is None:
            continue
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            if moment >= limit.instant:
                return False
        elif value >= limit.day:
            return False
    return True
