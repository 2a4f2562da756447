"""What a new user does with the running demo (issue 56's "Done when"), against a live `make run`:
export the demo's closed month from the UI in Chromium as docs/demo.md walks it, read a paid
supplier invoice with `incoming list` and `incoming show`, and run `qbo-sync` as the README says.

test_make_run.py calls these with the demo it started: one start of the whole of Dagster serves
them all. The commands run as processes from the repository, as from a second shell beside the
demo, with no INVOICE_PIPELINES_* variable but the two that say where this test's demo keeps what
a user's keeps in `.data` (its data dir and its database).
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import create_engine, text

from invoice_pipelines_devtools.browser import local_ui
from invoice_pipelines_devtools.qbo_simulator.server import SimulatorControl
from invoice_pipelines_tests.exports.datev_reader import read_extf

REPO = Path(__file__).resolve().parents[1]
DEMO_MD = REPO / "docs" / "demo.md"
CLI = Path(sys.executable).parent / "invoice-pipelines"  # .venv/bin/invoice-pipelines
EXPORTING = "mueller-werkzeugbau"  # books with DATEV: its closed month is exported
PAYING = "acme-office-supplies"  # books in QuickBooks: its supplier invoices come back paid
EXPORT_ASSET = "incoming_invoice_exports"
# the demo's bills: "paid 2026-11-26: 1234.56 USD[, Skonto 12.34 USD (2 %) taken]"
PAID_LINE = re.compile(
    r"^\s+paid (?P<day>\d{4}-\d{2}-\d{2}): (?P<amount>\d+\.\d{2}) USD"
    r"(?:, Skonto (?P<skonto>\d+\.\d{2}) USD \((?P<percent>[\d.]+) %\) taken)?$"
)
DOCUMENT_LINE = re.compile(r"^\s*(?P<id>\d+)\s+(?P<status>[A-Z_]+)\s")
BILL_NOTE = re.compile(r"^invoice-pipelines incoming invoice (\d+)\b")
CLOSE_SECONDS = 120
UI_MS = 60_000  # a page's parts on a busy machine (deadlines, not measurements)
RUN_MS = 300_000  # the export run: queued, started, done
# what docs/demo.md says lands in exports/<organization>/<month>/: the DATEV Buchungsstapel, the
# DATEV Debitoren/Kreditoren file, the invoices and lines CSV and the DATEV document package
EXPORT_FILES = {
    "datev_file",
    "datev_partners_file",
    "csv_file",
    "csv_lines_file",
    "datev_documents_file",
}


@dataclass(frozen=True)
class LiveDemo:
    """Where the running demo is: its UI, its data dir, its database, its QBO simulator."""

    ui: str
    data_dir: Path
    db_url: str
    qbo_url: str

    def shell_env(self) -> dict[str, str]:
        """A second shell in the repository: none of the project's variables but where this
        demo keeps its data (a user's demo keeps it in `.data`, which the defaults name)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("INVOICE_PIPELINES_") and k != "DAGSTER_HOME"
        }
        env["INVOICE_PIPELINES_DATA_DIR"] = str(self.data_dir)
        env["INVOICE_PIPELINES_DB_URL"] = self.db_url
        return env

    def command(self, *args: str) -> str:
        """`.venv/bin/invoice-pipelines ARGS` as a user types it; its output (it must succeed)."""
        done = subprocess.run(
            [str(CLI), *args],
            cwd=REPO,
            env=self.shell_env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stderr[-3000:]}"
        return done.stdout

    def query(self, sql: str, **params) -> list:
        engine = create_engine(self.db_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).all()
        finally:
            engine.dispose()

    def realm(self, slug: str) -> str:
        companies = json.loads((self.data_dir / "qbo" / "demo-companies.json").read_text())
        return companies[slug]["realm_id"]

    def graphql(self, query: str) -> dict:
        request = urllib.request.Request(
            f"{self.ui}/graphql",
            data=json.dumps({"query": query}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]


def last_closed_month(now: datetime | None = None) -> str:
    """The month before the running one (UTC), the newest month the export partitions offer."""
    first = (now or datetime.now(UTC)).date().replace(day=1)
    return f"{first - timedelta(days=1):%Y-%m}"


# 1. The closed month, exported from the UI


def exports_group_path() -> str:
    """The exports group's path after the UI's address, as docs/demo.md's table lists it."""
    found = re.search(
        r"`(/locations/__repository__@invoice_pipelines/asset-groups/exports)`",
        DEMO_MD.read_text(),
    )
    assert found, "docs/demo.md names no path of the exports group"
    return found.group(1)


def launch_the_export_in_the_browser(demo: LiveDemo, month: str) -> str:
    """docs/demo.md's "Export a closed month", clicked: the exports group, the asset, Materialize,
    the organization and the newest month, Launch; then the run's page until it ends. The run's
    status as the page shows it."""
    from playwright.sync_api import expect

    expect.set_options(timeout=UI_MS)
    with local_ui.browser_page() as page:
        page.goto(f"{demo.ui}{exports_group_path()}")
        local_ui.skip_community_dialog(page)
        # the asset's card in the group's graph: selected, with its details beside the graph
        graph = page.locator('svg[class*="svgContainer"]')
        graph.get_by_text(EXPORT_ASSET, exact=True).click(timeout=UI_MS)
        page.get_by_role("button", name=re.compile("Materialize selected")).click()
        dialog = page.get_by_role("dialog").filter(
            has_text=f"Launch runs to materialize {EXPORT_ASSET}"
        )
        expect(dialog).to_be_visible()
        # the organization: its drop-down, filtered, ticked
        dialog.get_by_text("Select a partition or create one").click()
        page.get_by_placeholder("Filter partitions").fill(EXPORTING)
        page.locator(f'label:has([data-tooltip="{EXPORTING}"])').click()
        page.keyboard.press("Escape")
        # the month: Latest, the newest one offered, which is the last closed month
        dialog.get_by_role("button", name="Latest", exact=True).click()
        expect(dialog.get_by_placeholder(re.compile("^ex: "))).to_have_value(month)
        expect(dialog).to_contain_text("1 partition")
        dialog.get_by_role("button", name="Launch 1 run").click()
        # the toast's View: the run's page, until the run has ended
        page.get_by_role("link", name="View", exact=True).click()
        expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]+$"))
        ended = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
        expect(ended).to_be_visible(timeout=RUN_MS)
        if ended.inner_text() == "Success":
            # its log, scrolled to its end: the month's check passed
            expect(
                page.get_by_text(
                    f"every_invoice_booked succeeded for materialization of {EXPORT_ASSET}"
                )
            ).to_be_visible()
        return ended.inner_text()


