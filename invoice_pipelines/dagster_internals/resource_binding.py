"""A resource bound with its config closed: the same class with the same values, whose resource
definition has an empty config schema, so that run config cannot set any of its fields
(resources/fixed.py says why).

Dagster has no public switch for this. It relies on two things Dagster does not document: that it
turns a `ConfigurableResource` (or `ConfigurableIOManager`) into its `ResourceDefinition` by
calling the object's `get_resource_definition()`, overridden here in a subclass made once per
class at run time; and that this definition's config schema carries the values given in code as
its default (`config_schema.default_provided`, `default_value`), which `configured` then fixes.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from dagster import ResourceDefinition

R = TypeVar("R")  # a ConfigurableResource or ConfigurableIOManager

_classes: dict[tuple[type, str], type] = {}
# Dagster needs the same definition object each time it asks (as `get_resource_definition` does);
# the resource is kept beside its definition so its id cannot be reused while the entry exists
_definitions: dict[int, tuple[Any, ResourceDefinition]] = {}
_lock = threading.Lock()


def with_closed_config(resource: R, note: str) -> R:
    """The same resource (an instance of the same class, with the same values), bound so that
    run config cannot set any of its fields; `note` ends the description the UI shows."""
    return _closed_class(type(resource), note)(**dict(resource))


def _closed_class(cls: type, note: str) -> type:
    def get_resource_definition(self: Any) -> ResourceDefinition:
        return _closed_definition(self, note)

    with _lock:
        if (cls, note) not in _classes:
            _classes[(cls, note)] = type(
                cls.__name__,
                (cls,),
                {
                    "__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__,
                    "get_resource_definition": get_resource_definition,
                },
            )
        return _classes[(cls, note)]


def _closed_definition(resource: Any, note: str) -> ResourceDefinition:
    with _lock:
        kept = _definitions.get(id(resource))
        if kept is not None:
            return kept[1]
    given = super(type(resource), resource).get_resource_definition()
    # the values given in code, as config (an EnvVar as {"env": NAME}: read when the run starts,
    # in the run's process, never written into the run's config)
    values = given.config_schema.default_value if given.config_schema.default_provided else {}
    definition = given.configured(
        lambda _empty: values,
        config_schema={},
        description=(given.description or type(resource).__name__).strip() + note,
    )
    with _lock:
        return _definitions.setdefault(id(resource), (resource, definition))[1]
