"""The resources of a command, by the names the runs give them (`context.resources.<name>`), each
the plain object the run's Dagster resource wraps (the document store's files, the SMTP server,
the message provider), so a command imports no Dagster."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Factories = Mapping[str, Callable[[], Any]]


class EnvResources:
    """Each resource built when first asked for (by attribute, like a run's `context.resources`)
    from the factory of its name. `factories` is the table of factories, or a function that gives
    it, called at the first attribute read: the console script hands in the areas' one table
    (`areas.command_resources`, which definitions.py binds for the runs), so a command that uses
    no resource (`incoming list`) loads no factory. `given` are resources made already (a test's
    store)."""

    def __init__(
        self, factories: Factories | Callable[[], Factories] | None = None, **given: Any
    ) -> None:
        self._factories = factories
        self._given = dict(given)

    def _table(self) -> Factories:
        if callable(self._factories):
            self._factories = self._factories()
        return self._factories or {}

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._given:
            table = self._table()
            if name not in table:
                raise AttributeError(f"no resource {name!r} for a command")
            self._given[name] = table[name]()
        return self._given[name]
