"""Closed months only: schedules, backfills and the command export a month once it is over; the
running month only as a provisional export, marked so in its files, its DATEV header and its
metadata, and its next export once the month is over is a new, final version."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from invoice_pipelines.cli import main
from invoice_pipelines.core.export_months import month_state
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.exports import partitions as export_months
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.exports.books import DATEV, incoming


def _months() -> tuple[str, str, str]:
    """(last month, running month, next month), UTC as the partitions count."""
    today = datetime.now(UTC).date()
    first = today.replace(day=1)
    last = (first - timedelta(days=1)).replace(day=1)
    following = (first + timedelta(days=32)).replace(day=1)
    return f"{last:%Y-%m}", f"{first:%Y-%m}", f"{following:%Y-%m}"


def test_the_partitions_end_with_the_last_complete_month_unless_provisional() -> None:
    last, running, _ = _months()
    assert export_months.month_partitions_for("closed").get_last_partition_key() == last
    assert export_months.month_partitions_for("provisional").get_last_partition_key() == running
    # the default the code location loads
    assert export_months.month_partitions.get_last_partition_key() == last


def test_where_a_month_stands() -> None:
    today = date(2026, 11, 25)
    assert [month_state(m, today) for m in ("2026-10", "2026-11", "2026-12", "2027-01")] == [
        "over",
        "running",
        "future",
        "future",
    ]


def _export(capsys, org, month: str, *extra: str) -> tuple[int, dict | str]:
    code = main(
        ["export", "--org", org["slug"], "--month", month, "--direction", "incoming", *extra]
    )
    out = capsys.readouterr().out.strip()
    try:
        return code, json.loads(out.splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        return code, out


def test_the_command_refuses_the_running_month_and_exports_it_provisionally_on_request(
    db, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(tmp_path))
    org = db.new_organization(**DATEV)
    _, running, following = _months()
    incoming(db.engine, org["id"], "P-1", day=datetime.now(UTC).date(), due=None)

    code, said = _export(capsys, org, running)
    assert code == 2
    assert said == (
        f"invoice-pipelines export: {running} is the running month; a month is exported once "
        "it is over (--provisional exports it as provisional, as "
        "INVOICE_PIPELINES_EXPORT_RUNNING_MONTH=provisional lets schedules and backfills)"
    )
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing marked EXPORTED

    code, said = _export(capsys, org, following)
    assert (code, said) == (2, f"invoice-pipelines export: the month {following} has not begun")

    code, report = _export(capsys, org, running, "--provisional")
    assert code == 0 and report["provisional"] is True and report["invoices"] == 1
    datev = Path(report["files"]["datev"])
    assert datev.name == f"EXTF_Buchungsstapel_incoming_{running}_v1_provisional.csv"
    header = datev.read_bytes().decode("cp1252").splitlines()[0]
    assert '"vorlaeufig ' in header  # the batch's Bezeichnung, as DATEV shows it
    assert all(Path(name).name.endswith("_provisional.csv") for name in report["files"].values())


def test_the_export_after_the_month_is_over_is_a_final_version(db, tmp_path) -> None:
    """The same invoices, first exported while their month ran, then once it is over: a new
    version without the provisional marks (an unchanged month otherwise writes nothing)."""
    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "F-1", day=date(2026, 10, 5))
    store = LocalFiles(str(tmp_path))
    first = run_export(
        db.engine,
        store,
        find_organization(db.engine, org["slug"]),
        "2026-10",
        "incoming",
        provisional=True,
    )
    assert (first.version, first.provisional) == (1, True)
    assert str(first.files["datev"]).endswith("_v1_provisional.csv")

    final = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-10", "incoming"
    )
    assert (final.version, final.provisional, final.unchanged) == (2, False, False)
    assert str(final.files["datev"]).endswith("_v2.csv")
    assert "vorlaeufig" not in Path(final.files["datev"]).read_bytes().decode("cp1252")
    again = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2026-10", "incoming"
    )
    assert again.unchanged and again.version == 2
