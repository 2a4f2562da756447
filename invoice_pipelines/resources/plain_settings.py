"""A Dagster resource that is only the settings of a plain object (what it hands a run, the object
a command holds), by the same names: `OfPlain.of(plain)` makes the resource from that object. So
each edge resource has one builder, from the settings (`settings.Reading`), that a command calls
for its object and the code location for the object its Dagster resource wraps
(`area.Resource`: `build`, then `wrap`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Self, TypeVar

P = TypeVar("P")


class OfPlain:
    """For a `ConfigurableResource` whose fields are its plain object's settings by name."""

    @classmethod
    def of(cls, plain: Any) -> Self:
        """The resource configured as `plain` is (an `EnvVar` it holds stays one)."""
        fields = cls.model_fields  # type: ignore[attr-defined]  (pydantic's, of the resource)
        return cls(**{name: getattr(plain, name) for name in fields})

    def _plain(self, make: Callable[..., P]) -> P:
        """The plain object `make` builds from these settings: `of`'s way back, by the same
        names."""
        fields = type(self).model_fields  # type: ignore[attr-defined]  (as in `of`)
        return make(**{name: getattr(self, name) for name in fields})
