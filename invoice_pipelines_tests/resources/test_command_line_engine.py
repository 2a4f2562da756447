"""A command's `database` and `system_database` (`args.resources`, the engines the assembly
builds) are the ones the definitions' resources of those names give the runs."""

from __future__ import annotations

import pytest
from dagster import build_resources
from sqlalchemy import select, text

from invoice_pipelines.areas import command_resources
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.definitions import build_definitions
from invoice_pipelines.resources.for_commands import EnvResources
from invoice_pipelines.settings import ConfigError


@pytest.mark.parametrize("name", ["database", "system_database"])
def test_a_command_and_a_run_see_the_same_database_as_the_same_role(db, monkeypatch, name):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    # the resource as a run gets it: Dagster reads its EnvVar when the resource starts
    with build_resources({name: build_definitions().resources[name]}) as started:
        command = getattr(EnvResources(command_resources), name)
        run = getattr(started, name)  # what an asset's ResourceParam[Engine] gets
        assert type(run) is type(command)
        _same(db, org, {"command": command, "run": run})


def test_the_engine_a_run_was_handed_is_disposed_of_when_the_run_ends(db):
    # Dagster tears down the resource, not the engine it handed over: the resource disposes of
    # that engine, so no connection of the run outlives it
    from invoice_pipelines.resources.database.engines import Database, SystemDatabase

    with build_resources(
        {"database": Database(url=db.url), "system_database": SystemDatabase(url=db.url)}
    ) as started:
        engine, system = started.database, started.system_database
        with engine.connect() as conn:
            conn.execute(select(organizations.c.id)).all()
        with system_transaction(system) as conn:
            conn.execute(select(organizations.c.id)).all()
        pools = [engine.pool, system.pool]
        assert all(pool.checkedin() >= 1 for pool in pools)  # connections wait in the run's pools
    assert all(pool.checkedin() == 0 for pool in pools)
    assert engine.pool is not pools[0] and system.pool is not pools[1]


def _same(db, org, engines) -> None:
    try:
        for name, engine in engines.items():
            with system_transaction(engine) as conn:
                slug = conn.execute(
                    select(organizations.c.slug).where(organizations.c.id == org["id"])
                ).scalar_one()
            assert slug == org["slug"], name
        if db.kind == "postgresql":
            roles = {}
            for name, engine in engines.items():
                with engine.connect() as conn:
                    roles[name] = conn.execute(text("SELECT current_user")).scalar_one()
            assert roles["command"] == roles["run"]
    finally:
        engines["command"].dispose()


def test_a_command_with_a_bad_url_names_the_variable(monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", "mysql://somewhere/db")
    with pytest.raises(ConfigError, match="INVOICE_PIPELINES_DB_URL uses unsupported scheme"):
        _ = EnvResources(command_resources).database
