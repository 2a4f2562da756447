"""Every area, in order: the one list both assemblies build from. `definitions.py` merges each
area's Dagster definitions, builds the queue from every area's kinds (`kinds()`, one read-only
value) and binds the resources the areas make and the kinds; `cli.py` lists each area's commands
(`--help` from the tables alone), loads the parsers of the called command's area only, and gives
the command the same resources and the same kinds by the same names.

Importing this module imports each area's `area.py` and nothing more: no Dagster, no SQLAlchemy,
none of an area's work."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from invoice_pipelines.area_parts import Area, Command, QueueKind, Resource, load
from invoice_pipelines.audit.area import AREA as AUDIT
from invoice_pipelines.billing.area import AREA as BILLING
from invoice_pipelines.core.batch_kinds import KINDS_RESOURCE, KindName
from invoice_pipelines.db.area import AREA as DB
from invoice_pipelines.delivery.area import AREA as DELIVERY
from invoice_pipelines.documents.area import AREA as DOCUMENTS
from invoice_pipelines.exports.area import AREA as EXPORTS
from invoice_pipelines.history.area import AREA as HISTORY
from invoice_pipelines.housekeeping.area import AREA as HOUSEKEEPING
from invoice_pipelines.intake.area import AREA as INTAKE
from invoice_pipelines.overdue.area import AREA as OVERDUE
from invoice_pipelines.queue.area import AREA as QUEUE
from invoice_pipelines.quickbooks.area import AREA as QUICKBOOKS
from invoice_pipelines.resources.area import AREA as RESOURCES
from invoice_pipelines.settings import FOR_RUNS, NOW
from invoice_pipelines.tenants.area import AREA as TENANTS

# in the order `--help` lists their commands and definitions.py merges their definitions
AREAS: tuple[Area, ...] = (
    RESOURCES,
    DB,
    TENANTS,
    INTAKE,
    BILLING,
    EXPORTS,
    AUDIT,
    HISTORY,
    DOCUMENTS,
    DELIVERY,
    QUEUE,
    OVERDUE,
    QUICKBOOKS,
    HOUSEKEEPING,
)


def commands() -> list[tuple[Command, Area]]:
    """Every command with its area, in the order `--help` lists them; a group several areas add
    verbs to (`peppol`) once, with the first area and their helps joined as `--help` shows them
    (a listing: its verbs and its function stay the first area's)."""
    listed: dict[str, tuple[Command, Area]] = {}
    for area in AREAS:
        for command in area.commands:
            if command.name in listed:
                first, owner = listed[command.name]
                joined = f"{first.help}; {command.help}"
                listed[command.name] = (replace(first, help=joined), owner)
            else:
                listed[command.name] = (command, area)
    return list(listed.values())


def queue_kinds(areas: Sequence[Area] = AREAS) -> tuple[QueueKind, ...]:
    """Every area's kinds of batch job, in the order of the areas; each named by the one list
    (`core.batch_kinds.KindName`) and brought by one area only."""
    kinds = tuple(kind for area in areas for kind in area.kinds)
    unlisted = sorted(str(k.name) for k in kinds if not isinstance(k.name, KindName))
    if unlisted:
        raise ValueError(f"kinds {unlisted} are no KindName: name them in core/batch_kinds.py")
    twice = sorted({k.name for k in kinds if [j.name for j in kinds].count(k.name) > 1})
    if twice:
        raise ValueError(f"kinds {twice} are brought by more than one area")
    return kinds


def kinds(areas: Sequence[Area] = AREAS):
    """Every area's kinds as one read-only value (`queue.known_kinds.Kinds`), each by its loader: what
    the queue's Dagster objects are built from and what runs and commands get as their
    `batch_kinds` resource. A new value each call, filled by nobody: a command loads a kind only
    when it meets a job of it."""
    from invoice_pipelines.queue.domain.known_kinds import Kinds

    return Kinds({kind.name: kind.load for kind in queue_kinds(areas)})


def resources() -> dict[str, Resource]:
    """Every resource the areas make, by name; a name made twice, or needed by an area and made
    by none, is an error here (the code location and the commands would disagree)."""
    made: dict[str, Resource] = {}
    for area in AREAS:
        twice = sorted(set(area.provides) & set(made))
        if twice:
            raise ValueError(f"area {area.name!r} makes resources made before: {twice}")
        made.update(area.provides)
    for area in AREAS:
        missing = sorted(area.needs - set(made) - {KINDS_RESOURCE})
        if missing:
            raise ValueError(f"area {area.name!r} needs resources no area makes: {missing}")
    return made


def for_runs(resource: Resource) -> Any:
    """What definitions.py binds: the Dagster resource of what the builder makes for the code
    location (a secret an `EnvVar`, resolved when a run starts)."""
    built = load(resource.build)(FOR_RUNS)
    return load(resource.for_runs)(built) if resource.for_runs else built


def for_commands(resource: Resource) -> Any:
    """What a command gets: what the same builder makes from the settings read now (no Dagster)."""
    built = load(resource.build)(NOW)
    return load(resource.for_commands)(built) if resource.for_commands else built


def command_resources() -> dict[str, Callable[[], Any]]:
    """The factories of the resources a command may use, by the runs' names: what
    `resources.for_commands.EnvResources` builds each from when first asked for; the areas' kinds
    among them (`batch_kinds`, as the runs get them)."""
    return {
        **{
            name: partial(for_commands, resource)
            for name, resource in resources().items()
            if resource.commands
        },
        KINDS_RESOURCE: kinds,
    }
