"""The browser test's Dagster instance with real runs of our jobs, and what it measures in the UI.

The instance, its webserver and the browser are the development tooling's
(invoice_pipelines_devtools/browser/local_ui.py), which `make screenshots` and the UI measurements
use too.
"""

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

WIDE_VIEWPORT = {"width": 4000, "height": 4400}  # the global lineage with all groups unfolded

ORGANIZATION = "mueller-werkzeugbau"  # a demo organization
GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"
# line totals that do not add up: FAILED by BR-CO-10 and BR-CO-15
BAD_SUMS = "ZUGFeRD-corpus/XML-Rechnung/UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"
FAILED_FILE = "sums-broken.xml"
FAILED_RULE = "BR-CO-10"


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
    from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
    from invoice_pipelines.intake.parser_resource import DocumentParser
    from invoice_pipelines.lib.partitions import (
        ORGANIZATIONS_PARTITIONS_NAME,
        organization_tags,
    )
    from invoice_pipelines.resources.files.uploads import LocalUploads
    from invoice_pipelines.settings import upload_dir
    from invoice_pipelines_devtools.demo.seed import seed_demo

    engine = make_engine()
    seed_demo(engine, system=engine)
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
            scan = scan_uploads(
                engine, store, ScanState(), system=engine, only_organizations={ORGANIZATION}
            )
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
