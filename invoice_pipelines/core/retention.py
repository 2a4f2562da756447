"""How long each class of record is kept: the one retention rule (plain Python, no SQL, no
Dagster), for housekeeping, the organizations' offboarding and the tax-audit export alike.

Since 2025 (Bürokratieentlastungsgesetz IV, § 147 (3) AO and § 257 (4) HGB as amended) booking
documents (Buchungsbelege: invoices received and issued, credit notes, their originals and the
documents we wrote for them) are kept 8 years, books and records (the bookings, the DATEV and CSV
export files, the audit trail) 10 years. Each period begins at the end of the calendar year of
the record (§ 147 (4) AO): a document of 2025 is kept through 31 December 2033 and may go from
1 January 2034. A legal hold (an audit, a lawsuit) keeps everything of the organization,
whatever the period says. An organization may keep a class longer, never shorter.
"""

from __future__ import annotations

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