def assert_the_closed_month_exported(demo: LiveDemo) -> None:
    """A new user exports the demo's last closed month of mueller-werkzeugbau from the UI: the
    run succeeds, and the month's supplier invoices are in the files docs/demo.md names (an
    invoices CSV and a DATEV Buchungsstapel under exports/<organization>/<month>/), booked."""
    month = last_closed_month()
    waiting = month_invoices(demo, month)
    # the demo dates two of its supplier invoices in that month (the two XML ones)
    assert len(waiting) >= 2 and set(waiting.values()) == {"VALIDATED"}, waiting

    status = launch_the_export_in_the_browser(demo, month)
    assert status == "Success", f"the export run ended {status}"

    shown = latest_export_metadata(demo, month)
    folder = demo.data_dir / "exports" / EXPORTING / month
    files = {k: Path(v) for k, v in shown.items() if k.endswith("_file")}
    assert set(files) == EXPORT_FILES, shown
    for path in files.values():
        assert path.is_file() and path.parent == folder, (path, folder)
    with zipfile.ZipFile(files["datev_documents_file"]) as package:
        packed = {name.split("_", 1)[0] for name in package.namelist() if "_" in name}
    assert packed == set(waiting), (packed, waiting)  # each invoice's own document
    with files["csv_file"].open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    numbers = {row.get("invoice_number") for row in rows}
    assert numbers == set(waiting), (numbers, waiting)
    assert shown["invoices"] == len(waiting) and shown["skipped"] == 0, shown
    lines = read_extf(files["datev_file"].read_bytes())
    assert len(lines) - 2 == shown["bookings"] > 0, shown  # header, columns, bookings
    booked = month_invoices(demo, month)
    assert set(booked.values()) == {"EXPORTED"}, booked


