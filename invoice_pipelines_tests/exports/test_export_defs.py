"""The export assets in Dagster: a partition per organization and month, backfills over several
months in one run, the check that counts skipped invoices, the monthly schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from dagster import (
    AssetCheckKey,
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    MultiPartitionKey,
)
from sqlalchemy import select

from invoice_pipelines.db.tables import exports, incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports import assets as export_assets
from invoice_pipelines.exports import jobs as export_jobs
from invoice_pipelines.exports.sensors import build_monthly_exports_sensor
from invoice_pipelines.lib.partitions import PARTITION_RANGE_END_TAG as RANGE_END
from invoice_pipelines.lib.partitions import PARTITION_RANGE_START_TAG as RANGE_START
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.resources.files.file_stores import LocalFileStore
from invoice_pipelines.resources.files.upload_stores import LocalUploadStore
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.tenants.period_ticks import every_tick

# a month that is over: exports book a month once it is over (closed months)
OVER = date(2026, 10, 5)


def _instance() -> DagsterInstance:
    """A Dagster instance of the test's own, in memory (as `with` gives it: disposed after);
    a persistent one cost a second or more each for nothing these tests look at."""
    return DagsterInstance.ephemeral()


def _run(db, tmp_path, instance: DagsterInstance, slug: str, **run):
    defs = Definitions(
        assets=[export_assets.incoming_invoice_exports, export_assets.sales_invoice_exports],
        jobs=[export_jobs.export_job],
        resources={
            "database": Database(url=db.url),
            "system_database": SystemDatabase(url=db.url),
            "export_store": LocalFileStore(root=str(tmp_path)),
            "upload_store": LocalUploadStore(root=str(tmp_path / "uploads")),
            "document_store": LocalFileStore(root=str(tmp_path / "documents")),
        },
    )
    instance.add_dynamic_partitions("organizations", [slug])
    return defs.resolve_job_def("export_job").execute_in_process(
        instance=instance, raise_on_error=False, **run
    )


def _materializations(result, asset: str) -> dict:
    found = {}
    for event in result.get_asset_materialization_events():
        materialization = event.event_specific_data.materialization
        if materialization.asset_key.to_user_string() == asset:
            found[materialization.partition] = materialization.metadata
    return found


def _checks(result) -> dict[str, bool]:
    return {
        e.asset_check_evaluation_data.asset_key.to_user_string(): e.asset_check_evaluation_data.passed
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_one_partition_writes_both_directions_and_records_metadata(db, tmp_path):
    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "D-1", day=OVER)
    incoming(db.engine, org["id"], "D-2", taxes=[("S", "13", "10.00", "1.30")], day=OVER)
    key = MultiPartitionKey({"organizations": org["slug"], "month": "2026-10"})
    with _instance() as instance:
        result = _run(db, tmp_path, instance, org["slug"], partition_key=key)
    assert result.success
    meta = _materializations(result, "incoming_invoice_exports")[key]
    assert meta["outcome"].value == "version 1 written"
    assert meta["invoices"].value == 1 and meta["skipped"].value == 1
    assert meta["totals"].value == {"EUR": {"net": "100.00", "tax": "19.00", "gross": "119.00"}}
    assert Path(meta["datev_file"].value).name == "EXTF_Buchungsstapel_incoming_2026-10_v1.csv"
    assert Path(meta["datev_file"].value).is_file()
    assert "| 119.00 | H | EUR | 70000 | 3400 |" in meta["preview"].value
    assert "unknown VAT rate 13 %" in meta["skipped_invoices"].value
    sales = _materializations(result, "sales_invoice_exports")[key]
    assert sales["outcome"].value == "no invoices in this month"
    assert _checks(result) == {"incoming_invoice_exports": False, "sales_invoice_exports": True}


def test_a_backfill_run_exports_several_months(db, tmp_path):
    org = db.new_organization(**DATEV)
    for month in (8, 9, 10):
        incoming(db.engine, org["id"], f"M-{month}", day=date(2026, month, 15))
    slug = org["slug"]
    with _instance() as instance:
        result = _run(
            db,
            tmp_path,
            instance,
            slug,
            tags={RANGE_START: f"2026-08|{slug}", RANGE_END: f"2026-10|{slug}"},
        )
    assert result.success
    partitions = _materializations(result, "incoming_invoice_exports")
    assert set(map(str, partitions)) == {f"2026-{m}|{slug}" for m in ("08", "09", "10")}
    # each partition materialized with its own month's figures, as its export was done
    for key, meta in partitions.items():
        assert meta["month"].value == str(key).split("|")[0]
        assert meta["invoices"].value == 1 and meta["outcome"].value == "version 1 written"
    with tenant_transaction(db.engine, org["id"]) as conn:
        periods = conn.execute(
            select(exports.c.period)
            .where(exports.c.organization_id == org["id"], exports.c.direction == "incoming")
            .order_by(exports.c.period)
        ).scalars()
        assert list(periods) == ["2026-08", "2026-09", "2026-10"]


def test_a_backfill_run_writes_the_events_a_person_reads(db, tmp_path):
    """Issue 55: a month with many invoices that cannot be booked wrote one warning event per
    invoice into the run's log; now one per month, naming ten, and the materialization lists
    them all. A run's events grow with its partitions, not with their invoices."""
    org = db.new_organization(**DATEV)
    for month in (8, 9, 10):
        for n in range(15):  # an unknown VAT rate: skipped, with the reason
            incoming(db.engine, org["id"], f"S-{month}-{n}", day=date(2026, month, 15),
                     taxes=[("S", "13", "100.00", "13.00")])  # fmt: skip
    slug = org["slug"]
    with _instance() as instance:
        result = _run(
            db,
            tmp_path,
            instance,
            slug,
            tags={RANGE_START: f"2026-08|{slug}", RANGE_END: f"2026-10|{slug}"},
        )
        warnings = [
            record.user_message
            for record in instance.all_logs(result.run_id)
            if record.level >= 30 and "skipped" in record.user_message
        ]
    assert len(warnings) == 3  # one per month of the incoming direction
    assert all("15 invoice(s) skipped" in w and "and 5 more" in w for w in warnings)
    partitions = _materializations(result, "incoming_invoice_exports")
    assert all(meta["skipped"].value == 15 for meta in partitions.values())
    assert all(
        meta["skipped_invoices"].value.count("unknown VAT rate 13 %") == 15
        for meta in partitions.values()
    )


