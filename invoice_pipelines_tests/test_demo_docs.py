"""docs/demo.md against what it describes (issue 56): the asset counts of its lineage picture are
the code location's, and its shell recipes (a large batch queued into the running demo, a call of
the simulated QuickBooks API under /v3, the Peppol step's list and send of one invoice) do what
they say when run as written (bash, from the repository, against a demo database and the QBO
simulator with the demo's companies, or the access point stand-in with the demo's SMP table)."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import batch_jobs
from invoice_pipelines.db.tenancy import find_organization, system_transaction

ROOT = Path(__file__).resolve().parents[1]
DEMO = (ROOT / "docs" / "demo.md").read_text()
WORDS = {
    "two": 2, "three": 3, "seven": 7, "fifteen": 15, "sixteen": 16, "seventeen": 17,
    "eighteen": 18, "nineteen": 19, "twenty": 20, "twenty-one": 21, "twenty-two": 22,
    "twenty-three": 23, "twenty-four": 24, "twenty-five": 25, "twenty-six": 26, "eight": 8,
    "nine": 9, "ten": 10,
    "four": 4,
}  # fmt: skip


def _section(heading: str) -> str:
    """The first bash block under a `## heading` of docs/demo.md."""
    part = DEMO[DEMO.index(f"## {heading}\n") :]
    block = part[part.index("```bash\n") + len("```bash\n") :]
    return block[: block.index("\n```")]


def _number(pattern: str) -> int:
    said = " ".join(DEMO.split())
    match = re.search(pattern, said)
    assert match, pattern
    return WORDS[match.group(1).lower()]


def test_the_lineage_counts_are_the_definitions():
    from invoice_pipelines.definitions import defs

    graph = defs.get_repository_def().asset_graph
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
    by_kind = [type(n.partitions_def).__name__ for n in nodes]
    external = [n for n in nodes if not n.is_materializable]
    assert _number(r"It has ([\w-]+) assets, in \w+ groups") == len(nodes)
    assert _number(r"assets, in ([\w-]+) groups") == len({n.group_name for n in nodes})
    assert _number(r"([\w-]+) are partitioned by organization;") == by_kind.count(
        "DynamicPartitionsDefinition"
    )
    assert _number(r"organization; ([\w-]+) of them are external") == len(external)
    assert _number(r"([\w-]+) are partitioned by organization x month") == by_kind.count(
        "MultiPartitionsDefinition"
    )
    assert "fifteen assets" not in DEMO and "all eighteen" not in DEMO


def _bash(script: str, **env: str) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_documented_batch_is_queued_as_a_pending_batch_job(tmp_path, sqlite_migrated_factory):
    from invoice_pipelines_devtools.demo.seed import seed_demo

    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    seed_demo(engine, system=engine, orders_per_org=1)
    said = _bash(_section("Queue a large batch into the running demo"), N="40",
                 INVOICE_PIPELINES_DB_URL=url)  # fmt: skip
    (job_id,) = said.split()  # the job's id, on stdout
    with system_transaction(engine) as conn:
        jobs = conn.execute(select(batch_jobs).where(batch_jobs.c.id >= int(job_id)))
        job, *follow_ups = jobs.mappings().all()
    engine.dispose()
    assert (job["status"], job["kind"]) == ("pending", "customer_lines")
    assert [f["kind"] for f in follow_ups] == ["documents"]  # --generate-pdf
    request = job["request"] if isinstance(job["request"], dict) else json.loads(job["request"])
    assert len(request["customers"]) == 40
    assert {c["lines"][0]["unit_price"] for c in request["customers"]} == {"49.00"}


def test_the_documented_v3_call_answers_with_a_token_of_its_own(tmp_path):
    from invoice_pipelines_devtools.demo.quickbooks import create_demo_companies, demo_companies
    from invoice_pipelines_devtools.qbo_simulator import QboSimulator

    companies = demo_companies(tmp_path, ["acme-office-supplies"])
    realm = companies["acme-office-supplies"]["realm_id"]
    with QboSimulator(port=0, data_dir=tmp_path / "sim") as sim:
        create_demo_companies(sim, tmp_path)
        vendor = sim.create_as_user(realm, "Vendor", {"DisplayName": "Northwind Paper Co."})
        (account,) = [a for a in sim.records(realm, "Account") if a["Name"] == "Office Expenses"]
        detail = {"AccountRef": {"value": account["Id"]}}
        line = {"Amount": "12.50", "DetailType": "AccountBasedExpenseLineDetail"}
        line["AccountBasedExpenseLineDetail"] = detail
        bill = {"VendorRef": {"value": vendor["Id"]}, "Line": [line], "DocNumber": "NW-1"}
        sim.create_as_user(realm, "Bill", bill)
        said = _bash(_section("Call the simulated QuickBooks API"), QBO=sim.base_url,
                     DATA=str(tmp_path))  # fmt: skip
        asked = sim.requests(realm)
    answer = json.loads(said)
    assert [b["DocNumber"] for b in answer["QueryResponse"]["Bill"]] == ["NW-1"], said
    assert any("query" in json.dumps(r) for r in asked), "the query reached the simulator's /v3"


def test_the_readme_names_every_port_make_run_opens():
    """Each port scripts/run-dagster.sh opens by default (the UI, the QBO simulator, the mail
    server, the SMS stand-in, the Peppol access point stand-in, the demo's IMAP mailbox and the
    SMTP server that delivers into it) is a row of the README's table, and no other."""
    script = (ROOT / "scripts" / "run-dagster.sh").read_text()
    opened = {
        re.search(r'PORT="\$\{PORT:-(\d+)\}"', script).group(1),
        re.search(r"QBO_BASE_URL:-http://127\.0\.0\.1:(\d+)\}", script).group(1),
        re.search(r"SMTP_PORT:-(\d+)\}", script).group(1),
        re.search(r"'http://127\.0\.0\.1:(\d+)'\)\.port", script).group(1),
        re.search(r"PEPPOL_AP_URL'\) or 'http://127\.0\.0\.1:(\d+)'\)\.port", script).group(1),
        re.search(r"DEMO_IMAP_PORT:-(\d+)\}", script).group(1),
        re.search(r"DEMO_MAIL_SMTP_PORT:-(\d+)\}", script).group(1),
    }
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("The ports `make run` opens") : readme.index("## Drop an invoice")]
    assert set(re.findall(r"^\| (\d+) \|", table, re.MULTILINE)) == opened
    assert "http://127.0.0.1:3000" in readme