def month_invoices(demo: LiveDemo, month: str) -> dict[str, str]:
    """The supplier invoices of the exporting organization issued in `month`: number -> status."""
    return dict(
        demo.query(
            "SELECT i.invoice_number, i.status FROM incoming_invoices i JOIN organizations o "
            "ON o.id = i.organization_id WHERE o.slug = :slug "
            "AND i.issue_date BETWEEN :start AND :end",
            slug=EXPORTING,
            start=f"{month}-01",
            end=f"{month}-31",
        )
    )


def latest_export_metadata(demo: LiveDemo, month: str) -> dict:
    """The metadata of the export asset's materialization of (organization, month), as the UI
    shows it (its GraphQL): numbers and file paths."""
    data = demo.graphql(
        f'{{ assetOrError(assetKey: {{path: ["{EXPORT_ASSET}"]}}) {{ ... on Asset {{ '
        "assetMaterializations(limit: 50) { partition metadataEntries { label "
        "... on IntMetadataEntry { intValue } ... on PathMetadataEntry { path } } } } } }"
    )
    for event in data["assetOrError"]["assetMaterializations"]:
        if set((event["partition"] or "").split("|")) == {month, EXPORTING}:
            return {
                e["label"]: e.get("intValue", e.get("path"))
                for e in event["metadataEntries"]
                if "intValue" in e or "path" in e
            }
    raise AssertionError(f"no materialization of {EXPORTING} {month}: {data}")


# 2. A paid supplier invoice in `incoming list` and `incoming show`


def bill_payments(demo: LiveDemo, slug: str) -> dict[int, tuple[str, Decimal, Decimal]]:
    """What the simulated QuickBooks holds: for each of our invoices that is a bill there, the day
    and amount of the money paid on it (BillPayments of money: the one of 0 that applies a Skonto's
    vendor credit is none) and the bill's total. A bill still open there fails."""
    sim = SimulatorControl(demo.qbo_url)
    realm = demo.realm(slug)
    bills = {}
    for bill in closed_bills(sim, realm):
        found = BILL_NOTE.match(str(bill.get("PrivateNote") or ""))
        bills[str(bill["Id"])] = (int(found.group(1)), Decimal(str(bill["TotalAmt"])))
    paid: dict[int, list] = {}
    for payment in sim.records(realm, "BillPayment"):
        if Decimal(str(payment["TotalAmt"])) == 0:
            continue
        for line in payment.get("Line") or []:
            for link in line.get("LinkedTxn") or []:
                if link.get("TxnType") == "Bill" and str(link.get("TxnId")) in bills:
                    invoice, total = bills[str(link["TxnId"])]
                    amount = Decimal(str(line["Amount"])).quantize(Decimal("0.01"))
                    paid.setdefault(invoice, []).append((payment["TxnDate"], amount, total))
    assert all(len(each) == 1 for each in paid.values()), paid  # the demo pays a bill once
    return {invoice: each[0] for invoice, each in paid.items()}


def closed_bills(sim: SimulatorControl, realm: str) -> list[dict]:
    """Our bills in the simulated QuickBooks once none is open there: paid, and the one paid with
    a Skonto closed by its vendor credit, which the bill payment pull pushes right after it wrote
    the payments (a deadline, not a measurement). Fails with what is still open."""
    deadline = time.monotonic() + CLOSE_SECONDS
    while True:
        ours = [
            bill
            for bill in sim.records(realm, "Bill")
            if BILL_NOTE.match(str(bill.get("PrivateNote") or ""))
        ]
        still_open = [b for b in ours if Decimal(str(b["Balance"])) != 0]
        if not still_open or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not still_open, f"bills still open in QuickBooks: {still_open}"
    return ours


def paid_lines(listing: str) -> dict[int, dict]:
    """`incoming list`'s text: the paid line under each document that has one."""
    found, current = {}, None
    for line in listing.splitlines():
        if row := DOCUMENT_LINE.match(line):
            current = int(row.group("id"))
        elif (paid := PAID_LINE.match(line)) and current is not None:
            found[current] = paid.groupdict()
    return found