def _backfill_runs(instance, organizations: list[str], periods: list[str]) -> list[tuple]:
    """The runs Dagster's backfill daemon makes of a backfill of both exports over
    `organizations` x `periods` (what `asset_backfill` calls): (range start, range end) each."""
    import warnings

    from dagster import AssetKey, BetaWarning
    from dagster._core.definitions.automation_tick_evaluation_context import (
        build_run_requests_with_backfill_policies,
    )
    from dagster._core.definitions.events import AssetKeyPartitionKey
    from dagster._core.definitions.partitions.context import partition_loading_context

    from invoice_pipelines.definitions import defs

    keys = [
        AssetKeyPartitionKey(AssetKey(name), f"{p}|{o}")
        for name in ("incoming_invoice_exports", "sales_invoice_exports")
        for o in organizations
        for p in periods
    ]
    with (
        warnings.catch_warnings(),
        partition_loading_context(dynamic_partitions_store=instance),
    ):
        warnings.simplefilter("ignore", BetaWarning)
        requests = build_run_requests_with_backfill_policies(
            keys, defs.resolve_asset_graph(), instance
        )
    return sorted((r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests)


MONTHS = [f"{y}-{m:02d}" for y in (2024, 2025) for m in range(1, 13)]
ORGANIZATIONS = [f"org-{i:03d}" for i in range(100)]


def test_a_backfill_of_one_organization_is_one_run_and_of_many_a_span_of_one_month_a_run():
    """Dagster cuts a backfill's keys along the dimension with fewer of them: one organization's
    24 months are one run; 100 organizations' 2 months are runs of up to 40 organizations of one
    month, each span the same in both months (the coordinator's slot holds them apart), three
    spans that run side by side."""
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", ORGANIZATIONS)
        assert _backfill_runs(instance, ["org-007"], MONTHS) == [
            ("2024-01|org-007", "2025-12|org-007")
        ]
        spans = _backfill_runs(instance, ORGANIZATIONS, ["2024-01", "2024-02"])
        assert [(a.split("|")[1], b.split("|")[1]) for a, b in spans[:3]] == [
            ("org-000", "org-039"),
            ("org-040", "org-079"),
            ("org-080", "org-099"),
        ]
        assert len(spans) == 6  # both assets in each run


def test_an_organizations_months_are_one_run_only_with_fewer_organizations_than_months():
    """What docs/exports.md's onboarding says (issue 73, point 10: it said "one organization's
    months run as one run", which holds only with fewer organizations than months): an
    organization's months are its runs, 40 months to a run, while fewer organizations than months
    are selected; with as many or more, a run is one month over up to 40 organizations."""
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", ORGANIZATIONS)
        # the onboarding of one organization's 5 years: two runs, 40 months and 20
        five_years = [f"{y}-{m:02d}" for y in range(2021, 2026) for m in range(1, 13)]
        assert _backfill_runs(instance, ["org-007"], five_years) == [
            ("2021-01|org-007", "2024-04|org-007"),
            ("2024-05|org-007", "2025-12|org-007"),
        ]
        # 3 organizations, 24 months: a run each, its 24 months
        three = ORGANIZATIONS[:3]
        assert _backfill_runs(instance, three, MONTHS) == [
            (f"2024-01|{o}", f"2025-12|{o}") for o in three
        ]
        # 24 organizations, 24 months (as many): a run a month over the 24 organizations
        many = _backfill_runs(instance, ORGANIZATIONS[:24], MONTHS)
        assert many == [(f"{m}|org-000", f"{m}|org-023") for m in MONTHS]


def test_bad_settings_fail_the_partition_with_one_sentence(db, tmp_path):
    org = db.new_organization(**{**DATEV, "datev_berater_nr": 5})
    incoming(db.engine, org["id"], "X-1", day=OVER)
    key = MultiPartitionKey({"organizations": org["slug"], "month": "2026-10"})
    with _instance() as instance:
        result = _run(db, tmp_path, instance, org["slug"], partition_key=key)
    assert not result.success
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures
    message = failures[0].step_failure_data.error.message
    assert "the Beraternummer 5 is outside" in message
    assert list(tmp_path.iterdir()) == []


def _observations(instance, asset: str) -> dict[str, dict]:
    records = instance.fetch_observations(AssetKey(asset), limit=100).records
    return {str(r.asset_observation.partition): r.asset_observation.metadata for r in records}


def test_organizations_added_without_datev_numbers_leave_the_month_end_green(db, tmp_path):
    """Issue 85: four organizations added as docs/organizations.md shows (no DATEV numbers)
    failed the month-end's export run; now their months are held, the run succeeds, the
    organization with its numbers is exported, and each held month names what to set."""
    ready = db.new_organization(**DATEV)
    added = [db.new_organization() for _ in range(4)]
    for org in (ready, added[0]):
        incoming(db.engine, org["id"], "H-1", day=OVER)
    slugs = sorted(org["slug"] for org in (ready, *added))
    first, last = f"2026-10|{slugs[0]}", f"2026-10|{slugs[-1]}"
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", slugs)
        result = _run(
            db, tmp_path, instance, ready["slug"], tags={RANGE_START: first, RANGE_END: last}
        )
        assert result.success
        done = f"2026-10|{ready['slug']}"
        asset = AssetKey("incoming_invoice_exports")
        assert instance.get_materialized_partitions(asset) == {done}
        held = _observations(instance, "incoming_invoice_exports")
        assert set(held) == {f"2026-10|{org['slug']}" for org in added}
        for metadata in held.values():
            assert "has no DATEV Beraternummer/Mandantennummer" in metadata["held"].value
            assert "--datev-berater-nr N --datev-mandant-nr N" in metadata["held"].value
            assert "datev_berater_nr, datev_mandant_nr" in metadata["missing"].value
    with tenant_transaction(db.engine, added[0]["id"]) as conn:
        status = conn.execute(
            select(incoming_invoices.c.status).where(
                incoming_invoices.c.organization_id == added[0]["id"]
            )
        ).scalar_one()
    assert status == "VALIDATED"  # held, not lost: exported once the numbers are set


def test_one_held_partition_is_a_green_run_that_says_why(db, tmp_path):
    org = db.new_organization(**{**DATEV, "datev_mandant_nr": None})
    incoming(db.engine, org["id"], "X-1", day=OVER)
    key = MultiPartitionKey({"organizations": org["slug"], "month": "2026-10"})
    with _instance() as instance:
        result = _run(db, tmp_path, instance, org["slug"], partition_key=key)
        assert result.success
        [metadata] = _observations(instance, "incoming_invoice_exports").values()
        assert "has no DATEV Beraternummer/Mandantennummer" in metadata["held"].value
        assert instance.get_materialized_partitions(AssetKey("incoming_invoice_exports")) == set()
    # the partition's check says so too, as a warning: its invoices wait
    assert _checks(result)["incoming_invoice_exports"] is False
    assert list(tmp_path.iterdir()) == []


# the 1st of January 2027, 03:00 in Berlin: December 2026's month-end
JANUARY_1 = '{"tick": "2027-01-01T03:00"}'


def _month_end_requests(instance, engine, **overrides) -> list:
    """Every run request of the month-end sensor for December 2026, tick after tick."""
    sensor = build_monthly_exports_sensor(
        clock=lambda: datetime(2027, 1, 1, 3, tzinfo=UTC), **overrides
    )
    results = every_tick(sensor, instance, engine, JANUARY_1)
    return [request for result in results for request in result.run_requests]


def test_the_month_end_exports_last_month_in_batches_of_organizations(db, tmp_path):
    orgs = [db.new_organization(**DATEV) for _ in range(3)]
    for org in orgs:
        incoming(db.engine, org["id"], "S-1", day=date(2026, 12, 3))
    slugs = [org["slug"] for org in orgs]
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", ["someone-else", *slugs])
        requests = _month_end_requests(
            instance, db.engine, organizations_per_run_at_least=2, runs_per_tick=1
        )
        assert [r.run_key for r in requests] == ["2026-12-batch-0", "2026-12-batch-1"]
        assert [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests] == [
            ("2026-12|someone-else", f"2026-12|{slugs[0]}"),
            (f"2026-12|{slugs[1]}", f"2026-12|{slugs[2]}"),
        ]
        # the second run exports exactly its two organizations
        result = _run(db, tmp_path, instance, slugs[1], tags=requests[1].tags)
    assert result.success
    assert set(map(str, _materializations(result, "incoming_invoice_exports"))) == {
        f"2026-12|{slugs[1]}",
        f"2026-12|{slugs[2]}",
    }


def test_with_thousands_of_organizations_runs_grow_instead_of_their_number(sqlite_database):
    slugs = [f"org-{i:05d}" for i in range(10_201)]
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", slugs)
        requests = _month_end_requests(instance, sqlite_database.engine)
    # 103 organizations per run (10,201 / 100 rounded up): 100 runs, never more
    assert len(requests) == 100
    ranges = [(r.tags[RANGE_START], r.tags[RANGE_END]) for r in requests]
    # consecutive, non-overlapping ranges of 103 organizations that cover every one exactly once
    covered = []
    for start, end in ranges:
        first, last = slugs.index(start.split("|")[1]), slugs.index(end.split("|")[1])
        covered += slugs[first : last + 1]
    assert covered == slugs
    assert {
        len(range(slugs.index(s.split("|")[1]), slugs.index(e.split("|")[1]) + 1))
        for s, e in ranges[:-1]
    } == {103}


def test_one_refused_organization_does_not_stop_the_others_of_a_run(db, tmp_path):
    good = db.new_organization(**DATEV)
    bad = db.new_organization(**{**DATEV, "datev_berater_nr": 5})
    for org in (good, bad):
        incoming(db.engine, org["id"], "B-1", day=OVER)
    good_key, bad_key = f"2026-10|{good['slug']}", f"2026-10|{bad['slug']}"
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", [bad["slug"], good["slug"]])
        result = _run(
            db,
            tmp_path,
            instance,
            good["slug"],
            tags={RANGE_START: bad_key, RANGE_END: good_key},
        )
        # the good month is materialized with its own figures and check; the refused one is not
        asset = AssetKey("incoming_invoice_exports")
        assert instance.get_materialized_partitions(asset) == {good_key}
        [done] = instance.fetch_materializations(asset, limit=10).records
        assert done.asset_materialization.metadata["invoices"].value == 1
        assert done.asset_materialization.metadata["outcome"].value == "version 1 written"
        # the good month's own check result, for its partition (the run-wide check output stays
        # planned in a run that fails: which record is "latest" without a partition is not fixed)
        evaluated = {
            record.dagster_event.asset_check_evaluation_data.partition: (
                record.dagster_event.asset_check_evaluation_data.passed
            )
            for record in instance.all_logs(
                result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            )
            if record.dagster_event.asset_check_evaluation_data.asset_key == asset
            and record.dagster_event.asset_check_evaluation_data.check_name
            == export_assets.SKIPPED_CHECK
        }
        assert evaluated == {good_key: True}
    assert not result.success
    failure = next(
        e
        for e in result.all_events
        if e.is_step_failure and e.step_key == "incoming_invoice_exports"
    )
    assert failure.step_failure_data.error.message.startswith(
        f"dagster._core.definitions.events.Failure: 1 of 2 partitions refused: {bad_key}: "
        "the Beraternummer 5 is outside"
    )
    assert f"(done nonetheless: {good_key})" in failure.step_failure_data.error.message
    with tenant_transaction(db.engine, good["id"]) as conn:
        assert (
            conn.execute(
                select(incoming_invoices.c.status).where(
                    incoming_invoices.c.organization_id == good["id"]
                )
            ).scalar_one()
            == "EXPORTED"
        )


def test_reopen_job_then_the_month_again_writes_a_corrected_version(db, tmp_path):
    org = db.new_organization(**DATEV)
    doc = incoming(db.engine, org["id"], "K-1", day=OVER)
    key = MultiPartitionKey({"organizations": org["slug"], "month": "2026-10"})
    with _instance() as instance:
        assert _run(db, tmp_path, instance, org["slug"], partition_key=key).success
        reopen = Definitions(
            jobs=[export_jobs.reopen_exported_invoices_job],
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
        ).resolve_job_def("reopen_exported_invoices_job")
        config = {
            "organization": org["slug"],
            "document_ids": [doc, 999_999],
            "reason": "wrong cost centre",
        }
        done = reopen.execute_in_process(
            instance=instance, run_config={"ops": {"reopen_exported_invoices": {"config": config}}}
        )
        assert done.success
        with tenant_transaction(db.engine, org["id"]) as conn:
            assert (
                conn.execute(
                    select(incoming_invoices.c.status).where(incoming_invoices.c.id == doc)
                ).scalar_one()
                == "VALIDATED"
            )
        again = _run(db, tmp_path, instance, org["slug"], partition_key=key)
        meta = _materializations(again, "incoming_invoice_exports")[key]
        assert meta["outcome"].value == "version 2 written"
        assert meta["changes"].value["corrected"] == ["K-1"]
        # nothing left to reopen: refused with a sentence
        refusal = reopen.execute_in_process(
            instance=instance,
            run_config={
                "ops": {
                    "reopen_exported_invoices": {"config": {**config, "document_ids": [999_999]}}
                }
            },
            raise_on_error=False,
        )
        assert not refusal.success


def test_a_partition_whose_export_fails_fails_alone(db, tmp_path, monkeypatch):
    """Issue 55: any error of one partition's export (there, a UniqueViolation) ended the whole
    chunk of a backfill run; now that partition fails with the error's first line, the others of
    the run are materialized, and retrying the failed partitions runs that one again."""
    good = db.new_organization(**DATEV)
    broken = db.new_organization(**DATEV)
    for org in (good, broken):
        incoming(db.engine, org["id"], "B-1", day=OVER)
    good_key, broken_key = f"2026-10|{good['slug']}", f"2026-10|{broken['slug']}"
    real_export = export_assets.run_export

    def export_or_break(engine, store, org, *args, **kwargs):
        if org.slug == broken["slug"]:
            raise RuntimeError("the database went away\nsecond line")
        return real_export(engine, store, org, *args, **kwargs)

    monkeypatch.setattr(export_assets, "run_export", export_or_break)
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", [broken["slug"], good["slug"]])
        result = _run(
            db,
            tmp_path,
            instance,
            good["slug"],
            tags={RANGE_START: broken_key, RANGE_END: good_key},
        )
        asset = AssetKey("incoming_invoice_exports")
        assert instance.get_materialized_partitions(asset) == {good_key}
    assert not result.success
    failure = next(
        e
        for e in result.all_events
        if e.is_step_failure and e.step_key == "incoming_invoice_exports"
    )
    message = failure.step_failure_data.error.message
    assert f"{broken_key}: the export failed (RuntimeError: the database went away)" in message
    assert "second line" not in message


def test_a_run_over_several_organizations_leaves_a_suspended_ones_month_alone(db, tmp_path):
    """Issue 75: a backfill's run over a range of organizations (or the monthly schedule's batch)
    exports the others and leaves a suspended organization's month unexported and unmaterialized,
    saying why, as its sensors and schedules do; the run itself does not fail for it."""
    from invoice_pipelines.tenants.domain.lifecycle import suspend_organization

    running = db.new_organization(**DATEV)
    paused = db.new_organization(**DATEV)
    for org in (running, paused):
        incoming(db.engine, org["id"], "S-1", day=OVER)
    suspend_organization(
        db.engine, find_organization(db.engine, paused["slug"]), reason="contract paused", by="anna"
    )
    running_key, paused_key = f"2026-10|{running['slug']}", f"2026-10|{paused['slug']}"
    with _instance() as instance:
        instance.add_dynamic_partitions("organizations", [running["slug"], paused["slug"]])
        result = _run(
            db,
            tmp_path,
            instance,
            running["slug"],
            tags={RANGE_START: running_key, RANGE_END: paused_key},
        )
        asset = AssetKey("incoming_invoice_exports")
        assert instance.get_materialized_partitions(asset) == {running_key}
        said = [e.message for e in instance.all_logs(result.run_id) if "is suspended" in e.message]
    assert result.success
    assert said and "contract paused" in said[0], said
    for org, count in ((paused, 0), (running, 1)):
        with tenant_transaction(db.engine, org["id"]) as conn:
            mine = select(exports.c.id).where(exports.c.organization_id == org["id"])
            assert len(conn.execute(mine).all()) == count, org["slug"]


def test_each_month_of_a_run_keeps_its_own_check(db, tmp_path):
    """Issue 85: every_invoice_booked is partitioned like its asset. A run over two months
    records each month's evaluation for its own partition: the month with an invoice it could
    not book stays failed beside the clean one."""
    from dagster._core.event_api import PartitionKeyFilter

    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "C-9", taxes=[("S", "13", "10.00", "1.30")],
             day=date(2026, 9, 15))  # fmt: skip
    incoming(db.engine, org["id"], "C-10", day=date(2026, 10, 15))
    slug = org["slug"]
    key = AssetCheckKey(AssetKey("incoming_invoice_exports"), export_assets.SKIPPED_CHECK)
    with _instance() as instance:
        result = _run(
            db, tmp_path, instance, slug,
            tags={RANGE_START: f"2026-09|{slug}", RANGE_END: f"2026-10|{slug}"},
        )  # fmt: skip
        assert result.success
        found = {
            month: instance.event_log_storage.get_latest_asset_check_execution_by_key(
                [key], partition_filter=PartitionKeyFilter(key=f"{month}|{slug}")
            )[key].evaluation.passed
            for month in ("2026-09", "2026-10")
        }
    assert found == {"2026-09": False, "2026-10": True}
