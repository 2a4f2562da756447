"""A VALIDATED supplier invoice dated outside every export month is visible, with the way out.

The export assets have month partitions from INVOICE_PIPELINES_EXPORT_START_MONTH (2020-01) to the
running month; the ZUGFeRD sample is dated 2018-03-05, so no partition of incoming_invoice_exports
can ever book it. Before, it sat VALIDATED and nothing said so.
"""

from sqlalchemy import select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.exports.books import DATEV
from invoice_pipelines_tests.intake.test_intake_jobs import (
    GOOD_CII,
    _check,
    _drop,
    _materialization,
    _run,
    _run_intake,
)


def _exportable_check(result):
    """The intake run's own evaluation of validated_invoices_exportable."""
    return _check(result, "validated_invoices_exportable")


def _status(db, org, doc_id):
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(incoming_invoices.c.status).where(incoming_invoices.c.id == doc_id)
        ).scalar_one()


def test_a_validated_invoice_before_the_first_export_month_is_named_with_the_way_out(
    fresh_db, tmp_path, monkeypatch, capsys
):
    db = fresh_db
    org = db.new_organization(**DATEV)
    store = LocalUploads(str(tmp_path / "uploads"))
    _drop(store, org, {"einfach-2018.xml": (samples_dir() / GOOD_CII).read_bytes()})
    scan = scan_uploads(db.engine, store, ScanState(), system=db.system_engine)
    [doc_id] = [i for b in scan.batches for i in b.document_ids]
    result = _run_intake(db, store, org, [doc_id])

    assert _status(db, org, doc_id) == "VALIDATED"
    # the intake run's materialization says it, with the month and the way out
    shown = _materialization(result)
    assert shown["not_exportable"] == 1
    table = shown["not_exportable_documents"]
    assert "einfach\\-2018.xml" in table or "einfach-2018.xml" in table
    assert "2018-03" in table and "INVOICE\\_PIPELINES\\_EXPORT\\_START\\_MONTH=2018-03" in table
    assert f"export --org {org['slug']} --month 2018-03 --direction incoming" in table
    # ... and so does the run's check, on the materialization it wrote
    check = _exportable_check(result)
    assert not check.passed and check.severity.value == "WARN"
    assert check.metadata["not_exportable"].value == 1
    assert check.metadata["export_months"].value.startswith("2020-01 to ")
    assert "INVOICE_PIPELINES_EXPORT_START_MONTH" in check.description

    # the way out the check names: the command line exports that month
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_EXPORT_DIR", str(tmp_path / "exports"))
    code = main(["export", "--org", org["slug"], "--month", "2018-03", "--direction", "incoming"])
    assert code == 0, capsys.readouterr()
    assert _status(db, org, doc_id) == "EXPORTED"
    # the organization's next intake run (here by hand, nothing waiting) finds it booked
    assert _exportable_check(_run("intake_job", db, store, org["slug"], {})).passed
