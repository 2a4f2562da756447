"""When the dunning (overdue) run happens: INVOICE_PIPELINES_DUNNING_* settings, checked when the
code location loads, and the `as_of` a run is asked to notice at.

`INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE` cron|interval, `INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE`
(a cron expression, or whole hours between runs, at least 1),
`INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE` (an IANA zone the cron expression is read in) and
`INVOICE_PIPELINES_DUNNING_BATCH_SIZE` (organizations per run). The old SCHEDULER_* names still
work, with a deprecation message (settings.RENAMED). A bad value is a ConfigError naming the
variable, so a wrong schedule never loads silently.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

# the as_of checks live in core (the run coordinator refuses a bad as_of before a run is queued)
from invoice_pipelines.core.dates import AsOfError as AsOfError
from invoice_pipelines.core.dates import check_as_of_day as check_as_of_day
from invoice_pipelines.core.dates import parse_as_of as parse_as_of
from invoice_pipelines.settings import ConfigError, env, source

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class ScheduleSettings:
    kind: str  # cron | interval
    cron: str  # what Dagster ticks on
    interval_hours: int | None  # interval: run only on ticks this many hours apart
    batch_size: int
    timezone: str

    def period(self) -> timedelta:
        """The time between two scheduled runs (for a cron: between the next two ticks)."""
        if self.interval_hours is not None:
            return timedelta(hours=self.interval_hours)
        # any fixed Monday (periods repeat), in the schedule's timezone; aware datetimes in and out
        start = datetime(2026, 1, 5, tzinfo=ZoneInfo(self.timezone))
        ticks = croniter(self.cron, start)
        first, second = ticks.get_next(datetime), ticks.get_next(datetime)
        return second - first

    def runs_at(self, moment: datetime) -> bool:
        """Interval schedules tick hourly and run on the hours that are a multiple of the interval
        (counted from 1970-01-01 00:00 UTC), so the spacing is exact whatever the interval."""
        if self.interval_hours is None:
            return True
        hours = int(moment.timestamp() // 3600)
        return hours % self.interval_hours == 0


def valid_cron(expression: str) -> bool:
    """A cron expression Dagster can tick on: croniter reads it, it has exactly five fields (no
    seconds), and it can happen (not the 30th or 31st of February only)."""
    if not expression or not croniter.is_valid(expression):
        return False
    fields = croniter.expand(expression)[0]
    if len(fields) != 5:
        return False
    days, months = fields[2], fields[3]
    return not (months == [2] and len(days) == 1 and days[0] in (30, 31))


TYPE = "INVOICE_PIPELINES_DUNNING_SCHEDULE_TYPE"
VALUE = "INVOICE_PIPELINES_DUNNING_SCHEDULE_VALUE"
TIMEZONE = "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE"
BATCH_SIZE = "INVOICE_PIPELINES_DUNNING_BATCH_SIZE"


def schedule_settings(environ: Mapping[str, str] | None = None) -> ScheduleSettings:
    """The schedule settings (from the process environment, with `environ` over it). A message
    names the variable the bad value came from (the old SCHEDULER_* name when that one was set)."""
    values = {**os.environ, **(environ or {})}
    name = {setting: source(setting, values) for setting in (TYPE, VALUE, TIMEZONE, BATCH_SIZE)}
    kind = env(TYPE, values).strip().lower()
    value = env(VALUE, values).strip()
    timezone = env(TIMEZONE, values).strip()
    raw_batch = env(BATCH_SIZE, values).strip()
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{name[TIMEZONE]} {timezone!r} is not a known timezone") from None
    try:
        batch_size = int(raw_batch)
    except ValueError:
        raise ConfigError(f"{name[BATCH_SIZE]} must be a whole number, got {raw_batch!r}") from None
    if batch_size < 1:
        raise ConfigError(f"{name[BATCH_SIZE]} must be at least 1, got {raw_batch!r}")
    if kind == "cron":
        if not valid_cron(value):
            raise ConfigError(f"{name[VALUE]} {value!r} is not a valid cron expression")
        return ScheduleSettings("cron", value, None, batch_size, timezone)
    if kind == "interval":
        if not re.fullmatch(r"[0-9]{1,6}", value):
            raise ConfigError(
                f"{name[VALUE]} must be whole hours for an interval schedule, got {value!r}"
            )
        hours = int(value)
        if hours < 1:
            raise ConfigError(
                f"{name[VALUE]} must be at least 1 hour for an interval schedule, got {value!r}"
            )
        if HOURS_PER_DAY % hours == 0:
            # the interval divides a day: a plain cron in the schedule's timezone, no skipped ticks
            cron = "0 0 * * *" if hours == HOURS_PER_DAY else f"0 */{hours} * * *"
            return ScheduleSettings("interval", cron, None, batch_size, timezone)
        # otherwise Dagster ticks every hour and runs_at() keeps the ticks `hours` apart
        return ScheduleSettings("interval", "0 * * * *", hours, batch_size, timezone)
    raise ConfigError(f"{name[TYPE]} must be cron or interval, got {kind!r}")
