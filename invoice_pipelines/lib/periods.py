"""A period's runs spread over a sensor's ticks (issue 76): when a period is due (a cron in a
timezone), its runs in order (chunks of organizations), and the cursor that says how far they are
requested, so that each tick submits a few and a repeated or crashed tick asks for nothing new.

Submitting a run over 100 organizations costs Dagster 0.4-1.5 s of Python at 10,000 of them; a
schedule that asks for its 100 runs at once ticks for 100 s and more. The sensor that keeps this
cursor (lib/sensors.py `period_runs_sensor`) asks for at most a few a tick instead.

The cursor (JSON): `tick` the period in hand (the instant its cron ticked), `requested` how many of
its runs were asked for, `remaining` the first and last organization of each run still to ask for,
`latest` the newest due tick taken in hand. Its rules:

- A period is planned once, at its first tick: later ticks request the chunks planned then, so
  the run keys (`<period>-batch-<n>`) always name the same organizations; organizations added
  later wait for the next period, as they did with a schedule.
- No cursor (a new deployment, or the sensor renamed): every tick due so far is taken as done and
  nothing is requested, as a new schedule does not run its past ticks; the next due tick starts.
- A person starts a period by setting the cursor to `{"tick": "<instant>"}` (in the sensor's
  timezone unless it has an offset): that period is planned at the next tick, and every tick due
  before that moment counts as done. Its chunks already run are not run again (their run keys).
- The daemon down over a due tick: the next tick starts it; down in the middle of a period: it
  goes on with that period's next chunk, then starts the newest tick due, if newer (periods
  between them are not caught up; a backfill does those).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

Chunk = tuple[str, str]  # the first and the last organization of a run (partition keys)


@dataclass(frozen=True)
class Cadence:
    """When periods are due: a cron read in a timezone, and which of its ticks count."""

    cron: str
    timezone: str
    counts: Callable[[datetime], bool] | None = None  # None: every tick

    def due(self, now: datetime) -> datetime:
        """The newest tick at or before `now` (aware, in the cadence's timezone)."""
        start = now.astimezone(ZoneInfo(self.timezone)).replace(microsecond=0)
        ticks = croniter(self.cron, start + timedelta(seconds=1))
        for _ in range(10_000):
            tick = ticks.get_prev(datetime)
            if self.counts is None or self.counts(tick):
                return tick
        raise ValueError(f"no tick of {self.cron!r} counts")  # counts() refuses them all

    def after(self, moment: datetime) -> datetime:
        """The first tick after `moment` that counts."""
        ticks = croniter(self.cron, moment.astimezone(ZoneInfo(self.timezone)))
        for _ in range(10_000):
            tick = ticks.get_next(datetime)
            if self.counts is None or self.counts(tick):
                return tick
        raise ValueError(f"no tick of {self.cron!r} counts")

    def read(self, value: str) -> datetime:
        """An instant a person wrote (`2026-11-01T03:00`), in this timezone unless it says."""
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(self.timezone))
        return moment


@dataclass(frozen=True)
class Progress:
    """The cursor: the period in hand and how far its runs are asked for."""

    latest: datetime | None = None  # the newest due tick taken in hand; None: as the cursor says
    tick: datetime | None = None  # the period in hand (its tick); None: none yet
    requested: int | None = None  # None: `tick` is to be planned at the next tick
    remaining: tuple[Chunk, ...] = ()

    @property
    def planned(self) -> bool:
        return self.tick is not None and self.requested is not None

    @property
    def runs(self) -> int:
        return (self.requested or 0) + len(self.remaining)

    @classmethod
    def read(cls, cursor: str | None, cadence: Cadence) -> Progress | None:
        """The cursor's progress; None when there is none. A cursor that is no JSON object with a
        readable `tick` (or `latest`) is a ValueError saying what it wants."""
        if not cursor:
            return None
        try:
            data = json.loads(cursor)
            if not isinstance(data, dict) or not ({"tick", "latest"} & data.keys()):
                raise ValueError("no tick")
            tick = cadence.read(data["tick"]) if data.get("tick") else None
            latest = cadence.read(data["latest"]) if data.get("latest") else None
            requested = data.get("requested")
            remaining = tuple((str(a), str(b)) for a, b in data.get("remaining") or ())
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"cursor {cursor[:200]!r} is not this sensor's: set it to "
                '{"tick": "<YYYY-MM-DDTHH:MM>"} to request that tick\'s period, or clear it '
                f"({exc})"
            ) from None
        return cls(latest, tick, None if requested is None else int(requested), remaining)

    def write(self) -> str:
        data: dict = {}
        if self.tick is not None:
            data["tick"] = self.tick.isoformat()
        if self.requested is not None:
            data["requested"] = self.requested
        if self.remaining:
            data["remaining"] = [list(chunk) for chunk in self.remaining]
        if self.latest is not None:
            data["latest"] = self.latest.isoformat()
        return json.dumps(data, separators=(",", ":"))


@dataclass(frozen=True)
class Step:
    """What one tick does: the chunks to request now (numbered within their period), the cursor
    after it, and whether this tick took everything due as done without requesting it."""

    progress: Progress
    chunks: Sequence[tuple[int, str, str]] = ()
    fresh: bool = False


def step(
    progress: Progress | None,
    due: datetime,
    plan: Callable[[datetime], Sequence[Chunk]],
    per_tick: int,
) -> Step:
    """One tick: go on with the period in hand, else start the newest due tick when it is newer
    than the last taken in hand; `plan(tick)` cuts a period into its chunks (called once a
    period), at most `per_tick` of them are requested."""
    if progress is None:
        return Step(Progress(latest=due), fresh=True)
    latest = progress.latest
    if latest is None:
        # written by a person (or a new deployment's first tick): what is due now counts as done,
        # besides the period the cursor names
        latest = max(due, progress.tick) if progress.tick else due
    if progress.tick is not None and not progress.planned:
        progress = Progress(latest, progress.tick, 0, tuple(plan(progress.tick)))
    elif not progress.remaining and due > latest:
        progress = Progress(due, due, 0, tuple(plan(due)))
    else:
        progress = Progress(latest, progress.tick, progress.requested, progress.remaining)
    if not progress.remaining:
        return Step(progress)
    first = progress.requested or 0
    now, rest = progress.remaining[:per_tick], progress.remaining[per_tick:]
    numbered = [(first + number, a, b) for number, (a, b) in enumerate(now)]
    return Step(Progress(progress.latest, progress.tick, first + len(now), rest), numbered)
