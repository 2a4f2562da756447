"""A new user's view of the Dagster UI, in a real (system) Chromium: the pipeline as a connected
asset graph, plotted numbers on an asset page, and a FAILED document visible in its run.

INVOICE_PIPELINES_SCREENSHOTS=<folder> saves what the user sees there (`make screenshots`).
"""

import os
import re
from pathlib import Path

import pytest

from invoice_pipelines_devtools.browser import local_ui
from invoice_pipelines_tests.browser import ui
from invoice_pipelines_tests.conftest import require_programs, samples_dir

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

SCREENSHOTS = os.environ.get("INVOICE_PIPELINES_SCREENSHOTS")
PIPELINE = [
    "mailbox_messages",
    "uploads",
    "incoming_invoices",
    "incoming_invoice_exports",
    "sales_orders",
    "sales_invoices",
    "sales_invoice_exports",
    "sales_invoice_documents",
    "invoice_emails",
    "invoice_text_messages",
    "receivables",
    "dunning_notices",
    "qbo_customers",
    "qbo_items",
    "qbo_invoices",
    "qbo_payments",
    "qbo_vendors",
    "qbo_bills",
    "qbo_bill_payments",
    "peppol_participants",
    "peppol_sent_documents",
    "peppol_received_documents",
    "peppol_monthly_report",
    "organizations",
    "audit_data_carrier",
]
DEPENDENCIES = {
    ("mailbox_messages", "uploads"),
    ("uploads", "incoming_invoices"),
    ("incoming_invoices", "incoming_invoice_exports"),
    ("sales_orders", "sales_invoices"),
    ("sales_invoices", "sales_invoice_exports"),
    ("sales_invoices", "sales_invoice_documents"),
    ("sales_invoice_documents", "invoice_emails"),
    ("sales_invoice_documents", "invoice_text_messages"),
    ("sales_invoices", "receivables"),
    ("qbo_payments", "receivables"),
    ("receivables", "dunning_notices"),
    ("sales_invoices", "qbo_invoices"),
    ("qbo_customers", "qbo_invoices"),
    ("qbo_items", "qbo_invoices"),
    ("qbo_invoices", "qbo_payments"),
    ("incoming_invoices", "qbo_vendors"),
    ("incoming_invoices", "qbo_bills"),
    ("qbo_vendors", "qbo_bills"),
    ("qbo_bills", "qbo_bill_payments"),
    ("invoice_emails", "peppol_sent_documents"),
    ("peppol_participants", "peppol_sent_documents"),
    ("incoming_invoices", "peppol_received_documents"),
    ("peppol_participants", "peppol_received_documents"),
    ("peppol_sent_documents", "peppol_monthly_report"),
    ("peppol_received_documents", "peppol_monthly_report"),
    ("incoming_invoices", "audit_data_carrier"),
    ("sales_invoices", "audit_data_carrier"),
}


# the per-group asset views docs/demo.md lists (paths after the UI's address, whatever its port)
GROUP_LINK = re.compile(r"`(/locations/__repository__@invoice_pipelines/asset-groups/(\w+))`")


def _groups() -> dict[str, set[str]]:
    """Each asset group of the code location with its assets."""
    from invoice_pipelines.definitions import defs

    groups: dict[str, set[str]] = {}
    for spec in defs.resolve_all_asset_specs():
        groups.setdefault(spec.group_name, set()).add(spec.key.to_user_string())
    return groups


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


def _requirements() -> Path:
    """The sample invoices, once Chromium and Playwright are there. What is missing skips the
    test (fails it under CI), and fails it when screenshots are asked for: no silent no-op."""
    try:
        require_programs(local_ui.CHROMIUM)
        pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
        return samples_dir()
    except pytest.skip.Exception as skipped:
        if SCREENSHOTS:
            pytest.fail(f"no screenshots taken: {skipped}")
        raise


@pytest.fixture
def ui_with_runs(tmp_path, monkeypatch):
    samples = _requirements()
    # the application database and the uploads of this test; the code location reads the same
    monkeypatch.setenv(
        "INVOICE_PIPELINES_DB_URL", local_ui.migrated_sqlite(tmp_path / "app.sqlite3")
    )
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    home = tmp_path / "dagster_home"
    env = dict(os.environ)
    local_ui.write_instance(home)
    log = tmp_path / "webserver.log"
    with local_ui.webserver(home, env, log) as server:
        recorded = ui.record_runs(home, samples)  # while the webserver loads the code
        server.wait_until_up()
        with local_ui.browser_page() as page:
            yield server.base, page, recorded
    # what the webserver and its code server said: pytest shows it with a failure only
    print(f"{log}:\n" + log.read_text(errors="replace")[-6000:])


