"""A dunning run's as-of day is a plausible day: from 2000-01-01 to a week after today.

`overdue --as-of 9999-12-31` once wrote final notices with 1,134,499.53 interest on 1,384.57 open,
and `--as-of 0001-01-01` ended in an OverflowError traceback. Both are one sentence now, and
nothing is written.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest

from invoice_pipelines.cli import main
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.overdue.domain.pipeline import run_overdue
from invoice_pipelines.overdue.domain.scheduling import AsOfError, parse_as_of
from invoice_pipelines_tests.overdue.helpers import customer, invoice, levels_by_invoice

TODAY = date(2026, 11, 25)


@pytest.mark.parametrize(
    "as_of",
    ["9999-12-31", "0001-01-01", "1999-12-31", "2026-12-03", "9999-12-31T23:59:59+00:00",
     "0001-01-01T00:00:00+01:00"],
)  # fmt: skip
def test_an_implausible_as_of_is_one_sentence(as_of: str) -> None:
    with pytest.raises(AsOfError) as caught:
        parse_as_of(as_of, today=TODAY)

    message = str(caught.value)
    assert message.startswith(f"as_of {as_of.split('T')[0]}")
    assert message.endswith(".") and "\n" not in message


def test_the_window_reaches_a_week_ahead() -> None:
    assert parse_as_of("2026-12-02", today=TODAY) == (None, date(2026, 12, 2))
    assert parse_as_of("2000-01-01", today=TODAY) == (None, date(2000, 1, 1))
    tick = datetime(2026, 11, 25, 6, tzinfo=UTC)
    assert parse_as_of(tick.isoformat(), today=TODAY) == (tick, None)
    with pytest.raises(AsOfError, match=r"as_of 2026-12-03 is more than 7 days after today"):
        parse_as_of("2026-12-03", today=TODAY)


def test_overdue_as_of_far_ahead_or_long_ago_notices_nothing(db, monkeypatch, capsys) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(timezone="UTC")
    invoice(db, org, customer(db, org), date(2026, 10, 1))
    today = datetime.now(UTC).date()

    assert main(["overdue", "--org", org["slug"], "--as-of", "9999-12-31"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"invoice-pipelines overdue: --as-of 9999-12-31 is more than 7 days after today "
        f"({today.isoformat()}).\n"
    )
    assert main(["overdue", "--org", org["slug"], "--as-of", "0001-01-01"]) == 2
    assert capsys.readouterr().err == (
        "invoice-pipelines overdue: --as-of 0001-01-01 is before 2000-01-01, "
        "earlier than anything this system keeps.\n"
    )
    ahead = (today + timedelta(days=8)).isoformat()
    assert main(["overdue", "--org", org["slug"], "--as-of", ahead]) == 2
    assert levels_by_invoice(db, org) == {}

    assert main(["overdue", "--org", org["slug"], "--as-of", today.isoformat(), "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "SUCCESS"


def test_run_overdue_fails_a_day_before_2000_without_a_traceback(db) -> None:
    org = db.new_organization(timezone="UTC")
    invoice(db, org, customer(db, org), date(2026, 10, 1))

    result = run_overdue(db.engine, find_organization(db.engine, org["slug"]), on=date(1, 1, 1))

    assert (result.status, result.notices_created) == ("FAILED", 0)
    assert result.errors == [
        {
            "message": "as_of 0001-01-01 is before 2000-01-01, earlier than anything this system keeps."
        }
    ]
    assert levels_by_invoice(db, org) == {}
