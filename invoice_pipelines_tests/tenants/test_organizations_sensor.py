"""The organizations sensor keeps the dynamic partitions equal to the active organizations."""

from dagster import DagsterInstance, SkipReason, build_sensor_context
from sqlalchemy import select, update

from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines.resources.database.engines import Database, SystemDatabase
from invoice_pipelines.tenants.sensors import organizations_sensor, plan_partition_sync


def _tick(instance, db, cursor=None):
    with build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ) as context:
        result = organizations_sensor(context)
    if isinstance(result, SkipReason):
        return result, context.cursor
    if result.skip_reason is not None:  # the keys written by the tick itself, recorded
        return result.skip_reason, result.cursor
    # a sensor invoked directly does not apply its requests; the daemon would
    for request in result.dynamic_partitions_requests:
        if type(request).__name__ == "AddDynamicPartitionsRequest":
            instance.add_dynamic_partitions(
                request.partitions_def_name, list(request.partition_keys)
            )
        else:
            for key in request.partition_keys:
                instance.delete_dynamic_partition(request.partitions_def_name, key)
    return result, result.cursor


def test_adds_all_new_organizations_in_one_call_then_skips(db):
    """The tick writes the new keys itself, in one call: an add request would have Dagster's
    daemon look each key up apart (issue 75)."""
    instance = DagsterInstance.ephemeral()
    orgs = [db.new_organization() for _ in range(5)]
    result, cursor = _tick(instance, db)

    assert isinstance(result, SkipReason) and "partitions in one call" in result.skip_message
    assert {o["slug"] for o in orgs} <= set(
        instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    )

    again, same_cursor = _tick(instance, db, cursor)
    assert isinstance(again, SkipReason) and "no organization changed" in again.skip_message
    assert same_cursor == cursor

    # a new organization changes the cursor and is added
    late = db.new_organization()
    result, newer = _tick(instance, db, cursor)
    assert newer != cursor
    assert f"added 1 organizations' partitions in one call ({late['slug']})" == result.skip_message
    assert late["slug"] in instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)


def test_a_tick_writes_at_most_its_share_of_new_keys_and_the_next_ticks_the_rest(db, monkeypatch):
    """Issue 75: thousands of organizations written past `organizations add` get their keys over
    a few ticks, each tick's in one call, none one by one."""
    from invoice_pipelines.tenants import sensors

    monkeypatch.setattr(sensors, "ADD_PER_TICK", 2)
    instance = DagsterInstance.ephemeral()
    calls = []
    add = instance.add_dynamic_partitions

    def counted(name, keys):
        calls.append(len(keys))
        return add(name, keys)

    # the active organizations other tests left in this worker's database are partitions
    # already (their keys written at once, past the count): the ticks here write the new ones
    with system_transaction(db.engine) as conn:
        others = (
            conn.execute(select(organizations.c.slug).where(organizations.c.active.is_(True)))
            .scalars()
            .all()
        )
    add(ORGANIZATIONS_PARTITIONS_NAME, list(others))
    monkeypatch.setattr(instance, "add_dynamic_partitions", counted)
    orgs = [db.new_organization() for _ in range(3)]
    cursor, said = None, []
    for _ in range(len(orgs)):  # enough ticks for every key, two a tick, and a quiet one
        result, cursor = _tick(instance, db, cursor)
        said.append(result.skip_message)
        if "no organization changed" in result.skip_message:
            break
    assert calls == [2, 1]  # a tick its share, in one call; the next tick the rest
    assert "more at the next ticks" in said[0]
    assert {o["slug"] for o in orgs} <= set(
        instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    )
    assert "no organization changed" in said[-1]


def test_each_organization_added_is_recorded_on_the_organizations_asset(db):
    """Issue 85: a fresh demo's organizations showed "Missing" on the `organizations` asset; the
    tick that adds an organization's partition records it there, with its checks."""
    instance = DagsterInstance.ephemeral()
    # the organizations other tests left in this worker's database are partitions already: a
    # tick records only the first organizations it adds, and this one must be among them
    with system_transaction(db.engine) as conn:
        others = conn.execute(select(organizations.c.slug)).scalars().all()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, list(others))
    lacking = db.new_organization()
    with build_sensor_context(
        instance=instance,
        resources={"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)},
    ) as context:
        result = organizations_sensor(context)
    shown = {
        e.partition: e for e in result.asset_events if type(e).__name__ == "AssetMaterialization"
    }
    assert shown[lacking["slug"]].metadata["state"].value == "active"
    checks = {
        (e.partition, e.check_name): e.passed
        for e in result.asset_events
        if type(e).__name__ == "AssetCheckEvaluation"
    }
    assert checks[(lacking["slug"], "organizations_ready")] is False
    assert checks[(lacking["slug"], "no_uploads_held")] is True


def test_deactivated_organization_is_removed(db):
    instance = DagsterInstance.ephemeral()
    keep, gone = db.new_organization(), db.new_organization()
    _, cursor = _tick(instance, db)
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations).where(organizations.c.id == gone["id"]).values(active=False)
        )

    result, _ = _tick(instance, db, cursor)
    deletes = [
        r
        for r in result.dynamic_partitions_requests
        if type(r).__name__ != "AddDynamicPartitionsRequest"
    ]
    assert len(deletes) == 1 and list(deletes[0].partition_keys) == [gone["slug"]]
    keys = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    assert keep["slug"] in keys and gone["slug"] not in keys


def test_plan_partition_sync():
    assert plan_partition_sync(["a", "b", "c"], ["b", "z"]) == (["a", "c"], ["z"])
    assert plan_partition_sync([], []) == ([], [])


def test_an_empty_database_does_not_wipe_all_partitions(tmp_path, sqlite_migrated_factory):
    url = sqlite_migrated_factory(tmp_path / "empty.sqlite3")
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, ["acme", "globex"])
    with build_sensor_context(
        instance=instance,
        resources={"database": Database(url=url), "system_database": SystemDatabase(url=url)},
    ) as context:
        result = organizations_sensor(context)
    assert isinstance(result, SkipReason) and "refusing to remove all 2" in result.skip_message
    assert set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)) == {"acme", "globex"}


def test_a_key_added_by_hand_that_is_no_organization_is_removed_without_an_organization_change(db):
    """The UI's "Add a partition" writes a key (say, a typo of a slug) straight into the instance;
    no organization changes, yet the next tick removes it, and the tick after is quiet again."""
    instance = DagsterInstance.ephemeral()
    org = db.new_organization()
    _, cursor = _tick(instance, db)
    quiet, cursor = _tick(instance, db, cursor)
    assert isinstance(quiet, SkipReason)

    typo = org["slug"] + "-typo"
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [typo])
    result, cursor = _tick(instance, db, cursor)

    assert not isinstance(result, SkipReason)
    (delete,) = result.dynamic_partitions_requests
    assert list(delete.partition_keys) == [typo]
    keys = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    assert typo not in keys and org["slug"] in keys
    again, _ = _tick(instance, db, cursor)
    assert isinstance(again, SkipReason) and "no organization changed" in again.skip_message
