"""Where the Dagster of `make run` is, for a command run from a second shell (issue 85): its UI's
address and its instance's folders, written by make run into the data dir once the UI answers
(`LOCAL_DAGSTER_FILE`, as the demo's QuickBooks simulator writes `qbo/local-quickbooks.json`).

A command reads it for what is not set: `INVOICE_PIPELINES_DAGSTER_URL` (the UI a command tells
what it changed; a variable that is set, even empty, always wins) and the instance's variables
(`DAGSTER_HOME`, `INVOICE_PIPELINES_DAGSTER_DIR`, `INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR`),
which the repository's dagster.yaml needs together: with DAGSTER_HOME set as getting-started says
and the others not, opening the instance ended `organizations add` in a traceback. Without the
file (no make run here), the defaults make run would use. Imports no Dagster.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from invoice_pipelines.settings import PROJECT_ROOT, data_dir, env

URL_SETTING = "INVOICE_PIPELINES_DAGSTER_URL"
LOCAL_DAGSTER_FILE = Path("local-dagster.json")
DAGSTER_DIR = "INVOICE_PIPELINES_DAGSTER_DIR"
COMPUTE_LOGS_DIR = "INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR"


def local_dagster(folder: Path | None = None) -> dict[str, str]:
    """What make run wrote into the data dir `folder` (url, dagster_home, dagster_dir,
    compute_logs_dir), or {} (no make run here, or an unreadable file)."""
    try:
        written = json.loads(((folder or data_dir()) / LOCAL_DAGSTER_FILE).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(written, dict):
        return {}
    return {key: value for key, value in written.items() if isinstance(value, str)}


def dagster_url() -> str:
    """The UI a command tells what it changed: the variable when set (empty: none), else the
    address make run wrote, else the setting's default (make run's default port)."""
    if os.environ.get(URL_SETTING) is not None:
        return os.environ[URL_SETTING]
    return local_dagster().get("url") or env(URL_SETTING)


def not_reached_hint() -> str:
    """What a person does when the UI did not answer: the one sentence every command prints."""
    return (
        f"set {URL_SETTING} to the address of the Dagster UI (make run writes it into "
        f"{data_dir() / LOCAL_DAGSTER_FILE}), or to nothing to tell none"
    )


def instance_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The instance's variables make run sets, for those not set in `environ` (default the
    process's): from make run's file, else make run's defaults (the repository's dagster.yaml,
    Dagster's files under the data dir). Whatever DAGSTER_HOME says, the other two are set."""
    environ = os.environ if environ is None else environ
    written = local_dagster()
    dagster_dir = environ.get(DAGSTER_DIR) or written.get("dagster_dir")
    dagster_dir = dagster_dir or str(data_dir() / "dagster")
    wanted = {
        "DAGSTER_HOME": written.get("dagster_home") or str(PROJECT_ROOT),
        DAGSTER_DIR: dagster_dir,
        COMPUTE_LOGS_DIR: written.get("compute_logs_dir") or f"{dagster_dir}/compute_logs",
    }
    return {name: value for name, value in wanted.items() if not environ.get(name)}


def use_local_instance() -> bool:
    """Set the instance's variables that are not set (`instance_environment`) in this process,
    when there is an instance to open: DAGSTER_HOME given, or make run's file. False: none."""
    if not os.environ.get("DAGSTER_HOME") and not local_dagster().get("dagster_home"):
        return False
    os.environ.update(instance_environment())
    return True
