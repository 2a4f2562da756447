"""A new user's view of the Dagster UI, in a real (system) Chromium: the pipeline as a connected
asset graph, plotted numbers on an asset page, and a FAILED document visible in its run."""

import os
from pathlib import Path

import pytest

from invoice_pipelines_tests.browser import ui
from invoice_pipelines_tests.conftest import require_programs, samples_dir

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

SCREENSHOTS = os.environ.get("INVOICE_PIPELINES_SCREENSHOTS")  # a folder: save them there
PIPELINE = ("uploads", "incoming_invoices", "sales_orders", "sales_invoices")


def _shot(page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"))


@pytest.fixture
def ui_with_runs(tmp_path, sqlite_database):
    require_programs("chromium")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "INVOICE_PIPELINES_DB_URL": sqlite_database.url}
    ui.write_instance(home, env)
    recorded = ui.record_runs(home, sqlite_database.url, tmp_path / "uploads", samples_dir())
    with ui.webserver(home, env) as base, ui.browser_page() as page:
        yield base, page, recorded


def test_a_new_user_sees_the_pipeline_its_numbers_and_its_failures(ui_with_runs):
    from playwright.sync_api import expect

    base, page, recorded = ui_with_runs

    # 1. the global asset lineage: the areas' groups open, every asset of the pipeline shown,
    # connected by one edge per dependency (uploads -> incoming_invoices, sales_orders -> sales_invoices)
    page.goto(f"{base}/asset-groups")
    ui.dismiss_popups(page)
    graph = page.locator('[class*="svgContainer"]')
    expect(graph).to_be_visible()
    for _ in range(2):  # both groups start folded
        fold = page.locator('[aria-label="unfold_more"]')
        expect(fold.first).to_be_visible()
        fold.first.click()
        ui.dismiss_popups(page)
    for name in PIPELINE:
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    edges = graph.locator("path[marker-end]")
    expect(edges).to_have_count(2)
    _shot(page, "lineage")

    # 2. an asset page with plotted metadata: the per-run numbers of incoming_invoices
    page.goto(f"{base}/assets/incoming_invoices")
    ui.dismiss_popups(page)
    expect(page.get_by_text("processed", exact=True).first).to_be_visible()
    plot_buttons = page.locator('[aria-label="asset_plot"]')
    expect(plot_buttons.first).to_be_visible()
    plot_buttons.first.click()
    chart = page.locator("canvas")
    expect(chart.first).to_be_visible()
    _shot(page, "asset-plot")
    page.keyboard.press("Escape")

    # 3. the run that failed a document: its check says so on the run page, with the file name
    page.goto(f"{base}/runs/{recorded['failed_run']}")
    ui.dismiss_popups(page)
    expect(page.get_by_text("no_failed_documents").first).to_be_visible()
    failed_check = page.get_by_text("failed for materialization of").first
    expect(failed_check).to_be_visible()
    failed_check.scroll_into_view_if_needed()
    _shot(page, "failed-document-run")
    # the check's table (the last of the run's two: the materialization carries it too)
    page.get_by_text("Show Markdown").last.click()
    expect(page.get_by_text(recorded["failed_file"]).first).to_be_visible()