def test_a_new_user_sees_the_pipeline_its_numbers_and_its_failures(ui_with_runs):
    from playwright.sync_api import expect

    base, page, recorded = ui_with_runs

    # 1. The global asset lineage as it opens in a normal window: every group (intake, billing,
    # exports, documents, delivery, overdue, quickbooks, peppol, organizations, audit) folded. This is docs/demo.md's
    # picture.
    page.goto(f"{base}/asset-groups")
    expect(page.get_by_text("Global asset lineage").first).to_be_visible()
    local_ui.skip_community_dialog(page)
    unfold = page.locator('[aria-label="unfold_more"]')
    expect(unfold).to_have_count(len(_groups()))
    page.mouse.move(1, 1)
    _shot(page, "lineage")
    # Unfolded, every asset of the pipeline, and an arrow from each upstream asset's card to its
    # downstream asset's card; wide and tall enough for every group: the graph draws only what is
    # in view (no picture: at this size the names are unreadable in a README)
    page.set_viewport_size(ui.WIDE_VIEWPORT)
    while unfold.count():
        unfold.first.click()
    graph = page.locator('svg[class*="svgContainer"]')
    # the unfolded groups are in the address now: loading it again fits the whole graph in view
    # (after each unfold the view follows the group that opened, and the graph draws only what
    # is in view)
    page.goto(page.url)
    graph = page.locator('svg[class*="svgContainer"]')
    for name in PIPELINE:
        # `.first`: the asset `organizations` shares its name with its group's label
        expect(graph.get_by_text(name, exact=True).first).to_be_visible()
    assert ui.lineage_edges(page, PIPELINE, awaiting=DEPENDENCIES) == DEPENDENCIES
    page.mouse.move(1, 1)  # no hover highlight in the picture
    # every card has its numbers (fourteen cards load their figures one request each: give them time)
    expect(graph.get_by_text("Loading...")).to_have_count(0, timeout=60_000)
    page.set_viewport_size(local_ui.VIEWPORT)

    # 1b. The per-group views docs/demo.md lists, one per group: each shows its assets at a
    # readable size, with their latest events and checks
    demo = (Path(__file__).resolve().parents[1] / "docs" / "demo.md").read_text()
    links = dict((group, path) for path, group in GROUP_LINK.findall(demo))
    groups = _groups()
    assert set(links) == set(groups), "docs/demo.md lists every asset group, no other"
    for group, path in links.items():
        page.goto(f"{base}{path}")
        graph = page.locator('svg[class*="svgContainer"]')
        for name in sorted(groups[group]):
            expect(graph.get_by_text(name, exact=True).first).to_be_visible()
        expect(graph.get_by_text("Loading...")).to_have_count(0, timeout=60_000)
        if group == "intake":  # docs/demo.md's second picture
            page.mouse.move(1, 1)
            _shot(page, "group-intake")

    # 2. An asset page with plotted metadata: incoming_invoices, one point per run (Events).
    page.goto(f"{base}/assets/incoming_invoices")
    expect(page.get_by_text("Metadata", exact=True)).to_be_visible()
    page.get_by_role("button", name="Plots").click()
    page.get_by_role("button", name="Events").click()
    title = page.get_by_text("count_failed", exact=True)  # FAILED documents: 0, then 1
    expect(title).to_be_visible()
    chart = page.locator("div").filter(has=title).filter(has=page.locator("canvas")).last
    canvas = chart.locator("canvas")
    expect(canvas).to_be_visible()
    assert ui.plotted_pixels(canvas) >= ui.LINE_PIXELS, "count_failed: no line plotted"
    _shot(page, "asset-plot")

    # 3. The run that FAILED a document: its log warns with the file and the rules, its check
    # fails, and the check's table names the file and the rule.
    page.goto(f"{base}/runs/{recorded.failed_run}")
    warning = page.get_by_text(re.compile(rf"\({re.escape(ui.FAILED_FILE)}\) FAILED: .*BR-"))
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(ui.FAILED_RULE)
    # the run evaluates every check that judges it (issue 56): this one is the FAILED document's
    check = page.get_by_text("failed for materialization of incoming_invoices").filter(
        has_text="no_failed_documents"
    )
    expect(check).to_be_visible()
    expect(check).to_contain_text("no_failed_documents")
    # the log over the whole page (its toolbar's expand button), the warning at the top: the
    # warning and the failed check in one picture
    page.locator('button:has([aria-label="expand_arrows"])').last.click()
    warning.evaluate("row => row.scrollIntoView({block: 'start'})")
    expect(warning).to_be_in_viewport()
    expect(check).to_be_in_viewport()
    _shot(page, "failed-document-run")
    event = page.locator("div").filter(has=check).filter(has_text="[Show Markdown]").last
    event.get_by_text("[Show Markdown]").click()
    table = page.get_by_role("dialog").filter(has_text="failed_documents")
    expect(table).to_be_visible()
    expect(table.get_by_role("cell", name=ui.FAILED_FILE)).to_be_visible()
    expect(table).to_contain_text(ui.FAILED_RULE)
