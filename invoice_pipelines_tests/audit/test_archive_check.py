"""The scheduled `archive_unchanged` check runs what `audit-verify` runs, for every organization:
it passes an untouched archive and fails naming the changed original; it anchors each chain head
in the export store and names a seal table emptied after."""

from __future__ import annotations

from datetime import UTC, datetime

from dagster import Definitions, instance_for_test
from sqlalchemy import Engine, delete

from invoice_pipelines.audit.assets import audit_data_carrier
from invoice_pipelines.audit.checks import archive_checks_job, archive_unchanged
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.db.tables import audit_seals
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines_tests.audit.year_of_history import run_resources, seed_year
from invoice_pipelines_tests.test_sales_ledger import _queries


def _check(fresh_db, tmp_path):
    defs = Definitions(
        assets=[audit_data_carrier],
        asset_checks=[archive_unchanged],
        jobs=[archive_checks_job],
        resources=run_resources(fresh_db, tmp_path / "stores"),
    )
    with instance_for_test() as instance:
        result = defs.resolve_job_def("archive_checks_job").execute_in_process(instance=instance)
    [evaluation] = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    return evaluation


def test_the_check_passes_then_names_the_changed_original(fresh_db, tmp_path, monkeypatch):
    history = seed_year(fresh_db, tmp_path / "stores")
    # the seeded original was stored in 2025: the check reads the running and the last year
    monkeypatch.setattr("invoice_pipelines.audit.checks.datetime", _Year2026)
    evaluation = _check(fresh_db, tmp_path)
    assert evaluation.passed
    assert evaluation.metadata["files_checked"].value == 3  # original, document, letter
    assert history.org["slug"] in evaluation.metadata["chain_heads"].value

    path = tmp_path / "stores" / "uploads" / history.original["key"]
    path.write_bytes(path.read_bytes() + b" ")
    evaluation = _check(fresh_db, tmp_path)
    assert not evaluation.passed
    [problem] = evaluation.metadata["problems"].value
    assert problem.startswith(f"{history.org['slug']}: original {history.original['key']}")


def test_the_check_anchors_each_head_and_names_an_emptied_seal_table(
    fresh_db, tmp_path, monkeypatch
):
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY", "66" * 32)
    monkeypatch.setenv("INVOICE_PIPELINES_AUDIT_SEAL_KEY_ID", "check-k1")
    history = seed_year(fresh_db, tmp_path / "stores")
    monkeypatch.setattr("invoice_pipelines.audit.checks.datetime", _Year2026)
    evaluation = _check(fresh_db, tmp_path)
    head = evaluation.metadata["chain_heads"].value[history.org["slug"]]
    assert evaluation.passed and head["key_id"] == "check-k1"
    anchors = tmp_path / "stores" / "exports" / "_audit_anchors" / str(history.org["id"])
    [anchored] = [p.name for p in anchors.iterdir()]
    assert f".p{head['position']}.{head['hash']}.json" in anchored

    with fresh_db.owner_engine.begin() as conn:
        conn.execute(delete(audit_seals))
    evaluation = _check(fresh_db, tmp_path)
    assert not evaluation.passed
    assert any(
        p.startswith(f"{history.org['slug']}: audit seals emptied")
        for p in evaluation.metadata["problems"].value
    )


def _seal_reads(sent: list[str]) -> list[str]:
    return [statement for statement in sent if "FROM audit_seals" in statement]


def test_the_check_reads_each_chain_once_for_both_years(fresh_db, tmp_path, monkeypatch):
    """Two years of files, one chain: the daily check recomputes an organization's chain as often
    as one `audit-verify` does, not once per year it reads."""
    history = seed_year(fresh_db, tmp_path / "stores")
    monkeypatch.setattr("invoice_pipelines.audit.checks.datetime", _Year2026)
    assert _check(fresh_db, tmp_path).passed  # seals everything and anchors the head
    # every engine's statements (the check's resources make engines of their own)
    with _queries(Engine) as by_the_check:
        evaluation = _check(fresh_db, tmp_path)
    assert evaluation.passed and evaluation.metadata["files_checked"].value == 3
    org = find_organization(fresh_db.engine, history.org["slug"])
    with _queries(Engine) as by_one_verification:
        assert verify_archive(fresh_db.engine, history.stores, org).passed
    assert _seal_reads(by_one_verification)
    assert len(_seal_reads(by_the_check)) == len(_seal_reads(by_one_verification))


class _Year2026(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 6, 1, tzinfo=tz or UTC)
