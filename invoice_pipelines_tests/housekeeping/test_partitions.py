"""Partitions of organizations that are gone: organizations_sensor removes them (tenants/sensors.py),
housekeeping does not do it a second time. A deactivated organization is covered in
tenants/test_organizations_sensor.py; this is an organization whose row was deleted."""

from dagster import DagsterInstance
from sqlalchemy import delete

from invoice_pipelines.db.tables import organizations
from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME
from invoice_pipelines_tests.tenants.test_organizations_sensor import _tick


def test_a_deleted_organizations_partition_is_removed(db):
    instance = DagsterInstance.ephemeral()
    keep, gone = db.new_organization(), db.new_organization()
    _, cursor = _tick(instance, db)
    assert gone["slug"] in instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME)
    with db.owner_engine.begin() as conn:
        conn.execute(delete(organizations).where(organizations.c.id == gone["id"]))

    _tick(instance, db, cursor)
    keys = set(instance.get_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME))
    assert keep["slug"] in keys and gone["slug"] not in keys
