"""The trust boundary between the code location and the people who launch runs.

Dagster lets a run's config replace any field of a resource the code location configured
(`resources: {mailer: {config: {host: ...}}}` in the launchpad): the values given in code are only
defaults. Whoever may launch a run could then point the mailer, the QuickBooks token endpoint or
the database at a host of their own, and hand it the password, client secret or refresh token the
code location adds (a field may even name the code location's environment variable, `{env: ...}`).

`fixed_at_code_location` binds a resource so its config schema is empty: its values (endpoints,
secrets, limits alike) come only from the code location's environment, and a run whose config sets
any of them is refused before it starts, with Dagster's message naming the field. What a run may
still choose is its ops' config (which organization, which invoices, resend or not).
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from dagster import ConfigurableResource, ResourceDefinition

R = TypeVar("R")  # a ConfigurableResource or ConfigurableIOManager

_classes: dict[type, type] = {}
# Dagster needs the same definition object each time it asks (as `get_resource_definition` does);
# the resource is kept beside its definition so its id cannot be reused while the entry exists
_definitions: dict[int, tuple[Any, ResourceDefinition]] = {}
_lock = threading.Lock()

NOTE = " Fixed by the code location (environment variables); run config cannot change it."


def fixed_at_code_location(resource: R) -> R:
    """The same resource (an instance of the same class, with the same values), bound so that
    run config cannot set any of its fields."""
    return _fixed_class(type(resource))(**dict(resource))


def _fixed_class(cls: type) -> type:
    with _lock:
        if cls not in _classes:
            _classes[cls] = type(
                cls.__name__,
                (cls,),
                {
                    "__module__": cls.__module__,
                    "__qualname__": cls.__qualname__,
                    "__doc__": cls.__doc__,
                    "get_resource_definition": _fixed_definition,
                },
            )
        return _classes[cls]


def _fixed_definition(self: ConfigurableResource) -> ResourceDefinition:
    with _lock:
        kept = _definitions.get(id(self))
        if kept is not None:
            return kept[1]
    given = super(type(self), self).get_resource_definition()
    # the values given in code, as config (an EnvVar as {"env": NAME}: read when the run starts,
    # in the run's process, never written into the run's config)
    values = given.config_schema.default_value if given.config_schema.default_provided else {}
    definition = given.configured(
        lambda _empty: values,
        config_schema={},
        description=(given.description or type(self).__name__).strip() + NOTE,
    )
    with _lock:
        return _definitions.setdefault(id(self), (self, definition))[1]
