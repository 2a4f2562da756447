"""INVOICE_PIPELINES_DUNNING_* settings: good values make the schedule, bad ones one message naming
the variable; the old SCHEDULER_* names still work, with a deprecation message."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from invoice_pipelines import settings as settings_module
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PER_RUN
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.settings import RENAMED, ConfigError, env_var_or_default


def _settings(**values):
    base = {
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE": "cron",
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE": "0 0 * * *",
        "INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "100",
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE": "UTC",
    }
    return schedule_settings({**base, **values})


def test_the_default_is_daily_at_midnight_in_every_schedules_zone():
    settings = schedule_settings({})
    # organizations per run as the monthly exports cut them (lib/partitions.py, issue 76)
    assert (settings.cron, settings.timezone, settings.batch_size) == (
        "0 0 * * *",
        "Europe/Berlin",
        ORGANIZATIONS_PER_RUN,
    )
    assert settings.period() == timedelta(days=1)


@settings(deadline=None)
@given(hours=st.integers(min_value=1, max_value=24 * 14))
def test_every_interval_of_one_hour_or_more_runs_exactly_that_often(hours):
    settings = _settings(
        INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE="interval",
        INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE=str(hours),
    )
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
    with pytest.raises(ConfigError, match="^INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE must"):
        _settings(
            INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE="interval",
            INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE=str(hours),
        )


@settings(deadline=None)
@given(
    minute=st.integers(min_value=0, max_value=59),
    hour=st.integers(min_value=0, max_value=23),
    weekday=st.sampled_from(["*", "1-5", "0", "MON"]),
)
def test_valid_cron_expressions_are_taken_as_they_are(minute, hour, weekday):
    expression = f"{minute} {hour} * * {weekday}"
    assert _settings(INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE=expression).cron == expression


@pytest.mark.parametrize("expression", ["61 * * * *", "0 25 * * *", "every day", "* * *", ""])
def test_bad_cron_expressions_are_refused(expression):
    with pytest.raises(
        ConfigError, match="^INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE .* is not a valid cron"
    ):
        _settings(INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE=expression)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE": "Mars/Olympus"},
            "^INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE 'Mars/Olympus' is not a known",
        ),
        (
            {"INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE": "weekly"},
            "^INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE must be cron or interval",
        ),
        (
            {"INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "0"},
            "^INVOICE_PIPELINES_DUNNING_BATCH_SIZE must be at least 1",
        ),
        (
            {"INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "ten"},
            "^INVOICE_PIPELINES_DUNNING_BATCH_SIZE must be a whole number",
        ),
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
        env={
            **os.environ,
            "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE": "interval",
            "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE": "0",
        },
        cwd=tmp_path,
    )
    assert completed.returncode != 0
    assert (
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE must be at least 1 hour for an interval schedule, got '0'"
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
        _settings(INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE=expression)
        we_take_it = True
    except ConfigError:
        we_take_it = False
    assert we_take_it == dagster_takes_it, expression


@pytest.fixture
def fresh_deprecations(monkeypatch):
    """No schedule variable in the process environment and no deprecation logged yet."""
    for new, old in RENAMED.items():
        monkeypatch.delenv(new, raising=False)
        monkeypatch.delenv(old, raising=False)
    monkeypatch.setattr(settings_module, "_deprecations_logged", set())


def _deprecations(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_the_old_scheduler_names_still_work_with_one_message_each_naming_the_new_one(
    fresh_deprecations, caplog
):
    old = {
        "SCHEDULER_SCHEDULE_TYPE": "interval",
        "SCHEDULER_SCHEDULE_VALUE": "5",
        "SCHEDULER_BATCH_SIZE": "7",
        "SCHEDULER_TIMEZONE": "Europe/Berlin",
    }
    with caplog.at_level(logging.WARNING):
        first = schedule_settings(old)
        second = schedule_settings(old)
    assert first == second
    assert (first.kind, first.interval_hours, first.batch_size, first.timezone) == (
        "interval",
        5,
        7,
        "Europe/Berlin",
    )
    assert sorted(_deprecations(caplog)) == [
        "SCHEDULER_BATCH_SIZE is deprecated: rename it to INVOICE_PIPELINES_DUNNING_BATCH_SIZE "
        "(the old name still works for now).",
        "SCHEDULER_SCHEDULE_TYPE is deprecated: rename it to "
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE (the old name still works for now).",
        "SCHEDULER_SCHEDULE_VALUE is deprecated: rename it to "
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE (the old name still works for now).",
        "SCHEDULER_TIMEZONE is deprecated: rename it to "
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE (the old name still works for now).",
    ]


def test_the_new_names_are_read_without_a_message(fresh_deprecations, caplog):
    with caplog.at_level(logging.WARNING):
        settings = schedule_settings(
            {
                "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE": "30 6 * * 1-5",
                "INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "3",
                "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE": "Europe/Vienna",
            }
        )
    assert (settings.cron, settings.batch_size, settings.timezone) == (
        "30 6 * * 1-5",
        3,
        "Europe/Vienna",
    )
    assert _deprecations(caplog) == []


def test_when_both_names_are_set_and_differ_the_new_one_wins_and_the_message_says_so(
    fresh_deprecations, caplog
):
    with caplog.at_level(logging.WARNING):
        settings = schedule_settings(
            {"INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "50", "SCHEDULER_BATCH_SIZE": "0"}
        )
    assert settings.batch_size == 50
    assert _deprecations(caplog) == [
        "SCHEDULER_BATCH_SIZE is deprecated and ignored: INVOICE_PIPELINES_DUNNING_BATCH_SIZE is "
        "also set and wins ('50', not '0'); remove SCHEDULER_BATCH_SIZE."
    ]


def test_when_both_names_are_set_to_the_same_value_the_message_asks_to_remove_the_old(
    fresh_deprecations, caplog
):
    with caplog.at_level(logging.WARNING):
        settings = schedule_settings(
            {
                "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE": "Asia/Tokyo",
                "SCHEDULER_TIMEZONE": "Asia/Tokyo",
            }
        )
    assert settings.timezone == "Asia/Tokyo"
    assert _deprecations(caplog) == [
        "SCHEDULER_TIMEZONE is deprecated and INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE is set "
        "to the same value: remove SCHEDULER_TIMEZONE."
    ]


def test_a_bad_value_under_the_old_name_is_named_by_the_variable_that_was_set(fresh_deprecations):
    with pytest.raises(ConfigError, match="^SCHEDULER_BATCH_SIZE must be at least 1, got '0'"):
        schedule_settings({"SCHEDULER_BATCH_SIZE": "0"})


def test_a_resource_field_reads_the_old_name_through_its_env_var(fresh_deprecations, monkeypatch):
    from dagster import EnvVar

    monkeypatch.setenv("SCHEDULER_TIMEZONE", "Europe/Paris")
    assert env_var_or_default("INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE") == EnvVar(
        "SCHEDULER_TIMEZONE"
    )
    monkeypatch.setenv("INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE", "Europe/Rome")
    assert env_var_or_default("INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE") == EnvVar(
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE"
    )


def test_the_code_location_loads_with_the_old_names_and_says_once_what_to_rename(tmp_path):
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in RENAMED and key not in RENAMED.values()
    }
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "from invoice_pipelines.overdue import defs, sensors\n"
            "from invoice_pipelines.overdue.domain import scheduling\n"
            "scheduling.schedule_settings()\n"
            "print(sensors.SCHEDULE.interval_hours, sensors.SCHEDULE.batch_size)",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**environment, "SCHEDULER_SCHEDULE_TYPE": "interval", "SCHEDULER_SCHEDULE_VALUE": "5"},
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["5", str(ORGANIZATIONS_PER_RUN)]
    messages = [line for line in completed.stderr.splitlines() if "deprecated" in line]
    assert messages == [
        "SCHEDULER_SCHEDULE_TYPE is deprecated: rename it to "
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE (the old name still works for now).",
        "SCHEDULER_SCHEDULE_VALUE is deprecated: rename it to "
        "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE (the old name still works for now).",
    ]
