"""A Dagster instance with real runs of our jobs, its webserver, and a headless system Chromium.

Used by the browser test and by `make screenshots`. No browser is downloaded: Playwright drives
the Debian `chromium` package.
"""

import json
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
WIDE_VIEWPORT = {"width": 3200, "height": 3400}  # the global lineage with all groups unfolded
COMMUNITY_DIALOG = "Join the Dagster community"  # what a fresh browser profile is greeted with

ORGANIZATION = "mueller-werkzeugbau"  # a demo organization
GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"
# line totals that do not add up: FAILED by BR-CO-10 and BR-CO-15
BAD_SUMS = "ZUGFeRD-corpus/XML-Rechnung/UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"
FAILED_FILE = "sums-broken.xml"
FAILED_RULE = "BR-CO-10"


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


def write_instance(home: Path, env: dict | None = None) -> None:
    """`home`/dagster.yaml: the instance `make run` uses, the repository's dagster.yaml (our run
    coordinator, the limits, SQLite storage), with Dagster's files in `home` instead of the folders
    its variables name (make run sets them to <data dir>/dagster).

    `env` is not used (the instance is no longer written by a script run in that environment); it
    stays accepted only while the committed test_browser.py still passes it."""
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


@dataclass(frozen=True)
class Recorded:
    """What the runs left behind for the UI to show."""

    failed_run: str  # the intake run with a FAILED document


