"""What an area gives the two assemblies, `definitions.py` (the Dagster code location) and `cli.py`
(the console script): one `Area`, in its own `<area>/area.py`, listed in `areas.py`. Both
assemblies iterate that one list, so a command and a run are built from the same parts: its
commands, its Dagster definitions, its kinds of batch job and the resources it makes and needs.

Light on purpose: nothing here imports Dagster, SQLAlchemy or an area, and an `Area` names its
parts by loaders (functions that import them when an assembly asks), so `invoice-pipelines --help`
lists every area's commands without loading one of them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dagster import Definitions

# an area's `add_commands(subparsers)`: the argparse parsers of its commands (its cli.py)
AddCommands = Callable[[Any], None]
# what a command does with its parsed arguments (`args.resources` among them): its exit code
RunCommand = Callable[[Any], "int | None"]


@dataclass(frozen=True)
class Command:
    """A command as `--help` lists it: its name and its one-line help (the one place it is
    written; the area's parser takes it from here, `Area.add_commands`).

    A group of verbs (`peppol`) may be listed by several areas, each adding its own verbs to the
    one parser (the first area's table creates it, the others' join it; `--help` shows their helps
    joined). `verbs` names the verbs this area adds, so a command naming one of another area's
    verbs does not load this area's parsers; empty: the area's parsers load for every verb.

    `run` loads the function that runs the command (the one import of its module, the seam the
    command's work waits behind: `--help` and the other commands never import it); the module it
    comes from imports what the command needs at its top. Every command names one (issue 57):
    its parser only parses. A group's function takes the verb (`args.verb`); of a group several
    areas add verbs to, each of this area's verbs runs this area's function.

    `verb_runs` names, for a verb whose work lives in a module of its own, the loader of its
    function instead of `run` (`incoming review`, which writes and tells Dagster, beside the
    reading verbs: a reading verb never imports a writing one's module, issue 73)."""

    name: str
    help: str
    verbs: tuple[str, ...] = ()
    run: Callable[[], RunCommand] = field(kw_only=True)
    verb_runs: Mapping[str, Callable[[], RunCommand]] = field(default_factory=dict, kw_only=True)


def run_verb(args: Any, runs: Mapping[str, RunCommand]) -> int:
    """A group's function: the function of the verb given. The group's parser requires a verb
    (`add_subparsers(required=True)`), so argparse has answered a missing one already."""
    return runs[args.verb](args)


@dataclass(frozen=True)
class QueueKind:
    """A kind of batch job the area brings to the queue: its `batch_jobs.kind` (a member of the
    one list, `core.batch_kinds.KindName`, which `areas.queue_kinds` holds it to) and a loader of
    its `queue.job_kind.JobKind`, called only when a run or a command meets a job of that kind."""

    name: str
    load: Callable[[], Any]  # -> queue.job_kind.JobKind (area.py sits below the queue)


@dataclass(frozen=True)
class Resource:
    """How a resource is made from the environment, under the name runs and commands both use:
    `for_runs` gives what definitions.py binds (a Dagster resource), `for_commands` the plain
    object that resource wraps, without Dagster (`resources.for_commands.EnvResources`); None
    where a command has no resource of that name."""

    for_runs: Callable[[], Any]
    for_commands: Callable[[], Any] | None = None


@dataclass(frozen=True)
class Area:
    """One area as the assemblies see it. `commands` is what `--help` lists, in order; `parsers`
    loads the area's `add_commands` (imported only for a command of the area); `definitions` loads
    its Dagster `Definitions`; `kinds` are its kinds of batch job; `provides` loads the resources
    it makes for every area (by name), `needs` names the resources its runs and commands use."""

    name: str
    commands: tuple[Command, ...] = ()
    parsers: Callable[[], AddCommands] | None = None
    definitions: Callable[[], Definitions] | None = None
    kinds: tuple[QueueKind, ...] = ()
    provides: Callable[[], Mapping[str, Resource]] | None = None
    needs: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if self.commands and self.parsers is None:
            raise ValueError(f"area {self.name!r} lists commands but loads no parsers")

    def add_commands(self, sub) -> None:
        """Add the area's commands to the console script's subparsers: its `cli.py` builds each
        parser, the help comes from `commands`; a command missing from either side is refused."""
        if self.parsers is None:
            return
        listed = _Listed(sub, {command.name: command.help for command in self.commands})
        self.parsers()(listed)
        missing = [name for name in listed.helps if name not in listed.added]
        if missing:
            raise ValueError(f"area {self.name!r} lists {missing} but its parsers add none")
        for command in self.commands:
            parser = sub.choices[command.name]
            verbs = _verbs_of(parser)
            # a group several areas add verbs to (`peppol`): each of this area's verbs runs this
            # area's function, a loader per verb; any other command runs its own (with its verb)
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
            for verb, load in command.verb_runs.items():
                if verb not in verbs:
                    raise ValueError(f"command {command.name!r} has no verb {verb!r} to run")
                verbs[verb].set_defaults(func=Deferred(load))


def _verbs_of(parser) -> dict:
    """The parsers of a group's verbs by name (`peppol lookup`), none for a command alone."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


class Deferred:
    """A command's `func` as its parser holds it: the loader from its area's table, called (and
    the command's module imported) only when the command runs."""

    def __init__(self, load: Callable[[], RunCommand]) -> None:
        self.load = load

    def __call__(self, args) -> int | None:
        return self.load()(args)


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
