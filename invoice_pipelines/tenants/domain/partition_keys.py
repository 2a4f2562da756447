"""The organizations' partitions written by a command or a job in the same call as the
organizations themselves (issue 75): a new organization's partitions exist when `organizations
add` returns, instead of at organizations_sensor's next tick. One call for all keys, whatever
their number (Dagster's `add_dynamic_partitions`), never one call a key.

Imports Dagster when called, not before: the command's reading verbs never come here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from invoice_pipelines.resources.dagster_instance.local_dagster import use_local_instance

if TYPE_CHECKING:
    from dagster import DagsterInstance


def sync_partitions(
    add: Sequence[str], remove: Sequence[str] = (), instance: DagsterInstance | None = None
) -> str:
    """Add the keys of `add` missing from the `organizations` partitions (one call) and delete
    those of `remove`, on `instance` (default: the instance of DAGSTER_HOME). One sentence saying
    what was done, or why nothing was (no DAGSTER_HOME: organizations_sensor does it at its next
    tick)."""
    from invoice_pipelines.lib.partitions import ORGANIZATIONS_PARTITIONS_NAME as NAME

    if not add and not remove:
        return "partitions: nothing to do"
    if instance is None:
        # DAGSTER_HOME, or the instance make run wrote where it is, with every variable the
        # instance's dagster.yaml needs (resources/dagster_instance/local_dagster.py)
        if not use_local_instance():
            return (
                "partitions: no Dagster instance here (DAGSTER_HOME is not set and make run has "
                "not written where its instance is), so organizations_sensor adds and removes "
                "them at its next tick (within a minute)"
            )
        from dagster import DagsterInstance

        try:
            with DagsterInstance.get() as opened:
                return sync_partitions(add, remove, opened)
        except Exception as exc:  # the write is done: a sentence, never a traceback after it
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            return (
                f"partitions: not written ({type(exc).__name__}: {first}); organizations_sensor "
                "adds and removes them at its next tick (within a minute)"
            )
    existing = set(instance.get_dynamic_partitions(NAME))
    missing = sorted(set(add) - existing)
    if missing:
        instance.add_dynamic_partitions(NAME, missing)
    gone = sorted(set(remove) & existing)
    for key in gone:  # Dagster deletes one key a call; an offboarding removes one organization
        instance.delete_dynamic_partition(NAME, key)
    return f"partitions: {len(missing)} added (one call), {len(gone)} removed"
