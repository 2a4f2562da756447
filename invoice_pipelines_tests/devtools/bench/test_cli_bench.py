"""`invoice-pipelines bench cli`: each command a person waits for against the same-run floor (a
Python process that imports SQLAlchemy and runs one query on the same database). No timing is
asserted: the test checks that every command ran (the review round trip really confirmed and
reopened the document each round), the figures are there and consistent, and the floor ran on the
run's own database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from invoice_pipelines.cli import main
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import audit_log, incoming_invoices, organizations

COMMANDS = (
    "floor",
    "--help",
    "incoming list",
    "incoming show",
    "incoming review --confirm",
    "incoming review --reopen",
    "batch-status",
)


@pytest.fixture(params=["sqlite", "postgresql"])
def bench_db(request, tmp_path, monkeypatch) -> str:
    """A database of the test's own (the bench seeds an organization into it); its name."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_scratch_factory")()
        name = make_url(url).database
    else:
        name = str(tmp_path / "bench.sqlite3")
        url = f"sqlite:///{name}"
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", url)
    return name


def test_bench_cli_times_each_command_against_the_floor_on_the_same_database(bench_db, capsys):
    assert main(["bench", "cli", "--runs", "2"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    assert result["scenario"] == "cli" and result["runs"] == 2
    assert set(result["commands"]) == set(COMMANDS)
    for name, figures in result["commands"].items():
        assert 0 < figures["median_s"] <= figures["p95_s"], name
    floor = result["commands"]["floor"]["median_s"]
    for name, ratio in result["ratios"].items():
        assert ratio == result["commands"][name]["ratio_to_floor"]
        assert ratio == pytest.approx(result["commands"][name]["median_s"] / floor, abs=0.02)
    assert result["database_name"] == result["limit_database"] == bench_db
    assert result["per_s"] == result["slowest_read_per_s"]
    assert result["fraction_of_limit"] == round(result["per_s"] / result["limit_per_s"], 3)
    assert len(result["load_average_before"]) == 3
    budget = {name: f["within_budget"] for name, f in result["commands"].items() if name != "floor"}
    assert set(budget) == set(COMMANDS) - {"floor"}
    assert result["all_within_budget"] == all(budget.values())

    # each round confirmed the document (with the seller's name set) and reopened it
    engine = make_engine(owner=True)
    try:
        with engine.connect() as conn:
            org_id = conn.execute(
                select(organizations.c.id).where(
                    organizations.c.slug == result["organization_left"]
                )
            ).scalar_one()
            document = conn.execute(
                select(incoming_invoices).where(incoming_invoices.c.organization_id == org_id)
            ).one()
            reviews = conn.execute(
                select(audit_log.c.action, audit_log.c.details)
                .where(
                    audit_log.c.entity_type == "incoming_invoice",
                    audit_log.c.entity_id == str(document.id),
                )
                .order_by(audit_log.c.id)
            ).all()
    finally:
        engine.dispose()
    assert (document.status, document.seller_name) == ("NEEDS_REVIEW", "Bench Lieferant GmbH")
    assert [(action, details["status"]) for action, details in reviews] == 2 * [
        ("intake.review", "VALIDATED"),
        ("intake.reopen", "NEEDS_REVIEW"),
    ]
