"""A Dagster instance with real runs of our jobs, its webserver, and a headless system Chromium.

Used by the browser test and by `make screenshots`. No browser is downloaded: Playwright drives
the Debian `chromium` package.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
GOOD_CII = "ZUGFeRD-corpus/XML-Rechnung/CII/EN16931_Einfach.cii.xml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_instance(home: Path, env: dict) -> None:
    """The instance `make run` uses: SQLite storage, our run coordinator, the limits."""
    subprocess.run(
        [str(REPO / "scripts" / "dagster-home.sh"), "sqlite"],
        cwd=REPO,
        env={**env, "DAGSTER_HOME": str(home)},
        check=True,
        stdout=subprocess.DEVNULL,
    )


def record_runs(home: Path, db_url: str, uploads: Path, samples: Path) -> dict:
    """Seed the demo, then run intake twice (one run fails a document) and one batch invoicing
    run in process against the instance in `home`. Returns what the checks look for."""
    from dagster import DagsterInstance, Definitions

    from invoice_pipelines.billing import defs as billing
    from invoice_pipelines.db.engine import make_engine
    from invoice_pipelines.demo.seed import seed_demo
    from invoice_pipelines.intake import defs as intake
    from invoice_pipelines.intake.uploads import ScanState, scan_uploads
    from invoice_pipelines.resources.database import Database
    from invoice_pipelines.resources.ocr import TesseractOcrEngine
    from invoice_pipelines.resources.parser import DocumentParser
    from invoice_pipelines.resources.storage import LocalUploadStore
    from invoice_pipelines.tenants.partitions import ORGANIZATIONS_PARTITIONS_NAME

    engine = make_engine(db_url)
    seed_demo(engine)
    slug = "mueller-werkzeugbau"
    store = LocalUploadStore(root=str(uploads))
    defs = Definitions.merge(
        intake.defs,
        billing.defs,
        Definitions(
            resources={
                "database": Database(url=db_url),
                "upload_store": store,
                "ocr_engine": TesseractOcrEngine(),
                "document_parser": DocumentParser(workers=1),
            }
        ),
    )
    instance = DagsterInstance.from_config(str(home))
    instance.add_dynamic_partitions(ORGANIZATIONS_PARTITIONS_NAME, [slug])
    good = (samples / GOOD_CII).read_bytes()
    runs = []
    for i, files in enumerate(
        [
            {"supplier-1.xml": good},
            {
                "supplier-2.xml": good.replace(b"471102", b"471202"),
                "broken-scan.pdf": b"%PDF-1.4 this is not a real pdf",
            },
        ]
    ):
        old = time.time() - 600
        for name, data in files.items():
            store.put(slug, name, data)
            os.utime(os.path.join(store.root, slug, name), (old, old))
        scan = scan_uploads(engine, store, ScanState(), only_organizations={slug})
        ids = [d for b in scan.batches for d in b.document_ids]
        result = defs.resolve_job_def("intake_job").execute_in_process(
            run_config={"ops": {"incoming_invoices": {"config": {"document_ids": ids}}}},
            instance=instance,
            partition_key=slug,
            tags={"run": str(i)},
        )
        runs.append(result.run_id)
    batch = defs.resolve_job_def("batch_invoicing_job").execute_in_process(
        instance=instance, partition_key=slug
    )
    engine.dispose()
    return {
        "organization": slug,
        "failed_run": runs[-1],
        "failed_file": "broken-scan.pdf",
        "batch_run": batch.run_id,
    }


@contextmanager
def webserver(home: Path, env: dict):
    port = free_port()
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
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                    raise RuntimeError(f"webserver did not come up:\n{output[-3000:]}") from exc
                time.sleep(0.5)
        yield base
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


@contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(60_000)
            # a fresh profile gets the "Join the Dagster community" dialog a moment after the
            # first page loads; whenever it stands in the way of an action, skip it
            page.add_locator_handler(
                page.get_by_text("Join the Dagster community"),
                lambda _: page.get_by_role("button", name="Skip").click(),
            )
            yield page
        finally:
            browser.close()


def dismiss_popups(page) -> None:
    """Close the first-run dialog if it is up already (the page's handler catches it later)."""
    dialog = page.get_by_text("Join the Dagster community")
    try:
        dialog.wait_for(timeout=5_000)
    except Exception:  # not shown (yet): the locator handler takes care of it
        return
    page.get_by_role("button", name="Skip").click()
