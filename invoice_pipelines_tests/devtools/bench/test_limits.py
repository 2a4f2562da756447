"""Every `invoice-pipelines bench` scenario names its headline figure and measures the floor of its
own work in the same run, on the same database: `per_s`, `limit_per_s`, `fraction_of_limit`
(= per_s / limit_per_s as printed) and `limit_method`. No timing is asserted: the figures are
whatever this machine gives; the tests check that they are there, consistent and measured where
the run was."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from invoice_pipelines.cli import main
from invoice_pipelines.db.engine import make_engine
from invoice_pipelines.db.tables import organizations
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines_devtools.bench.limit import SHARED_BENCH, libpq, limit_fields, significant
from invoice_pipelines_tests.conftest import require_programs, samples_dir

LIMIT_KEYS = ("headline", "per_s", "limit_per_s", "fraction_of_limit", "limit_method")


def bench(capsys, *argv: str) -> dict:
    assert main(["bench", *argv]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def assert_limit(result: dict, *, database: str | None = None) -> None:
    """The keys are there, the headline is the figure it names, the fraction is per_s over the
    limit, and (given `database`) both were measured on that database."""
    assert all(key in result for key in LIMIT_KEYS), sorted(result)
    assert result["per_s"] == result[result["headline"]]
    assert result["per_s"] > 0 and result["limit_per_s"] > 0, result["limit_method"]
    assert result["fraction_of_limit"] == round(result["per_s"] / result["limit_per_s"], 3)
    assert len(result["limit_method"]) > 40
    if database is not None:
        assert result["database_name"] == result["limit_database"] == database


@pytest.fixture
def scratch_pg(pg_scratch_factory, monkeypatch) -> str:
    """A PostgreSQL database of the test's own, named by INVOICE_PIPELINES_DB_URL (benches look
    at every organization in it); returns its name."""
    url = pg_scratch_factory()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", url)
    return make_url(url).database


@pytest.fixture
def scratch_sqlite(tmp_path, monkeypatch) -> str:
    path = tmp_path / "bench.sqlite3"
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", f"sqlite:///{path}")
    return str(path)


# --- the helpers ----------------------------------------------------------------------------


def test_limit_fields_name_the_headline_and_divide_the_printed_figures():
    result = limit_fields({"orders_per_s": 8604.1}, "orders_per_s", 12431.77, "one sentence")
    assert result["per_s"] == 8604.1 and result["limit_per_s"] == 12431.8
    assert result["fraction_of_limit"] == round(8604.1 / 12431.8, 3) == 0.692
    small = limit_fields({"pages_per_s": 0.945}, "pages_per_s", 1 / 3, "x")
    assert small["limit_per_s"] == 0.3333 and small["fraction_of_limit"] == 2.835
    missing = limit_fields({"orders_per_s": 10.0}, "orders_per_s", None, "not measured: why")
    assert missing["limit_per_s"] is None and missing["fraction_of_limit"] is None
    assert significant(123.456) == 123.5 and significant(0.012345) == 0.01235


def test_psql_gets_the_url_without_driver_and_the_password_in_its_environment():
    target, env = libpq("postgresql+psycopg2://bench:s3cret@db.example:5433/app?sslmode=require")
    assert target == "postgresql://bench@db.example:5433/app?sslmode=require"
    assert env["PGPASSWORD"] == "s3cret"


# --- each scenario ----------------------------------------------------------------------------


def test_batch_invoicing_runs_the_set_based_limit_on_its_own_database(scratch_pg, capsys):
    require_programs("psql")
    if not (SHARED_BENCH / "setbased_limit.sql").is_file():
        pytest.skip(f"{SHARED_BENCH / 'setbased_limit.sql'} is not there")
    result = bench(capsys, "batch-invoicing", "--orders", "300")
    assert result["headline"] == "orders_per_s"
    assert_limit(result, database=scratch_pg)
    assert "psql -v n=300" in result["limit_method"]
    # the limit is the median of its three runs, each of them reported, the first before the job
    runs = result["limit_runs_per_s"]
    assert len(runs) == 3 and result["limit_per_s"] == sorted(runs)[1]
    assert result["limit_runs_before_job"] == 1 and "right before the job" in result["limit_method"]
    # the script's scratch schema does not outlive the run
    engine = make_engine(owner=True)
    with engine.connect() as conn:
        assert (
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_namespace WHERE nspname = 'setlimit'"
            ).scalar_one()
            == 0
        )
    engine.dispose()


def test_batch_invoicing_says_so_when_the_limit_script_is_missing(scratch_pg, tmp_path, capsys):
    missing = tmp_path / "nowhere" / "setbased_limit.sql"
    result = bench(capsys, "batch-invoicing", "--orders", "50", "--limit-sql", str(missing))
    assert result["limit_per_s"] is None and result["fraction_of_limit"] is None
    assert result["limit_method"] == f"not measured: the limit script {missing} does not exist"
    assert result["per_s"] == result["orders_per_s"] > 0


def test_batch_invoicing_on_sqlite_states_that_the_limit_is_postgresql_only(scratch_sqlite, capsys):
    result = bench(capsys, "batch-invoicing", "--orders", "50")
    assert result["limit_per_s"] is None
    assert "PostgreSQL" in result["limit_method"]


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_export_copies_the_same_rows_on_the_same_database(dialect, request, tmp_path, capsys):
    database = request.getfixturevalue(
        "scratch_pg" if dialect == "postgresql" else "scratch_sqlite"
    )
    result = bench(capsys, "export", "--n", "200", "--out", str(tmp_path / "exports"))
    assert result["headline"] == "invoices_per_s" and result["invoices"] == 200
    assert_limit(result, database=database)
    assert ("COPY" in result["limit_method"]) == (dialect == "postgresql")
    # invoices, VAT rows and 600 lines: at least a line of CSV each
    assert result["limit_bytes"] > 200 * 40
    # the CPU both used, and the most that CPU allows on this machine's cores
    cpu, limit_cpu = result["cpu_seconds"], result["limit_cpu_seconds"]
    if dialect == "postgresql":
        # the export's own backends did its recording and reads: never nothing
        assert cpu["database"] > 0 and limit_cpu["database"] > 0
        assert cpu["total"] == pytest.approx(cpu["process"] + cpu["database"], abs=0.002)
    else:
        assert cpu["database"] is None and cpu["total"] == cpu["process"] > 0
    assert result["cpu_fraction_of_limit"] == round(limit_cpu["total"] / cpu["total"], 3)
    best = result["limit_seconds"] / (cpu["total"] / result["cores"])
    assert result["fraction_at_perfect_overlap"] == round(best, 3)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_overdue_limit_writes_the_same_notices_and_leaves_nothing(dialect, request, capsys):
    database = request.getfixturevalue(
        "scratch_pg" if dialect == "postgresql" else "scratch_sqlite"
    )
    result = bench(capsys, "overdue", "--invoices", "2000")
    assert_limit(result, database=database)
    assert result["limit_notices"] == result["notices_created"] == 200
    # the limit was rolled back: the run created every notice, exactly once
    assert result["notices_stored"] == 200 and result["most_notices_per_invoice"] == 1


def test_housekeeping_limit_marks_the_rows_the_run_marked(scratch_pg, capsys):
    result = bench(capsys, "housekeeping", "--orgs", "3", "--uploads", "10")
    assert_limit(result, database=scratch_pg)
    assert result["limit_rows"] == result["uploads_removed"] == 30


def test_tenants_limit_reads_the_same_database(scratch_pg, capsys):
    result = bench(capsys, "tenants", "--orgs", "20", "--busy-every", "10")
    assert_limit(result, database=scratch_pg)
    assert result["organizations_per_s"] == significant(20 / result["tick_seconds_total"])


def test_field_accuracy_text_path_against_pdftotext(capsys):
    require_programs("pdftotext")
    # the limit is the shared samples' (the generated set has a test of its own)
    samples = str(samples_dir())
    result = bench(capsys, "field-accuracy", "--no-ocr", "--samples", samples, "--generated", "0")
    assert result["scenario"] == "field-accuracy" and result["headline"] == "documents_per_s"
    assert "generated" not in result
    assert_limit(result)
    assert result["text"]["accuracy"] > 0


def test_qbo_push_uses_the_configured_database_and_says_which(scratch_pg, capsys):
    result = bench(capsys, "qbo-push", "--n", "30")
    assert result["database"] == "postgresql" and result["database_name"] == scratch_pg
    assert scratch_pg in result["db_url"] and result["invoices"] == 30
    assert result["headline"] == "invoices_per_s"
    assert result["fraction_of_limit"] == round(result["per_s"] / result["limit_per_s"], 3)
    assert result["fraction_of_limit"] == pytest.approx(result["ceiling_fraction"], abs=0.002)
    # the bench's organization (and by cascade its invoices and mappings) is gone
    engine = make_engine()
    with system_transaction(engine) as conn:
        left = conn.execute(
            select(func.count()).where(organizations.c.slug == result["organization"])
        ).scalar_one()
    engine.dispose()
    assert left == 0


def test_qbo_push_on_sqlite_reports_sqlite(scratch_sqlite, capsys):
    result = bench(capsys, "qbo-push", "--n", "30")
    assert result["database"] == "sqlite" and result["database_name"] == scratch_sqlite


@pytest.mark.slow
def test_intake_limit_parses_the_same_documents_in_warm_workers(scratch_pg, capsys):
    # four documents: two of each kind the bench generates (CII, UBL), as the limit sees them too
    result = bench(capsys, "intake", "--n", "4", "--ocr-pages", "0", "--workers", "1")
    assert_limit(result, database=scratch_pg)
    assert result["limit_validated"] == result["validated"] == 4


@pytest.mark.slow
def test_documents_limit_renders_the_same_invoices(scratch_pg, capsys):
    result = bench(capsys, "documents", "--n", "6", "--workers", "1")
    assert_limit(result, database=scratch_pg)
    assert result["limit_rendered"] == result["documents"] == 6 and result["limit_failed"] == 0
    # the CPU the workers used, per document and per page of the limit, and their quotient
    per_document = result["worker_cpu_ms_per_document"]
    per_page = result["limit_worker_cpu_ms_per_page"]
    assert per_document > 0 and per_page > 0
    assert result["cpu_fraction_of_limit"] == round(per_page / per_document, 3)


@pytest.mark.slow
def test_ocr_limit_is_tesseract_on_the_same_pages(capsys):
    require_programs("tesseract", "pdftoppm")
    samples_dir()
    result = bench(capsys, "ocr", "--pages", "1", "--dpi", "100", "--cores", "1")
    assert result["headline"] == "ocr_pages_per_s"
    assert_limit(result)
