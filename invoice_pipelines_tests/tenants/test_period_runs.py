"""A period's runs requested a few a tick (issue 76: at 10,000 organizations the month-end's
schedules submitted 100 runs in one tick of 100-125 s): the cursor's rules
(lib/periods.py) and the sensor the factory makes (lib/sensors.py
`period_runs_sensor`), through the monthly exports' and the dunning's sensors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import instance_for_test

from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.exports.sensors import MONTH_END, build_monthly_exports_sensor
from invoice_pipelines.lib.partitions import (
    ORGANIZATIONS_PARTITIONS_NAME,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)
from invoice_pipelines.lib.periods import Cadence, Progress, step
from invoice_pipelines.overdue.domain.scheduling import schedule_settings
from invoice_pipelines.overdue.sensors import build_dunning_sensor, dunning_cadence
from invoice_pipelines.tenants.domain.lifecycle import suspend_organization
from invoice_pipelines_tests.tenants.period_ticks import every_tick, tick

BERLIN = ZoneInfo("Europe/Berlin")
# the exports' tick of October 2026: the 1st of November at 03:00 in Berlin (CET)
NOVEMBER_1 = datetime(2026, 11, 1, 3, 0, tzinfo=BERLIN)
DECEMBER_1 = datetime(2026, 12, 1, 3, 0, tzinfo=BERLIN)


class Plans:
    """A plan that cuts every period into `chunks` chunks and counts its calls."""

    def __init__(self, chunks: int) -> None:
        self.chunks, self.calls = chunks, []

    def __call__(self, tick: datetime) -> list[tuple[str, str]]:
        self.calls.append(tick)
        return [(f"o{n}a", f"o{n}b") for n in range(self.chunks)]


def _run(progress, due, plan, per_tick=8):
    """Ticks from `progress` while they request something: the numbers each requested, and the
    cursor (read back from its JSON, as the daemon stores it) after the last."""
    asked = []
    while True:
        done = step(progress, due, plan, per_tick)
        progress = Progress.read(done.progress.write(), MONTH_END)
        if not done.chunks:
            return asked, progress
        asked.append([number for number, _, _ in done.chunks])


def test_a_month_is_due_from_its_tick_on_in_the_schedules_zone():
    assert MONTH_END.due(datetime(2026, 11, 1, 2, 0, tzinfo=UTC)) == NOVEMBER_1  # 03:00 CET
    assert MONTH_END.due(datetime(2026, 11, 1, 1, 59, 59, tzinfo=UTC)) == datetime(
        2026, 10, 1, 3, 0, tzinfo=BERLIN
    )
    assert MONTH_END.after(NOVEMBER_1) == DECEMBER_1
    # an interval dunning every 5 hours: Dagster ticks hourly, the hours that count are due
    every_five = dunning_cadence(
        schedule_settings(
            {
                "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE": "interval",
                "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE": "5",
            }
        )
    )
    due = every_five.due(datetime(2026, 11, 21, 12, 30, tzinfo=UTC))
    assert int(due.timestamp() // 3600) % 5 == 0
    assert (
        datetime(2026, 11, 21, 7, 30, tzinfo=UTC)
        < due
        <= datetime(2026, 11, 21, 12, 30, tzinfo=UTC)
    )
    assert every_five.after(due).timestamp() - due.timestamp() == 5 * 3600


def test_a_fresh_sensor_takes_what_is_due_as_done_and_requests_the_next_period():
    plan = Plans(3)
    done = step(None, NOVEMBER_1, plan, 8)
    assert done.fresh and not done.chunks and plan.calls == []
    # the same month at later ticks: nothing; December's tick: its runs
    asked, progress = _run(done.progress, NOVEMBER_1, plan)
    assert asked == [] and plan.calls == []
    asked, progress = _run(progress, DECEMBER_1, plan)
    assert asked == [[0, 1, 2]] and plan.calls == [DECEMBER_1]
    assert progress.tick == DECEMBER_1 and progress.runs == progress.requested == 3


def test_successive_ticks_request_at_most_k_each_every_run_once_from_one_plan():
    plan = Plans(20)
    asked, progress = _run(
        Progress(latest=datetime(2026, 10, 1, 3, tzinfo=BERLIN)), NOVEMBER_1, plan
    )
    assert asked == [list(range(0, 8)), list(range(8, 16)), list(range(16, 20))]
    assert plan.calls == [NOVEMBER_1]  # cut once: every tick requests the chunks of that cut
    assert (progress.requested, progress.remaining) == (20, ())


def test_a_repeated_tick_with_an_old_cursor_asks_for_the_same_runs_again():
    plan = Plans(20)
    first = step(Progress(tick=NOVEMBER_1), NOVEMBER_1, plan, 8)
    old = Progress.read(first.progress.write(), MONTH_END)
    again = [step(old, NOVEMBER_1, plan, 8) for _ in range(2)]
    # the same numbers, so the same run keys: Dagster's sensor daemon launches none of them twice
    assert (
        [n for n, _, _ in again[0].chunks]
        == [n for n, _, _ in again[1].chunks]
        == list(range(8, 16))
    )
    assert again[0].chunks == again[1].chunks


def test_a_daemon_down_over_month_ends_finishes_its_period_then_starts_the_newest():
    plan = Plans(20)
    # October's month-end stopped after 8 runs; the daemon is back in January
    stopped = step(Progress(tick=NOVEMBER_1), NOVEMBER_1, plan, 8).progress
    january = datetime(2027, 1, 1, 3, 0, tzinfo=BERLIN)
    asked, progress = _run(stopped, january, plan)
    assert asked[:2] == [list(range(8, 16)), list(range(16, 20))]
    # then January's tick (December's month is a backfill's: not caught up)
    assert asked[2:] == [list(range(0, 8)), list(range(8, 16)), list(range(16, 20))]
    assert plan.calls == [NOVEMBER_1, january]
    assert progress.tick == progress.latest == january


def test_a_cursor_set_by_hand_requests_its_period_and_counts_what_is_due_as_done():
    plan = Plans(2)
    # on December 15th a person asks for October: {"tick": "2026-11-01T03:00"}
    by_hand = Progress.read(json.dumps({"tick": "2026-11-01T03:00"}), MONTH_END)
    assert by_hand.tick == NOVEMBER_1 and not by_hand.planned
    asked, progress = _run(by_hand, DECEMBER_1, plan)
    assert asked == [[0, 1]] and plan.calls == [NOVEMBER_1]
    # November's month (due December 1st, before the cursor was set) is taken as done
    assert progress.latest == DECEMBER_1
    assert _run(progress, DECEMBER_1, plan)[0] == []


def test_a_cursor_that_is_not_the_sensors_says_what_to_write():
    for bad in ("2026-10", '{"tick": "soon"}', "[1]"):
        with pytest.raises(ValueError, match=r'set it to \{"tick": "<YYYY-MM-DDTHH:MM>"\}'):
            Progress.read(bad, MONTH_END)


def _clock(moment: datetime):
    return lambda: moment


def _ranges(results) -> list[tuple[str, str]]:
    return [
        (r.tags[PARTITION_RANGE_START_TAG], r.tags[PARTITION_RANGE_END_TAG])
        for result in results
        for r in result.run_requests
    ]


def test_the_exports_sensor_requests_every_working_organizations_month_once_a_few_a_tick(db):
    orgs = [db.new_organization() for _ in range(7)]
    slugs = [org["slug"] for org in orgs]
    suspend_organization(
        db.engine, find_organization(db.engine, slugs[2]), reason="unpaid since March", by="anna"
    )
    sensor = build_monthly_exports_sensor(
        clock=_clock(datetime(2026, 11, 3, 9, tzinfo=UTC)),
        organizations_per_run_at_least=2,
        runs_per_tick=2,
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        # a new deployment's first tick: October (due November 1st) is taken as done
        first = tick(sensor, instance, db.engine, None)
        assert not first.run_requests
        assert first.skip_reason.skip_message.startswith(
            "first tick: 2026-10 (due 2026-11-01 03:00 CET) taken as done"
        )
        assert '{"tick": "2026-11-01T03:00"}' in first.skip_reason.skip_message
        assert not tick(sensor, instance, db.engine, first.cursor).run_requests
        # a person asks for October
        results = every_tick(sensor, instance, db.engine, '{"tick": "2026-11-01T03:00"}')
    # 6 working organizations around the suspended one: 3 runs, 2 a tick
    assert [len(r.run_requests) for r in results] == [2, 1, 0]
    keys = [r.run_key for result in results for r in result.run_requests]
    assert keys == ["2026-10-batch-0", "2026-10-batch-1", "2026-10-batch-2"]
    october = [(f"2026-10|{a}", f"2026-10|{b}") for a, b in _spans(slugs, [2])]
    assert _ranges(results) == october
    assert results[-1].skip_reason.skip_message == (
        "2026-10: 3 of 3 runs requested; next: 2026-11 (due 2026-12-01 03:00 CET)"
    )


def _spans(slugs: list[str], suspended: list[int]) -> list[tuple[str, str]]:
    """Two organizations a span, around the suspended ones (by index)."""
    spans, current = [], []
    for number, slug in enumerate(slugs):
        if number in suspended or len(current) == 2:
            if current:
                spans.append((current[0], current[-1]))
            current = []
        if number not in suspended:
            current.append(slug)
    return spans + ([(current[0], current[-1])] if current else [])


def test_the_dunning_sensor_requests_its_days_runs_a_few_a_tick_and_none_for_the_suspended(db):
    orgs = [db.new_organization() for _ in range(5)]
    slugs = [org["slug"] for org in orgs]
    suspend_organization(
        db.engine, find_organization(db.engine, slugs[0]), reason="moving", by="anna"
    )
    sensor = build_dunning_sensor(
        schedule_settings({"INVOICE_PIPELINES_DUNNING_BATCH_SIZE": "1"}),
        clock=_clock(datetime(2026, 11, 21, 8, tzinfo=UTC)),
        runs_per_tick=3,
    )
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, slugs)
        # yesterday's tick was the last taken in hand: today's 00:00 (Berlin) is due
        latest = datetime(2026, 11, 20, 0, 0, tzinfo=BERLIN).isoformat()
        results = every_tick(sensor, instance, db.engine, json.dumps({"latest": latest}))
    assert [len(r.run_requests) for r in results] == [3, 1, 0]
    requests = [r for result in results for r in result.run_requests]
    assert [r.run_key for r in requests] == [f"2026-11-20T23:00-batch-{n}" for n in range(4)]
    assert _ranges(results) == [(slug, slug) for slug in slugs[1:]]
    assert {r.run_config["ops"]["dunning_notices"]["config"]["as_of"] for r in requests} == {
        "2026-11-20T23:00:00+00:00"
    }
    assert results[-1].skip_reason.skip_message.startswith(
        "2026-11-20T23:00: 4 of 4 runs requested; next: 2026-11-21T23:00"
    )


@pytest.mark.parametrize(
    ("cursor", "says"),
    [
        # October asked for without an organization: done at once, and why
        ('{"tick": "2026-11-01T03:00"}', "2026-10: 0 of 0 runs requested; no organizations yet"),
        # a cursor typed wrong is kept, and the tick says what to write
        ("2026-10", 'set it to {"tick": "<YYYY-MM-DDTHH:MM>"}'),
    ],
)
def test_a_tick_that_requests_nothing_says_why(sqlite_database, cursor, says):
    sensor = build_monthly_exports_sensor(clock=_clock(datetime(2026, 11, 3, tzinfo=UTC)))
    with instance_for_test() as instance:
        result = tick(sensor, instance, sqlite_database.engine, cursor)
    assert not result.run_requests
    assert says in result.skip_reason.skip_message


def test_cadence_reads_an_instant_in_its_zone_unless_it_has_one():
    berlin = Cadence("0 3 1 * *", "Europe/Berlin")
    assert berlin.read("2026-11-01T03:00") == NOVEMBER_1
    assert berlin.read("2026-11-01T02:00+00:00") == NOVEMBER_1
