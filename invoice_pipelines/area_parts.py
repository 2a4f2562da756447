"""What an area gives the two assemblies, `definitions.py` (the Dagster code location) and `cli.py`
(the console script): one `Area`, in its own `<area>/area.py`, listed in `areas.py`. Both
assemblies iterate that one list, so a command and a run are built from the same parts: its
commands, its Dagster definitions, its kinds of batch job and the resources it makes and needs.

An area's `area.py` is a declaration, nothing else: each part is named by where it lives, a
`module:name` string (`"invoice_pipelines.billing.commands.cli:add_commands"`), and this module imports it
(`load`) when an assembly asks for that part, so `invoice-pipelines --help` lists every area's
commands without loading one of them. Nothing here imports Dagster, SQLAlchemy or an area. The
import guard (`invoice_pipelines_tests/test_import_graph.py`) reads each string as an import of
the area.py that writes it.

A new area, its `<area>/area.py` (every field but the name may be left out):

    AREA = Area(
        "fax",
        commands=(
            Command("fax-send", "fax invoices", run="invoice_pipelines.fax.commands.run:run_send"),
        ),
        parsers="invoice_pipelines.fax.commands.cli:add_commands",  # add_commands(subparsers)
        definitions="invoice_pipelines.fax.defs:defs",  # its dagster.Definitions
        kinds=(QueueKind(KindName.FAXES, "invoice_pipelines.fax.domain.batch:FAXES_KIND"),),
        provides={"fax_line": Resource("invoice_pipelines.fax.resources:fax_line")},
        needs=DATABASES | {"fax_line"},
    )

then one line in `areas.py`. A new command of an area: one `Command` in its `commands` (its name,
its one-line help, `run=` the function that runs it, in a module that imports what it needs at its
top) and its parser in the area's `commands/cli.py` `add_commands` (`sub.add_parser(name)`, no help and no
`func`: the table gives both)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

# an area's `add_commands(subparsers)`: the argparse parsers of its commands (its cli.py)
AddCommands = Callable[[Any], None]
# what a command does with its parsed arguments (`args.resources` among them): its exit code
RunCommand = Callable[[Any], "int | None"]
# where a part lives: `package.module:name`, the name possibly dotted (`Class.method`)
PATH = re.compile(r"[A-Za-z_]\w*(?:\.\w+)*:[A-Za-z_]\w*(?:\.\w+)*")
# the names of resources an area `needs` that go together: the tenant and the system database
# (every area that runs or reads anything) and the three file stores (what an export, an audit
# carrier or an organization's handover writes from)
DATABASES = frozenset({"database", "system_database"})
FILE_STORES = frozenset({"upload_store", "export_store", "document_store"})


def load(path: str) -> Any:
    """What `module:name` names, its module imported now (once per process, as any import)."""
    module, _, name = path.partition(":")
    found: Any = import_module(module)
    for part in name.split("."):
        found = getattr(found, part)
    return found


def _checked(*paths: str | None) -> None:
    """A path a declaration writes is `module:name`: a typo is an error when the area is listed,
    not when the command or the run first needs the part."""
    wrong = [
        path
        for path in paths
        if path is not None and not (isinstance(path, str) and PATH.fullmatch(path))
    ]
    if wrong:
        raise ValueError(f"not a `module:name` path: {wrong}")


@dataclass(frozen=True)
class Command:
    """A command as `--help` lists it: its name and its one-line help (the one place it is
    written; the area's parser takes it from here, `Area.add_commands`).

    A group of verbs (`peppol`) may be listed by several areas, each adding its own verbs to the
    one parser (the first area's table creates it, the others' join it; `--help` shows their helps
    joined). `verbs` names the verbs this area adds, so a command naming one of another area's
    verbs does not load this area's parsers; empty: the area's parsers load for every verb.

    `run` names the function that runs the command (`module:function`: its module is imported
    when the command runs, the seam the command's work waits behind: `--help` and the other
    commands never import it); the module imports what the command needs at its top. Every
    command names one (issue 57): its parser only parses. A group's function takes the verb
    (`args.verb`); of a group several areas add verbs to, each of this area's verbs runs this
    area's function.

    `verb_runs` names, for a verb whose work lives in a module of its own, its function instead
    of `run` (`incoming review`, which writes and tells Dagster, beside the reading verbs: a
    reading verb never imports a writing one's module, issue 73)."""

    name: str
    help: str
    verbs: tuple[str, ...] = ()
    run: str = field(kw_only=True)
    verb_runs: Mapping[str, str] = field(default_factory=dict, kw_only=True)

    def __post_init__(self) -> None:
        _checked(self.run, *self.verb_runs.values())


def run_verb(args: Any, runs: Mapping[str, RunCommand]) -> int:
    """A group's function: the function of the verb given. The group's parser requires a verb
    (`add_subparsers(required=True)`), so argparse has answered a missing one already."""
    return runs[args.verb](args)


@dataclass(frozen=True)
class QueueKind:
    """A kind of batch job the area brings to the queue: its `batch_jobs.kind` (a member of the
    one list, `core.batch_kinds.KindName`, which `areas.queue_kinds` holds it to) and where its
    `queue.job_kind.JobKind` is (`module:NAME`), loaded only when a run or a command meets a job
    of that kind."""

    name: str
    path: str

    def __post_init__(self) -> None:
        _checked(self.path)

    def load(self) -> Any:  # -> queue.job_kind.JobKind (area_parts.py sits below the queue)
        return load(self.path)


@dataclass(frozen=True)
class Resource:
    """A resource by the name runs and commands both use, made by its one builder from the
    settings: `build` (`module:function`), called with how the settings are read
    (`settings.Reading`; `areas.py` calls it). A run gets what it builds for the code location
    (`settings.FOR_RUNS`: a secret as an `EnvVar`) in the Dagster resource `for_runs`
    (`module:function` of that one object) makes of it. A command gets what it builds reading
    every value now (`settings.NOW`), or what `for_commands` makes of that (the database: its
    engine). Either left out: the object itself. `commands=False`: a command has no resource of
    the name (it works in its own process: `document_parser`)."""

    build: str
    for_runs: str | None = None
    for_commands: str | None = None
    commands: bool = True

    def __post_init__(self) -> None:
        _checked(self.build, self.for_runs, self.for_commands)


@dataclass(frozen=True)
class Area:
    """One area as the assemblies see it. `commands` is what `--help` lists, in order; `parsers`
    names the area's `add_commands` (imported only for a command of the area); `definitions` its
    Dagster `Definitions`; `kinds` are its kinds of batch job; `provides` the resources it makes
    for every area (by name), `needs` names the resources its runs and commands use."""

    name: str
    commands: tuple[Command, ...] = ()
    parsers: str | None = None
    definitions: str | None = None
    kinds: tuple[QueueKind, ...] = ()
    provides: Mapping[str, Resource] = field(default_factory=dict)
    needs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _checked(self.parsers, self.definitions)
        if self.commands and self.parsers is None:
            raise ValueError(f"area {self.name!r} lists commands but names no parsers")

    def load_definitions(self) -> Any:  # -> dagster.Definitions, or None for an area without
        return load(self.definitions) if self.definitions is not None else None

    def add_commands(self, sub) -> None:
        """Add the area's commands to the console script's subparsers: its `cli.py` builds each
        parser, the help comes from `commands`; a command missing from either side is refused."""
        if self.parsers is None:
            return
        listed = _Listed(sub, {command.name: command.help for command in self.commands})
        load(self.parsers)(listed)
        missing = [name for name in listed.helps if name not in listed.added]
        if missing:
            raise ValueError(f"area {self.name!r} lists {missing} but its parsers add none")
        for command in self.commands:
            parser = sub.choices[command.name]
            verbs = _verbs_of(parser)
            # a group several areas add verbs to (`peppol`): each of this area's verbs runs this
            # area's function; any other command runs its own (with its verb)
            mine = {verb: verbs.get(verb) for verb in command.verbs} or {"": parser, **verbs}
            missing = [verb for verb, named in mine.items() if named is None]
            if missing:
                raise ValueError(f"area {self.name!r} lists {missing} but its parsers add none")
            if any(named.get_default("func") is not None for named in (parser, *mine.values())):
                raise ValueError(
                    f"command {command.name!r}: its function is named in its area's table (run)"
                )
            for named in mine.values() if command.verbs else (parser,):
                named.set_defaults(func=Deferred(command.run))
            for verb, path in command.verb_runs.items():
                if verb not in verbs:
                    raise ValueError(f"command {command.name!r} has no verb {verb!r} to run")
                verbs[verb].set_defaults(func=Deferred(path))


def _verbs_of(parser) -> dict:
    """The parsers of a group's verbs by name (`peppol lookup`), none for a command alone."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


class Deferred:
    """A command's `func` as its parser holds it: the path from its area's table, its function
    loaded (and the command's module imported) only when the command runs."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, args) -> int | None:
        return load(self.path)(args)


class _Listed:
    """The subparsers an area's `add_commands` gets: `add_parser(name)` takes the command's help
    from the area's table and refuses a command the table does not list."""

    def __init__(self, sub, helps: dict[str, str]) -> None:
        self._sub = sub
        self.helps = helps
        self.added: list[str] = []

    def add_parser(self, name: str, **options):
        if name not in self.helps:
            raise ValueError(f"command {name!r} is in no area's table (its area.py)")
        if "help" in options:
            raise ValueError(f"command {name!r}: its help is written in its area's table")
        self.added.append(name)
        if name in self._sub.choices:  # a group another area's table created: join it
            return _Joined(add_to_group(self._sub, name, self.helps[name]))
        return self._sub.add_parser(name, help=self.helps[name], **options)


def add_to_group(sub, name: str, help: str):
    """The parser of `name`, already in `sub`, whose help gains `help` (a group several areas
    add verbs to: `--help` lists it once with each area's help)."""
    for action in sub._choices_actions:
        if action.dest == name and help not in (action.help or "").split("; "):
            action.help = f"{action.help}; {help}"
    return sub.choices[name]


class _Joined:
    """A group's parser as a second area sees it: its verbs go into the group's one set of verbs,
    and the defaults the first area set stay."""

    def __init__(self, parser) -> None:
        self._parser = parser

    def add_subparsers(self, **options):
        return next(a for a in self._parser._actions if a.__class__.__name__ == "_SubParsersAction")

    def set_defaults(self, **defaults) -> None:
        self._parser.set_defaults(
            **{k: v for k, v in defaults.items() if self._parser.get_default(k) is None}
        )

    def __getattr__(self, name: str):
        return getattr(self._parser, name)