def record_runs(home: Path, samples: Path) -> Recorded:
    """Seed the demo, then run the project's own jobs in process against the instance in `home`:
    two intake runs (the second FAILS one document: two points per plot) and one batch invoicing
    run (so billing has its materialization too).

    Reads the application database and the upload folder from the environment, as the code
    location does (INVOICE_PIPELINES_DB_URL, INVOICE_PIPELINES_UPLOAD_DIR)."""
    from dagster import DagsterInstance

    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.definitions import build_definitions
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.intake.uploads import ScanState, scan_uploads
    from invoice_pipelines.resources.uploads import LocalUploads
    from invoice_pipelines.settings import upload_dir
    from invoice_pipelines.tenants.partitions import (
        ORGANIZATIONS_PARTITIONS_NAME,
        organization_tags,
    )
    from invoice_pipelines_devtools.demo.seed import seed_demo

    engine = make_engine()
    seed_demo(engine)
    defs = build_definitions()
    store = LocalUploads()
    good = (samples / GOOD_CII).read_bytes()
    batches = [
        {"supplier-1.xml": good},
        {
            # another invoice number: not a duplicate of the first
            "supplier-2.xml": good.replace(b"471102", b"471202"),
            FAILED_FILE: (samples / BAD_SUMS).read_bytes(),
        },
    ]
    runs = []
    with DagsterInstance.from_config(str(home)) as instance:
        # what organizations_sensor does for every organization
        instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [ORGANIZATION])
        for files in batches:
            settled = time.time() - 600  # uploads register once their files stop changing
            for name, data in files.items():
                key = store.put(ORGANIZATION, name, data)
                os.utime(upload_dir() / key, (settled, settled))
            scan = scan_uploads(engine, store, ScanState(), only_organizations={ORGANIZATION})
            ids = [doc_id for batch in scan.batches for doc_id in batch.document_ids]
            assert len(ids) == len(files), scan
            result = defs.resolve_job_def("intake_job").execute_in_process(
                run_config={"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}},
                instance=instance,
                partition_key=ORGANIZATION,
                tags=organization_tags(ORGANIZATION),  # what our run coordinator adds
                # one parser worker: this machine also loads the webserver meanwhile
                resources={"document_parser": DocumentParser(workers=1)},
            )
            runs.append(result.run_id)
        defs.resolve_job_def("batch_invoicing_job").execute_in_process(
            instance=instance,
            partition_key=ORGANIZATION,
            tags=organization_tags(ORGANIZATION),
        )
    engine.dispose()
    return Recorded(failed_run=runs[-1])


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
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(60_000)
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


def _settled(page, measure_js: str, arg, until_js: str, timeout_ms: float = 30_000):
    """Measure in the page (`measure_js` applied to `arg`) until `until_js`, an expression of
    `value`, holds or the time is up; then return the measurement, for the test to assert on."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    waiting = f"(arg) => {{ const value = ({measure_js})(arg); return {until_js}; }}"
    try:
        page.wait_for_function(waiting, arg=arg, timeout=timeout_ms)
    except PlaywrightTimeout:
        pass  # the caller's assertion says what is wrong
    return page.evaluate(measure_js, arg)


# Which asset card each drawn edge of the lineage graph starts and ends at: the first and last
# point of every arrow (an SVG path with an arrow head) against the on-screen boxes of the asset
# cards, which are named by their title. Sorted pairs; null while a named card is not drawn.
_LINEAGE_EDGES_JS = """
(names) => {
  const svg = document.querySelector('svg[class*="svgContainer"]');
  if (!svg) return null;
  const cards = [];
  for (const box of svg.querySelectorAll('foreignObject')) {
    const title = [...box.querySelectorAll('[data-tooltip]')]
      .find(el => names.includes(el.textContent.trim()));
    if (title) cards.push({name: title.textContent.trim(), rect: box.getBoundingClientRect()});
  }
  if (!names.every(name => cards.some(card => card.name === name))) return null;
  const scale = svg.getScreenCTM().a;
  const cardAt = (path, at) => {
    const p = path.getPointAtLength(at).matrixTransform(path.getScreenCTM());
    let best = null;
    let bestDistance = Infinity;
    for (const card of cards) {
      const r = card.rect;
      const dx = Math.max(r.left - p.x, 0, p.x - r.right);
      const dy = Math.max(r.top - p.y, 0, p.y - r.bottom);
      const distance = Math.hypot(dx, dy);
      if (distance < bestDistance) { best = card.name; bestDistance = distance; }
    }
    return bestDistance <= 24 * scale ? best : null;  // the arrow head stops short of the card
  };
  // a hovered edge is drawn twice (plain and highlighted): one entry per pair of cards
  const pairs = new Set([...svg.querySelectorAll('path[marker-end]')].map(path => JSON.stringify(
    [cardAt(path, 0), cardAt(path, path.getTotalLength())])));
  return [...pairs].sort().map(pair => JSON.parse(pair));
}
"""


def lineage_edges(page, names: list[str], awaiting: set[tuple[str, str]]) -> set[tuple] | None:
    """The (from, to) asset cards of the edges drawn in the lineage graph on the page, once they
    are `awaiting` (edges are drawn a moment after the cards) or the time is up; None when a named
    card is not drawn."""
    want = sorted([list(pair) for pair in awaiting])
    drawn = _settled(
        page,
        _LINEAGE_EDGES_JS,
        names,
        f"JSON.stringify(value) === {json.dumps(json.dumps(want, separators=(',', ':')))}",
    )
    return None if drawn is None else {tuple(pair) for pair in drawn}


# How many pixels of a chart.js canvas are in colour: axes, grid and labels are grey, a plotted
# line is not. A line across the chart has about a thousand; one data point alone, a dot, ~30.
LINE_PIXELS = 150
_COLOURED_PIXELS_JS = """
(canvas) => {
  const {width, height} = canvas;
  if (!width || !height) return 0;
  const pixels = canvas.getContext('2d').getImageData(0, 0, width, height).data;
  let coloured = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    const [r, g, b, a] = [pixels[i], pixels[i + 1], pixels[i + 2], pixels[i + 3]];
    if (a > 128 && Math.max(r, g, b) - Math.min(r, g, b) > 80) coloured++;
  }
  return coloured;
}
"""


def plotted_pixels(canvas) -> int:
    """Coloured pixels of a chart's canvas, once there are enough for a line (the chart animates
    its drawing) or the time is up."""
    return _settled(
        canvas.page, _COLOURED_PIXELS_JS, canvas.element_handle(), f"value >= {LINE_PIXELS}"
    )
