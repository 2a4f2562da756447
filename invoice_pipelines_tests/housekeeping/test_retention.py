"""The retention rules: legal minimum, settings refused with one sentence, the calendar-year start."""

from datetime import UTC, date, datetime

import pytest

from invoice_pipelines.core.retention import (
    RetentionSettings,
    RetentionSettingsError,
    retention_settings,
)
from invoice_pipelines.housekeeping.domain.retention import (
    LEGAL_MINIMUM_YEARS,
    cutoff,
    may_remove,
    removable_from,
)


def test_default_is_the_legal_period_of_each_class():
    # booking documents (the uploads' originals) 8 years, books (the export files) 10
    assert LEGAL_MINIMUM_YEARS == 8
    assert retention_settings("acme", {}) == RetentionSettings(8, 10)
    assert retention_settings("acme", {"retention": {"exports_years": 12}}) == RetentionSettings(
        8, 12
    )
    held = retention_settings("acme", {"retention": {"legal_hold": True}})
    assert held == RetentionSettings(8, 10, legal_hold=True)


@pytest.mark.parametrize(
    ("block", "words"),
    [
        ({"uploads_years": 6}, ["'acme'", "retention.uploads_years", "6 years", "minimum of 8"]),
        ({"exports_years": 9}, ["'acme'", "retention.exports_years", "9 years", "minimum of 10"]),
        ({"legal_hold": "yes"}, ["'acme'", "retention.legal_hold", "not true or false"]),
        ({"legal_hold": "true"}, ["'acme'", "retention.legal_hold is 'true'", "not true or false"]),
        ({"legal_hold": None}, ["retention.legal_hold is None", "not true or false"]),
        ({"exports_years": None}, ["retention.exports_years is None", "not a whole number"]),
        ({"exports_years": 15.0}, ["retention.exports_years is 15.0", "not a whole number"]),
        ({"exports_years": "10"}, ["retention.exports_years", "not a whole number"]),
        ({"uploads_years": True}, ["retention.uploads_years", "not a whole number"]),
        ({"upload_years": 10}, ["retention.upload_years", "not a setting"]),
        ({"uploads_years": 1000}, ["retention.uploads_years", "more than 100"]),
    ],
)
def test_a_bad_setting_is_refused_with_one_sentence(block, words):
    with pytest.raises(RetentionSettingsError) as refused:
        retention_settings("acme", {"retention": block})
    message = str(refused.value)
    assert message.count(". ") == 0 and message.endswith("nothing of it was removed.")
    for word in words:
        assert word in message


def test_the_period_starts_at_the_end_of_the_documents_calendar_year():
    # an invoice of March 2015 and one of December 2015 may both go from 1 January 2026 on
    assert removable_from(2015, 10) == date(2026, 1, 1)
    limit = cutoff(date(2026, 1, 1), 10, "Europe/Berlin")
    assert may_remove([datetime(2015, 3, 1, tzinfo=UTC)], limit)
    assert may_remove([date(2015, 12, 31)], limit)
    assert not may_remove([date(2016, 1, 1)], limit)
    # on the last day of 2025 nothing of 2015 may go yet, however early in 2015 it was
    assert not may_remove([date(2015, 1, 2)], cutoff(date(2025, 12, 31), 10, "Europe/Berlin"))


def test_the_year_is_the_organizations_local_year_and_the_latest_date_counts():
    limit = cutoff(date(2026, 6, 1), 10, "Europe/Berlin")
    # 23:30 UTC on 31 December 2015 is already 2016 in Berlin: kept
    assert not may_remove([datetime(2015, 12, 31, 23, 30, tzinfo=UTC)], limit)
    assert may_remove([datetime(2015, 12, 31, 22, 30, tzinfo=UTC)], limit)
    # received in 2014, booked in 2016: the booking year counts
    assert not may_remove([date(2014, 5, 1), datetime(2016, 2, 1, tzinfo=UTC)], limit)
    assert may_remove([None, date(2014, 5, 1)], limit)
    # an unknown zone: the earliest New Year anywhere, never later than a real zone's
    assert cutoff(date(2026, 6, 1), 10, "Mars/Olympus").instant <= limit.instant