def assert_paid_supplier_invoices_shown(demo: LiveDemo) -> None:
    """`incoming list --org acme-office-supplies` says under each supplier invoice the demo paid
    in QuickBooks "paid <day>: <amount> USD" (with the Skonto taken where one was), the day and
    the amount the simulated QuickBooks holds; `incoming show` gives the same payment."""
    in_qbo = bill_payments(demo, PAYING)
    assert len(in_qbo) == 3, in_qbo  # the demo's three US supplier invoices, each paid once
    listing = demo.command("incoming", "list", "--org", PAYING)
    shown = paid_lines(listing)
    assert set(shown) == set(in_qbo), listing
    for invoice, (day, amount, total) in in_qbo.items():
        line = shown[invoice]
        assert (line["day"], Decimal(line["amount"])) == (day, amount), (invoice, listing)
        skonto = total - amount
        if skonto:  # paid less than the bill: the supplier's Skonto, taken in its term
            assert Decimal(line["skonto"] or "0") == skonto, (invoice, listing)
        else:
            assert line["skonto"] is None, (invoice, listing)
    assert any(line["skonto"] for line in shown.values()), "no Skonto taken in the demo"
    invoice = min(in_qbo)
    day, amount, _ = in_qbo[invoice]
    document = json.loads(demo.command("incoming", "show", "--org", PAYING, "--id", str(invoice)))
    payment = document["payment"]
    assert payment["status"] == "paid", payment
    assert Decimal(payment["amount_paid"]) == amount and payment["last_paid_on"] == day, payment
    assert [(p["paid_on"], Decimal(p["amount"])) for p in payment["payments"]] == [(day, amount)]


# 3. qbo-sync against the demo, as the README says


def sync_vendors(demo: LiveDemo) -> dict:
    """The README's `qbo-sync --org acme-office-supplies --what vendors`: its counts."""
    said = json.loads(demo.command("qbo-sync", "--org", PAYING, "--what", "vendors"))
    assert said["organization"] == PAYING, said
    return said["vendors"]


def vendors_in_both(demo: LiveDemo) -> tuple[dict[str, dict], dict[str, tuple]]:
    """(the simulated QuickBooks' vendors by Id, our qbo_vendors rows by QBO id: sync token and
    e-mail)."""
    sim = SimulatorControl(demo.qbo_url)
    theirs = {str(v["Id"]): v for v in sim.records(demo.realm(PAYING), "Vendor")}
    ours = {
        qbo_id: (token, email)
        for qbo_id, token, email in demo.query(
            "SELECT v.qbo_id, v.sync_token, v.email FROM qbo_vendors v JOIN organizations o "
            "ON o.id = v.organization_id WHERE o.slug = :slug",
            slug=PAYING,
        )
    }
    return theirs, ours


def assert_qbo_sync_counts_vendors(demo: LiveDemo) -> None:
    """`qbo-sync --what vendors` reaches the running demo's QuickBooks with no variable set and
    counts vendors, each once: with the demo's three vendors it never says more than three, and
    after a person changes one vendor in QuickBooks it pulls exactly that one, which our side then
    holds as QuickBooks does."""
    counts = sync_vendors(demo)
    theirs, ours = vendors_in_both(demo)
    assert len(theirs) == 3, theirs  # the three US suppliers' vendors, made by the bill push
    assert counts["failed"] == counts["held"] == counts["pushed"] == 0, counts
    assert counts["pulled"] + counts["unchanged"] <= len(theirs), counts
    assert {k: v["SyncToken"] for k, v in theirs.items()} == {k: t for k, (t, _) in ours.items()}

    # a person changes one vendor in QuickBooks: the next sync pulls that one, and only it
    vendor = min(theirs, key=int)
    email = "remittance@changed-in-quickbooks.example"
    SimulatorControl(demo.qbo_url).edit_as_user(
        demo.realm(PAYING), "Vendor", vendor, {"PrimaryEmailAddr": {"Address": email}}
    )
    counts = sync_vendors(demo)
    assert counts["pulled"] == 1 and counts["failed"] == counts["pushed"] == 0, counts
    assert counts["pulled"] + counts["unchanged"] <= len(theirs), counts
    theirs, ours = vendors_in_both(demo)
    assert ours[vendor] == (theirs[vendor]["SyncToken"], email), (ours, theirs[vendor])
