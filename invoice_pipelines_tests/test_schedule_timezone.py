"""Every schedule reads its times in one zone, `settings.SCHEDULE_TIMEZONE` (issue 73, point 10:
Dagster's Automation page showed schedule times in two zones, GMT+1 and UTC)."""

from invoice_pipelines.definitions import defs
from invoice_pipelines.settings import SCHEDULE_TIMEZONE, SETTINGS


def test_every_schedule_names_the_one_timezone():
    schedules = defs.get_repository_def().schedule_defs
    assert len(schedules) > 10
    zones = {schedule.name: schedule.execution_timezone for schedule in schedules}
    assert zones == dict.fromkeys(zones, SCHEDULE_TIMEZONE)


def test_the_dunning_schedules_own_setting_defaults_to_it():
    [setting] = [s for s in SETTINGS if s.name == "INVOICE_PIPELINES_DUNNING_SCHEDULE_TIMEZONE"]
    assert setting.default == SCHEDULE_TIMEZONE
