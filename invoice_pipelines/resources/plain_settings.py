"""How an edge resource is declared: once, as the plain dataclass a command holds and a run gets,
each field with what the Dagster UI says of it (`field(metadata={"description": ...})`, and
pydantic's limits beside it where the UI should refuse a value: `"ge": 1`). `dagster_resource`
derives the Dagster resource from that class: the same fields by the same names (the config a
deployment writes), shown with their descriptions, an `EnvVar` among them (a secret) resolved when
a run starts; a run gets the plain object they make (`create_resource`), never the resource. So
each edge resource has one builder, from the settings (`settings.Reading`), that a command calls
for its object and the code location for the object the derived resource's `of` wraps
(`area.Resource`: `build`, then `for_runs`).

The plain class needs nothing of this module (its metadata is the standard library's), so a
command that holds it never imports Dagster; the derived class lives in a Dagster module beside
it (`resources/messaging/mail.py` beside `smtp.py`)."""

from __future__ import annotations

import dataclasses
import sys
import typing
from collections.abc import Callable
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

DESCRIPTION = "description"  # the key of a field's description in its dataclass metadata


def dagster_resource(
    plain: type,
    name: str,
    *,
    doc: str | None = None,
    made_by: str = "plain",
    gives: Callable[[Any], Any] | None = None,
    check: Callable[[Any], object] | None = None,
    close: Callable[[Any], object] | None = None,
) -> type[ConfigurableResource]:
    """The Dagster `ConfigurableResource` class `name` whose fields are `plain`'s settings (the
    dataclass fields it takes, with their defaults, descriptions and limits) and whose run gets
    the plain object they make; `doc` (or `plain`'s docstring) is its description in the UI.

    `made_by` names the method that gives the plain object from the resource's values (a test
    or a command that holds the resource); `of(plain object)` is the resource configured as that
    object is (an `EnvVar` it holds stays one). What a run gets is `gives(plain object)` where
    given (the database: its engine), made when the run, tick or check starts using the
    resource and, with `close`, closed when it ends. `check` is called on the plain object as
    the run starts: a wrong setting is refused before any work (the SMTP server's security)."""
    hints = typing.get_type_hints(plain)
    settings = [f.name for f in dataclasses.fields(plain) if f.init and not f.name.startswith("_")]
    namespace: dict[str, Any] = {
        # the class is named where it is assigned, as a `class` statement there would be
        "__module__": sys._getframe(1).f_globals["__name__"],
        "__qualname__": name,
        "__doc__": doc or plain.__doc__,
        "__annotations__": {setting: hints[setting] for setting in settings},
        "_given": PrivateAttr(default=None),
    }
    for f in dataclasses.fields(plain):
        if f.name in settings:
            namespace[f.name] = Field(**_default(f), **_described(f.metadata))

    def made(self: Any) -> Any:
        return plain(**{setting: getattr(self, setting) for setting in settings})

    made.__doc__ = f"The plain `{plain.__name__}` these settings make: its settings by name."

    def of(cls: type, built: Any) -> Any:
        return cls(**{setting: getattr(built, setting) for setting in settings})

    def given(self: Any) -> Any:
        if self._given is None:
            built = made(self)
            self._given = gives(built) if gives is not None else built
        return self._given

    def setup_for_execution(self: Any, context: Any) -> None:
        if check is not None:
            check(made(self))
        given(self)

    def create_resource(self: Any, context: Any) -> Any:
        return given(self)

    def teardown_after_execution(self: Any, context: Any) -> None:
        # Dagster tears down this object, not what it handed the run: the object closes that
        if close is not None and self._given is not None:
            close(self._given)
        self._given = None

    namespace.update(
        {
            made_by: made,
            "of": classmethod(of),
            "setup_for_execution": setup_for_execution,
            "create_resource": create_resource,
            "teardown_after_execution": teardown_after_execution,
        }
    )
    return type(name, (ConfigurableResource,), namespace)


def _default(f: dataclasses.Field) -> dict[str, Any]:
    if f.default is not dataclasses.MISSING:
        return {"default": f.default}
    if f.default_factory is not dataclasses.MISSING:
        # a value, not the factory: Dagster shows it as the default (pydantic copies it for
        # each resource)
        return {"default": f.default_factory()}
    return {}


def _described(metadata: typing.Mapping[str, Any]) -> dict[str, Any]:
    """pydantic's `Field` arguments of a field's metadata: its description and limits."""
    return {key: value for key, value in metadata.items() if value is not None}
