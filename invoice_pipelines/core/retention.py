"""How long each class of record is kept: the one retention rule (plain Python, no SQL, no
Dagster), for housekeeping, the organizations' offboarding and the tax-audit export alike.

Since 2025 (Bürokratieentlastungsgesetz IV, § 147 (3) AO and § 257 (4) HGB as amended) booking
documents (Buchungsbelege: invoices received and issued, credit notes, their originals and the
documents we wrote for them) are kept 8 years, books and records (the bookings, the DATEV and CSV
export files, the audit trail) 10 years. Each period begins at the end of the calendar year of
the record (§ 147 (4) AO): a document of 2025 is kept through 31 December 2033 and may go from
1 January 2034. A legal hold (an audit, a lawsuit) keeps everything of the organization,
whatever the period says. An organization may keep a class longer, never shorter.

The organization's own periods and hold are its settings JSON, `{"retention": {"uploads_years": 8,
"exports_years": 10, "legal_hold": false}}` (uploads: its booking documents; exports: its books,
the audit trail among them). `retention_settings` reads them strictly, for housekeeping and the
offboarding's deletion alike: a hold that is not a JSON boolean, a period that is not a whole
number of years from the class's legal period up, or a key we do not know is refused with one
sentence naming the setting, never ignored or defaulted, and nothing is removed by it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


class RecordClass(StrEnum):
    BOOKING_DOCUMENT = "booking_document"
    BOOK = "book"


# the years the law sets, per class
LEGAL_YEARS: dict[RecordClass, int] = {RecordClass.BOOKING_DOCUMENT: 8, RecordClass.BOOK: 10}

# what each class holds, as the docs and housekeeping's report name it
HOLDS: dict[RecordClass, str] = {
    RecordClass.BOOKING_DOCUMENT: "invoices received and issued, credit notes, their originals "
    "and documents (§ 147 (1) no. 4 AO, 8 years)",
    RecordClass.BOOK: "books and records: bookings, DATEV and CSV export files, the audit trail "
    "(§ 147 (1) no. 1 AO, 10 years)",
}


# the organization's setting of each class's period, and of its hold
SETTING_OF: dict[RecordClass, str] = {
    RecordClass.BOOKING_DOCUMENT: "uploads_years",
    RecordClass.BOOK: "exports_years",
}
SETTINGS = tuple(SETTING_OF.values())
HOLD = "legal_hold"
# a guard against typos (100 instead of 10 keeps everything, 1000 overflows a date)
MAXIMUM_YEARS = 100


class RetentionSettingsError(ValueError):
    """An organization's retention setting that cannot be used (one sentence for people)."""


@dataclass(frozen=True)
class RetentionSettings:
    """An organization's retention: each class's period in years (the law's unless it keeps the
    class longer) and whether a legal hold keeps everything."""

    uploads_years: int = LEGAL_YEARS[RecordClass.BOOKING_DOCUMENT]
    exports_years: int = LEGAL_YEARS[RecordClass.BOOK]
    legal_hold: bool = False

    def years(self, record_class: RecordClass) -> int:
        return getattr(self, SETTING_OF[record_class])


def retention_settings(organization: str, settings: Mapping | None) -> RetentionSettings:
    """The retention of `organization` from its settings JSON (`{"retention": {...}}`).

    Missing values are the class's legal period and no hold; anything else that is not a whole
    number of years from that period up, or a hold that is not true or false, is refused
    (`RetentionSettingsError`), naming the organization and the setting.
    """
    block = (settings or {}).get("retention")
    if block is None:
        return RetentionSettings()
    if not isinstance(block, dict):
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention must be an object like "
            '{"uploads_years": 8, "exports_years": 10, "legal_hold": false}; nothing of it was '
            "removed."
        )
    unknown = sorted(set(block) - {*SETTINGS, HOLD})
    if unknown:
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention.{unknown[0]} is not a setting "
            f"(known: {', '.join((*SETTINGS, HOLD))}); nothing of it was removed."
        )
    hold = block.get(HOLD, False)
    if not isinstance(hold, bool):
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention.{HOLD} is {hold!r}, not true or "
            "false; nothing of it was removed."
        )
    years = {
        name: _setting_years(organization, record_class, block[name])
        if name in block
        else LEGAL_YEARS[record_class]
        for record_class, name in SETTING_OF.items()
    }
    return RetentionSettings(**years, legal_hold=hold)


def _setting_years(organization: str, record_class: RecordClass, value) -> int:
    name, minimum = SETTING_OF[record_class], LEGAL_YEARS[record_class]
    if isinstance(value, bool) or not isinstance(value, int):
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention.{name} is {value!r}, not a "
            "whole number of years; nothing of it was removed."
        )
    if value < minimum:
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention.{name} is {value} years, "
            f"below the legal minimum of {minimum} years for "
            f"{record_class.value.replace('_', ' ')}s (GoBD, §147 AO); nothing of it was removed."
        )
    if value > MAXIMUM_YEARS:
        raise RetentionSettingsError(
            f"Organization {organization!r}: settings retention.{name} is {value} years, "
            f"more than {MAXIMUM_YEARS}; nothing of it was removed."
        )
    return value


def kept_through(record_class: RecordClass, year: int, years: int | None = None) -> date:
    """The last day a record of `year` is kept: 31 December of `year` + its period (`years`, the
    organization's own when longer, else the law's)."""
    return date(year + _years(record_class, years), 12, 31)


def deletable_from(record_class: RecordClass, year: int, years: int | None = None) -> date:
    """The first day a record of `year` may be removed: 1 January after `kept_through`."""
    return date(year + _years(record_class, years) + 1, 1, 1)


@dataclass(frozen=True)
class Decision:
    """Whether one record may go today, and the sentence that says why (for the report)."""

    remove: bool
    reason: str


def decide(
    record_class: RecordClass,
    year: int,
    today: date,
    *,
    legal_hold: bool = False,
    years: int | None = None,
) -> Decision:
    """May a record of `record_class` dated in `year` be removed on `today`?"""
    until = kept_through(record_class, year, years)
    if legal_hold:
        return Decision(False, "legal hold: nothing of the organization is removed")
    if today <= until:
        return Decision(
            False,
            f"{record_class.value} of {year}: kept through {until.isoformat()} "
            f"({_years(record_class, years)} years from the end of {year})",
        )
    return Decision(True, f"{record_class.value} of {year}: kept through {until.isoformat()}, over")


def _years(record_class: RecordClass, years: int | None) -> int:
    legal = LEGAL_YEARS[record_class]
    return legal if years is None else max(legal, years)
