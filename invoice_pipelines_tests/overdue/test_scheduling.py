"""SCHEDULER_* settings: good values make the schedule, bad ones one message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines.overdue.scheduling import schedule_settings
from invoice_pipelines.settings import ConfigError


def _settings(**values):
    base = {
        "SCHEDULER_SCHEDULE_TYPE": "cron",
        "SCHEDULER_SCHEDULE_VALUE": "0 0 * * *",
        "SCHEDULER_BATCH_SIZE": "100",
        "SCHEDULER_TIMEZONE": "UTC",
    }
    return schedule_settings({**base, **values})


def test_the_default_is_daily_at_midnight_utc():
    settings = schedule_settings({})
    assert (settings.cron, settings.timezone, settings.batch_size) == ("0 0 * * *", "UTC", 100)
    assert settings.period() == timedelta(days=1)


@settings(deadline=None)
@given(hours=st.integers(min_value=1, max_value=24 * 14))
def test_every_interval_of_one_hour_or_more_runs_exactly_that_often(hours):
    settings = _settings(SCHEDULER_SCHEDULE_TYPE="interval", SCHEDULER_SCHEDULE_VALUE=str(hours))
    assert settings.period() == timedelta(hours=hours)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ticks = [start + timedelta(hours=h) for h in range(24 * 30)]
    runs = [t for t in ticks if settings.runs_at(t) and _matches_cron(settings.cron, t)]
    gaps = {b - a for a, b in zip(runs, runs[1:], strict=False)}
    assert gaps <= {timedelta(hours=hours)}


def _matches_cron(cron: str, moment: datetime) -> bool:
    minute, hour, *_ = cron.split()
    if minute != "0" or moment.minute:
        return False
    if hour == "*":
        return True
    if hour.startswith("*/"):
        return moment.hour % int(hour[2:]) == 0
    return moment.hour == int(hour)


@settings(deadline=None)
@given(
    hours=st.integers(max_value=0)
    | st.text(min_size=1, max_size=8).filter(lambda s: not s.strip().isdigit())
)
def test_an_interval_below_one_hour_or_not_whole_hours_is_refused(hours):
    with pytest.raises(ConfigError, match="^SCHEDULER_SCHEDULE_VALUE must"):
        _settings(SCHEDULER_SCHEDULE_TYPE="interval", SCHEDULER_SCHEDULE_VALUE=str(hours))


@settings(deadline=None)
@given(
    minute=st.integers(min_value=0, max_value=59),
    hour=st.integers(min_value=0, max_value=23),
    weekday=st.sampled_from(["*", "1-5", "0", "MON"]),
)
def test_valid_cron_expressions_are_taken_as_they_are(minute, hour, weekday):
    expression = f"{minute} {hour} * * {weekday}"
    assert _settings(SCHEDULER_SCHEDULE_VALUE=expression).cron == expression


@pytest.mark.parametrize("expression", ["61 * * * *", "0 25 * * *", "every day", "* * *", ""])
def test_bad_cron_expressions_are_refused(expression):
    with pytest.raises(ConfigError, match="^SCHEDULER_SCHEDULE_VALUE .* is not a valid cron"):
        _settings(SCHEDULER_SCHEDULE_VALUE=expression)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"SCHEDULER_TIMEZONE": "Mars/Olympus"},
            "^SCHEDULER_TIMEZONE 'Mars/Olympus' is not a known",
        ),
        (
            {"SCHEDULER_SCHEDULE_TYPE": "weekly"},
            "^SCHEDULER_SCHEDULE_TYPE must be cron or interval",
        ),
        ({"SCHEDULER_BATCH_SIZE": "0"}, "^SCHEDULER_BATCH_SIZE must be at least 1"),
        ({"SCHEDULER_BATCH_SIZE": "ten"}, "^SCHEDULER_BATCH_SIZE must be a whole number"),
    ],
)
def test_other_bad_values_name_their_variable(values, message):
    with pytest.raises(ConfigError, match=message):
        _settings(**values)


def test_a_bad_value_stops_the_code_location_from_loading(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", "import invoice_pipelines.overdue.defs"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "SCHEDULER_SCHEDULE_TYPE": "interval", "SCHEDULER_SCHEDULE_VALUE": "0"},
        cwd=tmp_path,
    )
    assert completed.returncode != 0
    assert (
        "SCHEDULER_SCHEDULE_VALUE must be at least 1 hour for an interval schedule, got '0'"
        in completed.stderr.splitlines()[-1]
    )


_FIELD = st.sampled_from(
    ["*", "0", "5", "*/15", "1-5", "1,3", "30", "31", "59", "61", "2", "L", "MON", "*/0", "x", "?"]
)


@pytest.mark.filterwarnings("ignore:Found a cron schedule with an interval greater")
@settings(deadline=None, max_examples=300)
@given(fields=st.lists(_FIELD, min_size=4, max_size=6))
def test_a_cron_expression_is_taken_exactly_when_dagster_can_schedule_it(fields):
    from dagster import DagsterInvalidDefinitionError, ScheduleDefinition

    expression = " ".join(fields)
    try:
        ScheduleDefinition(name="probe", cron_schedule=expression, job_name="probe_job")
        dagster_takes_it = True
    except DagsterInvalidDefinitionError:
        dagster_takes_it = False
    try:
        _settings(SCHEDULER_SCHEDULE_VALUE=expression)
        we_take_it = True
    except ConfigError:
        we_take_it = False
    assert we_take_it == dagster_takes_it, expression
