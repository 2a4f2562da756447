"""What one export is asked: the organization's settings, the month, the direction, whether it is
closed or provisional, and who asked (`Job`); the checks of a month and of the running-month mode."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from invoice_pipelines.core.datev import Header
from invoice_pipelines.core.export_months import month_bounds
from invoice_pipelines.exports.domain.export_settings import ExportSettings, ExportSettingsError
from invoice_pipelines.settings import env


def check_period(period: str) -> str:
    match = re.fullmatch(r"(\d{4})-(\d{2})", period or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ExportSettingsError(f"the month {period!r} is not YYYY-MM")
    return period


RUNNING_MONTH_SETTING = "INVOICE_PIPELINES_EXPORT_RUNNING_MONTH"


RUNNING_MONTH_MODES = ("closed", "provisional")


def running_month_mode() -> str:
    """closed (the default) or provisional: whether the running month may be exported."""
    mode = (env(RUNNING_MONTH_SETTING) or "closed").strip().lower()
    if mode not in RUNNING_MONTH_MODES:
        raise ExportSettingsError(
            f"{RUNNING_MONTH_SETTING}={mode!r} is not one of {', '.join(RUNNING_MONTH_MODES)}"
        )
    return mode


@dataclass(frozen=True)
class Job:
    settings: ExportSettings
    period: str
    direction: str
    closed: bool
    run_id: str | None
    requested_by: str
    provisional: bool = False
    # where the invoices' documents are read for the DATEV document package (exports/domain/documents.py
    # DocumentStores); None: no package and no Beleglink
    documents: Any = None
    # invoice id -> why its document could not be read in an earlier attempt (left out now)
    unreadable: dict = field(default_factory=dict, compare=False)

    @property
    def header(self) -> Header:
        start, end = month_bounds(self.period)
        header = self.settings.header(start, end - timedelta(days=1), closed=self.closed)
        if self.provisional:
            # in the file itself too: the tax advisor's DATEV shows the batch's Bezeichnung
            header = replace(header, description=f"vorlaeufig {header.description}")
        return header
