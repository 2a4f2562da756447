"""The instance's configured classes as Dagster loads them.

Dagster documents configured classes (`module`, `class`, `config` in dagster.yaml: our run
coordinator, Dagster's storages) but keeps their plumbing private: the value it hands to
`from_config_value` (`ConfigurableClassData`, `dagster._serdes`), the instance's configuration as
a value (`InstanceRef`, `dagster._core.instance.ref`), the weak reference through which a run
coordinator reaches its instance (`_instance`), and the modules of the classes an instance uses
when dagster.yaml names none (SQLite storage, `DefaultRunLauncher`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import DagsterInstance
    from dagster._serdes import ConfigurableClassData as ConfigurableClassData  # re-exported


def instance_of(configured: Any) -> DagsterInstance:
    """The instance a configured class (a run coordinator) belongs to: the weak reference Dagster
    registers on it when the instance loads it (`MayHaveInstanceWeakref._instance`)."""
    return configured._instance


def instance_modules(ref: Any) -> list[str]:
    """The modules of the classes an instance names (its storages, compute logs, run coordinator,
    run launcher, ...): the fields of an InstanceRef that are a class's module and name."""
    if ref is None:
        return []
    return sorted(
        {
            value.module_name
            for value in ref
            if isinstance(getattr(value, "module_name", None), str) and hasattr(value, "class_name")
        }
    )


def instance_ref_from_home() -> Any:
    """The configuration of the instance of DAGSTER_HOME as Dagster reads it (an InstanceRef),
    None without DAGSTER_HOME or when it cannot be read (a preload only: the instance, when it is
    opened, says what is wrong)."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return None
    from dagster._core.instance.ref import InstanceRef

    try:
        return InstanceRef.from_dir(home)
    except Exception:  # noqa: BLE001 (a preload only: the run opens the instance itself)
        return None


def import_the_default_classes() -> bool:
    """Import the modules of the classes an instance uses where dagster.yaml names none (its
    SQLite storage, the DefaultRunLauncher): a preload, so that opening the instance later takes
    a fraction of a second instead of seconds on a busy machine. Whether they could be imported
    (if not, opening the instance imports what it needs)."""
    try:
        from dagster._core.launcher.default_run_launcher import DefaultRunLauncher  # noqa: F401
        from dagster._core.storage.sqlite_storage import DagsterSqliteStorage  # noqa: F401
    except ImportError:
        return False
    return True
