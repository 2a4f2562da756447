"""A local Dagster UI to look at: a migrated scratch database, the instance `make run` uses, the
project's webserver on a loopback port, and a headless system Chromium.

Used by the browser tests, `make screenshots` and scripts/measure-partition-pages.py. No browser is
downloaded: Playwright drives the Debian `chromium` package.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1440, "height": 1000}
PATIENCE_MS = 60_000  # how long the UI may take to show what a step waits for, under load
COMMUNITY_DIALOG = "Join the Dagster community"  # what a fresh browser profile is greeted with


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def migrated_sqlite(path: Path) -> str:
    """A scratch application database, migrated to head (what `invoice-pipelines migrate` does)."""
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.db.migrate import upgrade

    url = f"sqlite:///{path}"
    owner = make_engine(url, owner=True)
    upgrade(owner)
    owner.dispose()
    return url


def write_instance(home: Path) -> None:
    """`home`/dagster.yaml: the instance `make run` uses, the repository's dagster.yaml (our run
    coordinator, the limits, SQLite storage), with Dagster's files in `home` instead of the folders
    its variables name (make run sets them to <data dir>/dagster)."""
    folders = {
        "INVOICE_PIPELINES_DAGSTER_DIR": str(home),
        "INVOICE_PIPELINES_DAGSTER_COMPUTE_LOGS_DIR": str(home / "compute_logs"),
    }

    def resolved(value):
        if isinstance(value, dict):
            if set(value) == {"env"} and value["env"] in folders:
                return folders[value["env"]]
            return {key: resolved(item) for key, item in value.items()}
        return value

    config = resolved(yaml.safe_load((REPO / "dagster.yaml").read_text()))
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    # Dagster's tables made now: a webserver and runs opening a fresh storage at the same moment
    # race to create them ("table alembic_version already exists")
    from dagster import DagsterInstance

    DagsterInstance.from_config(str(home)).dispose()


@dataclass
class Webserver:
    proc: subprocess.Popen
    base: str
    log: Path

    def wait_until_up(self, seconds: float = 180) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                with urllib.request.urlopen(f"{self.base}/server_info", timeout=2):
                    return
            except OSError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    output = self.log.read_text(errors="replace")
                    raise RuntimeError(f"the webserver did not come up:\n{output[-3000:]}") from exc
                time.sleep(0.5)

    def stop(self) -> None:
        """Stop its process group (the webserver and the code server it started)."""
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
            # the leader is gone; children it left behind in the group go with it
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            return


@contextmanager
def webserver(home: Path, env: dict, log: Path) -> Iterator[Webserver]:
    """`dagster-webserver -w workspace.yaml` on a free loopback port, in a process group of its
    own, its output in `log`; started at once, so the caller can do other work while it loads the
    code. Stopped, with everything in its group, however the block ends."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                "-w",
                "workspace.yaml",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO,
            env={**env, "DAGSTER_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Webserver(proc, f"http://127.0.0.1:{port}", log)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def browser_page():
    from playwright.sync_api import expect, sync_playwright

    # the page's waits and the assertions' alike: Playwright's `expect` gives up after 5 s of its
    # own, and an asset page's definition took longer than that on a loaded CI machine (the page
    # says "External Asset" until it has it)
    expect.set_options(timeout=PATIENCE_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(PATIENCE_MS)
            yield page
        finally:
            browser.close()


def skip_community_dialog(page) -> None:
    """Where the instance shows it (the repository's dagster.yaml does not: `nux` off), a fresh
    profile is greeted by "Join the Dagster community" a moment after the first page loads: skip
    it (the browser remembers), so it is in no screenshot. Call on the first page."""
    from urllib.parse import urlsplit

    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import expect

    dialog = page.get_by_text(COMMUNITY_DIALOG)
    skip = page.get_by_role("button", name="Skip")
    url = urlsplit(page.url)
    asked = page.request.post(
        f"{url.scheme}://{url.netloc}/graphql", data={"query": "{ shouldShowNux }"}
    )
    if asked.json()["data"]["shouldShowNux"]:
        try:
            dialog.wait_for(timeout=20_000)
        except PlaywrightTimeout:
            pass  # not shown by this version of the UI, or not yet
        else:
            skip.click()
            expect(dialog).to_be_hidden()
    # should it come up later all the same, skip it wherever it stands in the way of an action
    page.add_locator_handler(dialog, lambda _: skip.click())
