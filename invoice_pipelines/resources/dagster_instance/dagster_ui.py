"""What a command tells Dagster it changed (issue 73): a runless asset materialization on the
instance, through the webserver's REST endpoint (`POST /report_asset_materialization/<asset
key>`, Dagster's external assets API), with the metadata the asset records in a run, for the
organization's partition. The UI shows the change at once instead of with the asset's next run.

Over HTTP, not Dagster's instance API: the command imports no Dagster (1-4 s of imports, and
commands that read or write the database import none, test_cli_lazy.py), and needs neither
DAGSTER_HOME nor the instance's storage, only the webserver's address
(INVOICE_PIPELINES_DAGSTER_URL; not set: the UI make run wrote it runs, resources/dagster_instance/local_dagster.py,
else port 3000; empty: none is told). One request per
event, each within REPORT_TIMEOUT_SECONDS; a webserver that does not answer (make run is not
running) costs one line on stderr, never the command's answer or its exit code.

The endpoint takes plain JSON values: numbers and text arrive as a run records them, a markdown
table (`metadata.Markdown`) as text; the asset's next run records it as a table again.

With the materialization go the evaluations of the asset's checks (`CheckEvent`, `POST
/report_asset_check/<asset key>`: check_name, passed, severity, metadata, partition), each the
finding the run's check makes (metadata.CheckFinding, the one rule of both), posted after the
materialization: Dagster shows a check "Not evaluated" on a materialization that came without
its evaluation. Dagster 1.13's endpoint takes no description, so the finding's description is
its metadata's `description` entry.
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO
from urllib.parse import quote, urlsplit

from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.metadata import CheckFinding
from invoice_pipelines.resources.dagster_instance.local_dagster import (
    URL_SETTING,
    dagster_url,
    not_reached_hint,
)

__all__ = ["URL_SETTING", "AssetEvent", "CheckEvent", "Report", "Terminal", "tell_dagster"]
# the webserver answers a report in milliseconds; one that takes longer is not one to wait for
REPORT_TIMEOUT_SECONDS = 2.0
# what a report's events say they are (the UI shows it beside the metadata)
RECORDED_BY = "recorded_by"


@dataclass(frozen=True)
class AssetEvent:
    """One runless materialization: the asset, the organization's partition, what it shows."""

    asset: str
    partition: str
    metadata: Mapping[str, object]
    description: str = ""


@dataclass(frozen=True)
class CheckEvent:
    """One runless evaluation of `asset`'s check `check_name`: what it found, for the
    organization's partition (None: a check over every organization, as its runs evaluate it)."""

    asset: str
    check_name: str
    finding: CheckFinding
    partition: str | None = None


class NotTold(Exception):
    """The webserver was not reached or refused the report."""


def _request(event: AssetEvent | CheckEvent) -> tuple[str, dict]:
    """The endpoint (below the webserver's address) and the JSON body of one event."""
    if isinstance(event, CheckEvent):
        found = event.finding
        body: dict = {
            "check_name": event.check_name,
            "passed": found.passed,
            "severity": found.severity,
            "metadata": {**found.metadata, "description": found.description},
        }
        if event.partition is not None:
            body["partition"] = event.partition
        return f"report_asset_check/{quote(event.asset)}", body
    body = {"partition": event.partition, "metadata": dict(event.metadata)}
    if event.description:
        body["description"] = event.description
    return f"report_asset_materialization/{quote(event.asset)}", body


def _post(base: str, event: AssetEvent | CheckEvent) -> None:
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotTold(f"{URL_SETTING} is not an http(s) address: {base!r}")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=REPORT_TIMEOUT_SECONDS)
    endpoint, body = _request(event)
    path = f"{parts.path.rstrip('/')}/{endpoint}"
    try:
        connection.request(
            "POST",
            path,
            body=json.dumps(body, default=str).encode(),
            headers={"Content-Type": "application/json"},
        )
        response = connection.getresponse()
        answer = response.read(2000)
    except (OSError, http.client.HTTPException) as exc:
        raise NotTold(f"{base} did not answer ({exc.__class__.__name__}: {exc})") from exc
    finally:
        connection.close()
    if response.status != 200:
        said = answer.decode(errors="replace").strip()[:200]
        raise NotTold(f"{base} refused it ({response.status}: {said})")


def tell_dagster(
    events: Sequence[AssetEvent | CheckEvent],
    *,
    url: str | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Report each event to the webserver at `url` (default: the setting), in order (an asset's
    materialization before its checks' evaluations); how many it took. The first failure ends
    the reports with one line on `stderr` (default sys.stderr): the UI shows the change with the
    asset's next run instead."""
    base = dagster_url() if url is None else url
    if not base or not events:
        return 0
    told = 0
    for event in events:
        try:
            _post(base, event)
        except NotTold as exc:
            assets = ", ".join(sorted({e.asset for e in events[told:]}))
            print(
                f"note: Dagster not told of this change ({exc}); the UI shows {assets} as of "
                f"the next run; {not_reached_hint()}",
                file=stderr or sys.stderr,
            )
            break
        told += 1
    return told


class Report(Protocol):
    """What a request's action (`<area>/domain/actions.py`) tells whoever asked for it: the
    sentences a person reads (`say`, `warn`) and what the UI shows changed (`changed`: the
    assets' events and their checks' evaluations, plain values). A run's report logs them and
    records the events in the run (resources/dagster_instance/run_report.py), a command's prints them and tells the
    webserver (`Terminal`); the action never knows which."""

    def say(self, line: str) -> None: ...

    def warn(self, line: str) -> None: ...

    def changed(self, events: Iterable[AssetEvent | CheckEvent]) -> None: ...


class Terminal:
    """A command's `Report`: each sentence one line on stdout (escaped, core/text.py), the
    events posted to the webserver; `events` is read only when a webserver is set, so a command
    without one builds none of them."""

    def say(self, line: str) -> None:
        print(terminal_text(line))

    def warn(self, line: str) -> None:
        print(terminal_text(line))

    def changed(self, events: Iterable[AssetEvent | CheckEvent]) -> None:
        if dagster_url():
            tell_dagster(list(events))
