"""`invoice-pipelines bench month-end` at a tiny size (3 organizations, 2 + 2 invoices each): the
seeded month, the one-process month-end, then the month-end's sensors started as on the 1st (their
cursors set through the webserver) and ticked by a real daemon beside a code server and webserver
on PostgreSQL storage. No timing is asserted: the test checks that what the bench reports is what
the instance and the database hold (the runs it counts are the sensors' runs in Dagster's storage, every organization's month exported and dunned by
them, the same notices as in one process) and that the figures the issue asks for are there."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from invoice_pipelines.cli import main
from invoice_pipelines.lib.periods import Progress
from invoice_pipelines_devtools.bench import add_scenarios
from invoice_pipelines_devtools.bench.month_end import (
    DUNNING_SENSOR,
    EXPORT_SENSOR,
    first_of_month,
    month_end_ticks,
    start_cursor,
)

REQUIRED = (
    "organizations",
    "runs",
    "failed_runs",
    "ratio_to_one_process",
    "intake_p50_s",
    "slowest_tick_s",
    "slowest_page_s",
    "peak_rss_mb",
)


def test_bench_month_end_takes_organizations_and_invoices_a_month():
    parser = argparse.ArgumentParser()
    add_scenarios(parser)
    args = parser.parse_args(["month-end", "--orgs", "10000", "--per-month", "5"])
    assert (args.orgs, args.per_month) == (10000, 5)


def test_the_month_end_is_the_first_of_the_next_month_at_each_sensors_tick_in_berlin():
    assert first_of_month("2026-10") == date(2026, 11, 1)
    assert first_of_month("2026-12") == date(2027, 1, 1)
    # the dunning at 00:00 in Berlin (CET, UTC+1: 23:00 UTC the day before), the exports at 03:00
    ticks = month_end_ticks(date(2026, 11, 1))
    assert ticks[DUNNING_SENSOR].astimezone(UTC) == datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    assert ticks[EXPORT_SENSOR].astimezone(UTC) == datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def test_the_cursor_the_bench_sets_is_the_one_a_person_sets_to_start_a_period():
    from invoice_pipelines.exports.sensors import MONTH_END

    tick = month_end_ticks(date(2026, 11, 1))[EXPORT_SENSOR]
    progress = Progress.read(start_cursor(tick), MONTH_END)
    assert progress.tick == tick and not progress.planned


@pytest.mark.slow
def test_a_tiny_month_end_exports_and_duns_every_organization_through_the_daemon(
    pg_scratch_factory, monkeypatch, capsys
):
    # the bench makes its scratch databases on the server of this (empty) test database
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", pg_scratch_factory())
    # one drop, as the month-end starts (each further one is an intake run more, and the one in
    # flight when the runs end is waited for)
    argv = ["bench", "month-end", "--orgs", "3", "--per-month", "2", "--drop-every", "600"]
    assert main([*argv, "--pages-every", "5", "--timeout", "600", "--keep"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    print(json.dumps(result, indent=1))  # shown with a failure: what the bench saw
    scratch = result["scratch"]
    try:
        assert all(key in result for key in REQUIRED), sorted(result)
        assert result["organizations"] == 3
        assert result["failed_runs"] == 0 and result["runs"] >= 2
        assert result["runs_by_job"].keys() == {"export_job", "dunning_job"}
        app, dagster = (database_url(scratch, kind) for kind in ("app", "dagster"))
        # the runs the bench counts are the month-end sensors' runs in Dagster's storage
        sensors = (EXPORT_SENSOR, DUNNING_SENSOR)
        with create_engine(dagster).connect() as conn:
            rows = conn.execute(
                text("SELECT run_id, value FROM run_tags WHERE key = 'dagster/sensor_name'")
            ).all()
        run_ids = {run_id for run_id, name in rows if name in sensors}
        by_sensor = {name: sum(1 for _, n in rows if n == name) for name in sensors}
        assert len(run_ids) == result["runs"]
        assert by_sensor == {
            EXPORT_SENSOR: result["runs_by_job"]["export_job"],
            DUNNING_SENSOR: result["runs_by_job"]["dunning_job"],
        }
        # the daemon ticked them: its ticks requested every run, none twice
        ticks = result["month_end_ticks"]
        assert sum(t["runs_requested"] for t in ticks.values()) == result["runs"]
        # every organization's month exported in both directions and dunned, by those runs
        with create_engine(app).connect() as conn:
            exported = conn.execute(
                text(
                    "SELECT count(DISTINCT (organization_id, direction)), "
                    "array_agg(DISTINCT dagster_run_id) FROM exports WHERE period = :month"
                ),
                {"month": result["month"]},
            ).one()
            dunned = conn.execute(
                text(
                    "SELECT count(DISTINCT organization_id), array_agg(DISTINCT dagster_run_id) "
                    "FROM dunning_runs WHERE status = 'SUCCESS'"
                )
            ).one()
            notices = conn.execute(text("SELECT count(*) FROM dunning_notices")).scalar_one()
        assert exported[0] == 3 * 2 == result["month_exports_by_runs"]
        assert set(exported[1]) <= run_ids
        assert dunned[0] == 3 == result["organizations_dunned_by_runs"]
        assert set(dunned[1]) <= run_ids
        # the runs noticed what the one-process month-end noticed (then reset), at least one each
        assert notices == result["notices_by_runs"] == result["one_process_notices"] >= 3
        assert result["one_process_exports"] == 3 * 2
        assert result["month_supplier_invoices_left_validated"] == 0
        # the intake meanwhile, the pages and the ticks were measured
        assert result["intake_drops"] >= 1 and set(result["intake_statuses"]) == {"VALIDATED"}
        assert result["page_loads"] >= 1 and not result["page_errors"]
        assert result["slowest_tick_s"] > 0 and result["daemon_ticks"]
        assert result["slowest_month_end_tick_s"] <= result["slowest_tick_s"]
        assert result["peak_rss_mb"] > 0
        assert result["ratio_to_one_process"] == pytest.approx(
            result["month_end_seconds"] / result["one_process_seconds"], rel=0.1
        )
    finally:
        drop(scratch)


def database_url(scratch: dict, kind: str) -> str:
    """The URL of the bench's kept scratch database of `kind` (app, dagster)."""
    name = next(name for name in scratch["databases"] if name.endswith(f"_{kind}"))
    server = make_url(os.environ["INVOICE_PIPELINES_DB_URL"])
    url = server.set(drivername="postgresql+psycopg2", database=name)
    return url.render_as_string(hide_password=False)


def drop(scratch: dict) -> None:
    admin = create_engine(
        make_url(database_url(scratch, "app")).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        for name in scratch["databases"]:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    shutil.rmtree(scratch["folder"], ignore_errors=True)