def test_the_documented_peppol_step_sends_the_one_invoice_listed(tmp_path, sqlite_migrated_factory):
    """The Peppol section's two commands, as written, after the queued batch: `invoices list`
    names Wiener Softwarehaus' invoices, and `peppol send` of the first one listed sends that one
    over the access point stand-in (the demo's SMP table), nothing else and no e-mail; the
    listing then leaves it out of what is not sent."""
    from invoice_pipelines.billing.domain.invoicing import process_batch_job
    from invoice_pipelines.documents.domain.pipeline import generate_documents
    from invoice_pipelines.resources.files.files import LocalFiles
    from invoice_pipelines_devtools.demo.peppol import demo_network
    from invoice_pipelines_devtools.demo.seed import DEMO_PEPPOL_CUSTOMERS, seed_demo
    from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn
    from invoice_pipelines_devtools.standins.smtp import SmtpSink
    from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR

    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")
    org = "brandt-it-service"
    url = sqlite_migrated_factory(tmp_path / "demo.sqlite3")
    engine = make_engine(url)
    [job] = seed_demo(engine, system=engine)["batch_jobs"]
    assert process_batch_job(engine, job, system=engine, runner="test").status == "completed"
    documents = tmp_path / "documents"
    found = find_organization(engine, org)
    assert generate_documents(engine, LocalFiles(str(documents)), found).peppol > 1
    engine.dispose()
    listing, send = _section("Peppol").splitlines()
    with AccessPointStandIn(network=demo_network("demo-token")) as ap, SmtpSink() as sink:
        env = {
            "INVOICE_PIPELINES_DB_URL": url,
            "INVOICE_PIPELINES_STORAGE": "local",
            "INVOICE_PIPELINES_DOCUMENT_DIR": str(documents),
            "INVOICE_PIPELINES_PEPPOL_AP_URL": ap.url,
            "INVOICE_PIPELINES_PEPPOL_AP_TOKEN": "demo-token",
            "INVOICE_PIPELINES_SMTP_HOST": "127.0.0.1",
            "INVOICE_PIPELINES_SMTP_PORT": str(sink.port),
        }
        listed = _bash(listing, **env).splitlines()
        header, first, *more = listed
        assert header.split()[:4] == ["id", "number", "date", "customer"], listed
        assert all("Wiener Softwarehaus" in line for line in [first, *more]), listed
        number = first.split()[1]
        said = json.loads(_bash(send.replace("NUMBER", number), **env).splitlines()[-1])
        sent = ap.network.take_messages()
        mails = list(sink.mailbox.messages)
        after = _bash(listing, **env)
    assert (said["invoice"], said["outcome"], said["channel"]) == (number, "sent", "peppol")
    assert [m["message_id"] for m in sent] == [said["message_id"]]
    wiener = DEMO_PEPPOL_CUSTOMERS[(org, "D-304")]
    assert sent[0]["receiver"] == f"iso6523-actorid-upis::{wiener}" and mails == []
    assert number not in after and len(after.splitlines()) == len(listed) - 1
