"""What a command tells Dagster it changed (issue 73): a runless asset materialization on the
instance, through the webserver's REST endpoint (`POST /report_asset_materialization/<asset
key>`, Dagster's external assets API), with the metadata the asset records in a run, for the
organization's partition. The UI shows the change at once instead of with the asset's next run.

Over HTTP, not Dagster's instance API: the command imports no Dagster (1-4 s of imports, and
commands that read or write the database import none, test_cli_lazy.py), and needs neither
DAGSTER_HOME nor the instance's storage, only the webserver's address
(INVOICE_PIPELINES_DAGSTER_URL, make run's UI by default; empty: none is told). One request per
event, each within REPORT_TIMEOUT_SECONDS; a webserver that does not answer (make run is not
running) costs one line on stderr, never the command's answer or its exit code.

The endpoint takes plain JSON values: numbers and text arrive as a run records them, a markdown
table (`metadata.Markdown`) as text; the asset's next run records it as a table again.
"""

from __future__ import annotations

import http.client
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import quote, urlsplit

from invoice_pipelines.settings import env

URL_SETTING = "INVOICE_PIPELINES_DAGSTER_URL"
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


class NotTold(Exception):
    """The webserver was not reached or refused the report."""


def _post(base: str, event: AssetEvent) -> None:
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotTold(f"{URL_SETTING} is not an http(s) address: {base!r}")
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname, parts.port, timeout=REPORT_TIMEOUT_SECONDS)
    body = {"partition": event.partition, "metadata": dict(event.metadata)}
    if event.description:
        body["description"] = event.description
    path = f"{parts.path.rstrip('/')}/report_asset_materialization/{quote(event.asset)}"
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
    events: Sequence[AssetEvent], *, url: str | None = None, stderr: TextIO | None = None
) -> int:
    """Report each event to the webserver at `url` (default: the setting); how many it took. The
    first failure ends the reports with one line on `stderr` (default sys.stderr): the UI shows
    the change with the asset's next run instead."""
    base = env(URL_SETTING) if url is None else url
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
                "the next run",
                file=stderr or sys.stderr,
            )
            break
        told += 1
    return told
