"""`invoice-pipelines history import`: an organization's past invoices from CSV files and
e-invoices, imported as history, found again on a second import, refused row by row with the
file and line, numbered without disturbing the series, and booked by the export of their month."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select

from invoice_pipelines.billing.domain.check_queries import number_gaps, totals_problems
from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import customers, incoming_invoices, sales_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.exports.domain.pipeline import run_export
from invoice_pipelines.resources.files.files import LocalFiles
from invoice_pipelines_tests.billing.shop import make_shop
from invoice_pipelines_tests.billing.test_credit_notes import invoiced
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.exports.books import DATEV, customer

D = Decimal

SALES_CSV = """\
invoice_number,issue_date,due_date,customer_number,customer_name,currency,vat_category,vat_rate,net,tax,gross,amount_paid
2025-0101,2025-03-04,2025-03-18,K-100,Brandt IT-Service GmbH,EUR,S,19,100.00,19.00,119.00,119.00
2025-0102,2025-03-10,2025-03-24,K-200,Schulz & Partner,EUR,S,19,200.00,38.00,238.00,
2025-0102,,,,,,S,7,50.00,3.50,53.50,
2025-0103,2025-03-31,2025-04-14,K-100,Brandt IT-Service GmbH,EUR,S,19,10.00,1.90,11.90,5.00
"""

SUPPLIER_CSV = """\
supplier_name;supplier_vat_id;invoice_number;issue_date;due_date;currency;vat_category;vat_rate;net;tax;gross
Papier Meier GmbH;DE111111111;A-77;05.03.2025;19.03.2025;EUR;S;19;40,00;7,60;47,60
Papier Meier GmbH;DE111111111;A-78;12.03.2025;;EUR;S;19;20,00;3,80;23,80
Papier Meier GmbH;DE111111111;A-78;12.03.2025;;EUR;S;7;10,00;0,70;10,70
Druckerei Kunz;;77;2025-03-20;;EUR;S;19;5,00;0,95;5,95
"""


def _run(capsys, *argv: str) -> tuple[int, list[str], dict]:
    code = main(["history", "import", *argv, "--by", "anna"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, lines[:-1], json.loads(lines[-1])


def _files(tmp_path: Path, sales: str = SALES_CSV, supplier: str = SUPPLIER_CSV):
    (tmp_path / "sales.csv").write_text(sales, encoding="utf-8")
    (tmp_path / "supplier.csv").write_text(supplier, encoding="utf-8")
    return tmp_path / "sales.csv", tmp_path / "supplier.csv"


def _sales(db, org) -> list[dict]:
    s = sales_invoices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(sales_invoices).where(s.organization_id == org["id"]).order_by(s.id)
            ).mappings()
        ]


def _incoming(db, org) -> list[dict]:
    t = incoming_invoices.c
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            dict(r)
            for r in conn.execute(
                select(incoming_invoices).where(t.organization_id == org["id"]).order_by(t.id)
            ).mappings()
        ]


def _exported_numbers(result) -> set[str]:
    text = Path(result.files["csv"]).read_text(encoding="utf-8-sig")
    return {row.split(",")[1].strip('"') for row in text.splitlines()[1:] if row}


def test_csv_history_is_imported_and_its_month_exported(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(**DATEV)
    known = customer(db.engine, org["id"], "K-100", "Brandt IT-Service GmbH")
    sales, supplier = _files(tmp_path)

    code, refused, report = _run(
        capsys, "--organization", org["slug"], "--sales", str(sales), "--supplier", str(supplier)
    )

    assert (code, refused) == (0, [])
    assert report["imported"] == {"sales": 3, "supplier": 3}
    invoices = {i["invoice_number"]: i for i in _sales(db, org)}
    assert set(invoices) == {"2025-0101", "2025-0102", "2025-0103"}
    assert all(i["history"] for i in invoices.values())
    two_rates = invoices["2025-0102"]
    assert (two_rates["net_total"], two_rates["tax_total"], two_rates["gross_total"]) == (
        D("250.00"),
        D("41.50"),
        D("291.50"),
    )
    assert (invoices["2025-0101"]["status"], invoices["2025-0101"]["amount_due"]) == ("paid", 0)
    assert invoices["2025-0103"]["status"] == "partially_paid"
    assert invoices["2025-0103"]["amount_due"] == D("6.90")
    assert invoices["2025-0101"]["customer_id"] == known  # matched by its customer number
    with tenant_transaction(db.engine, org["id"]) as conn:
        mine = select(customers.c.name).where(customers.c.organization_id == org["id"])
        names = set(conn.execute(mine).scalars())
    assert "Schulz & Partner" in names  # created
    supplier_rows = _incoming(db, org)
    assert {(r["invoice_number"], r["status"], r["history"]) for r in supplier_rows} == {
        ("A-77", "VALIDATED", True),
        ("A-78", "VALIDATED", True),
        ("77", "VALIDATED", True),
    }
    assert {r["created_by"] for r in supplier_rows} == {"history import by anna"}

    store = LocalFiles(str(tmp_path / "exports"))
    booked_sales = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2025-03", "sales"
    )
    booked_incoming = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2025-03", "incoming"
    )
    assert (booked_sales.invoice_count, booked_sales.skipped) == (3, [])
    assert _exported_numbers(booked_sales) == {"2025-0101", "2025-0102", "2025-0103"}
    assert (booked_incoming.invoice_count, booked_incoming.skipped) == (3, [])
    assert _exported_numbers(booked_incoming) == {"A-77", "A-78", "77"}
    assert {r["status"] for r in _incoming(db, org)} == {"EXPORTED"}


def test_importing_the_same_files_again_creates_nothing(db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    sales, supplier = _files(tmp_path)
    argv = ("--org", org["slug"], "--sales", str(sales), "--supplier", str(supplier))
    assert _run(capsys, *argv)[0] == 0
    before = (_sales(db, org), _incoming(db, org))

    code, refused, report = _run(capsys, *argv)

    assert (code, refused) == (0, [])
    assert report["imported"] == {"sales": 0, "supplier": 0}
    assert report["already_there"] == {"sales": 3, "supplier": 3}
    assert (_sales(db, org), _incoming(db, org)) == before
    with tenant_transaction(db.engine, org["id"]) as conn:
        count = select(func.count()).where(customers.c.organization_id == org["id"])
        assert conn.execute(count).scalar() == 2


def test_a_bad_row_is_named_with_its_line_and_the_others_are_imported(
    db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization()
    bad = (
        SALES_CSV.replace("200.00,38.00,238.00", "200.00,38.10,238.10").replace(
            "2025-03-31,2025-04-14", "31/03/2025,2025-04-14"
        )
        + "2025-0104,2025-03-31,2025-04-14,K-1,A,EUR,S,19,10.00,1.90,11.90,,surplus\n"
    )
    sales, _ = _files(tmp_path, sales=bad)

    code, refused, report = _run(capsys, "--org", org["slug"], "--sales", str(sales))

    assert code == 1
    assert report["imported"]["sales"] == 1 and report["refused"] == 3
    assert any(
        line.startswith(f"refused {sales}:3: invoice 2025-0102 (lines 3, 4)")
        and "VAT 38.10 is not 19 % of 200.00 (38.00" in line
        for line in refused
    ), refused
    assert any(
        line.startswith(f"refused {sales}:5: invoice 2025-0103") and "31/03/2025" in line
        for line in refused
    ), refused
    assert f"refused {sales}:6: invoice 2025-0104: 1 field more than the header names" in refused
    assert [i["invoice_number"] for i in _sales(db, org)] == ["2025-0101"]


def test_a_new_invoice_after_the_import_continues_the_series_without_a_gap(
    db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    shop = make_shop(db)
    (first,) = invoiced(shop, [("TOOL", 1)])  # a new invoice before the history came in
    sales, _ = _files(tmp_path)
    assert _run(capsys, "--org", shop.org["slug"], "--sales", str(sales))[0] == 0

    new = [i["id"] for i in _sales(db, shop.org) if not i["history"]]
    (after,) = [i for i in invoiced(shop, [("BOOK", 2)]) if i["id"] not in new and not i["history"]]

    assert after["sequence_number"] == 5  # 1 new, 3 history, then this one
    assert after["invoice_number"].endswith("000005")
    with tenant_transaction(db.engine, shop.org_id) as conn:
        found = number_gaps(conn, shop.org_id)
        totals = totals_problems(conn, shop.org_id)
    assert (found["gaps"], found["duplicates"], found["highest"]) == ([], 0, 5)
    assert totals["wrong"] == []  # the history's lines add up to its breakdown and totals
    history = sorted(i["sequence_number"] for i in _sales(db, shop.org) if i["history"])
    assert history == [2, 3, 4]


def test_an_old_number_the_format_would_hand_out_again_is_a_warning(
    db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    org = db.new_organization(invoice_number_format="RE-{year}-{counter:06d}")
    old = SALES_CSV.replace("2025-0101,", "RE-2025-000900,").replace("2025-0103,", "RE-2025-2,")
    sales, _ = _files(tmp_path, sales=old)

    code, lines, report = _run(capsys, "--org", org["slug"], "--sales", str(sales))

    assert (code, report["imported"]["sales"], report["warnings"]) == (0, 3, 1)
    (warning,) = lines
    assert warning.startswith(f"warning {sales}:2: RE-2025-000900 is a number the format")
    assert "counter 900 (the series is at 3)" in warning  # RE-2025-2 (counter 2) was handed out


def _einvoice_folder(tmp_path: Path) -> Path:
    """A folder of links to the shared samples (read in place, never copied)."""
    samples = samples_dir()
    folder = tmp_path / "einvoices"
    folder.mkdir()
    for name in (
        "ZUGFeRD-corpus/XML-Rechnung/FX/EN16931_Einfach.pdf",  # seller Lieferant GmbH
        "xrechnung-testsuite/src/test/business-cases/standard/01.21a-INVOICE_uncefact.xml",
        "ZUGFeRD-corpus/ZUGFeRDv2/correct/Mustangproject/"
        "MustangGnuaccountingBeispielRE-20201121_508_withBOM.pdf",
        "ZUGFeRD-corpus/ZUGFeRDv2/fail/Mustangproject/factur-x-invalid-xml-encoding-attribute.pdf",
    ):
        (folder / Path(name).name).symlink_to(samples / name)
    return folder


def test_einvoices_of_the_organization_are_sales_the_others_supplier_invoices(
    db, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    # the organization is the seller of EN16931_Einfach.pdf
    org = db.new_organization(name="Lieferant GmbH", vat_id="DE123456789", **DATEV)
    folder = _einvoice_folder(tmp_path)

    code, refused, report = _run(capsys, "--org", org["slug"], "--einvoices", str(folder))

    assert code == 1
    assert report["imported"] == {"sales": 1, "supplier": 2}
    assert len(refused) == 1 and "factur-x-invalid-xml-encoding-attribute.pdf" in refused[0]
    (sale,) = _sales(db, org)
    assert (sale["invoice_number"], sale["issue_date"], sale["gross_total"]) == (
        "471102",
        date(2018, 3, 5),
        D("529.87"),
    )
    with tenant_transaction(db.engine, org["id"]) as conn:
        buyer = conn.execute(
            select(customers.c.name).where(customers.c.id == sale["customer_id"])
        ).scalar_one()
    assert buyer == "Kunden AG Mitte"
    assert {(r["invoice_number"], r["seller_name"]) for r in _incoming(db, org)} == {
        ("18383", "Mustermann GmbH"),
        ("RE-20201121/508", "Bei Spiel GmbH"),
    }
    again = _run(capsys, "--org", org["slug"], "--einvoices", str(folder))[2]
    assert again["imported"] == {"sales": 0, "supplier": 0}
    assert again["already_there"] == {"sales": 1, "supplier": 2}

    store = LocalFiles(str(tmp_path / "exports"))
    november = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2020-11", "incoming"
    )
    assert _exported_numbers(november) == {"18383", "RE-20201121/508"}
    march = run_export(
        db.engine, store, find_organization(db.engine, org["slug"]), "2018-03", "sales"
    )
    assert _exported_numbers(march) == {"471102"}


def test_the_launchpad_job_imports_and_fails_naming_the_refused_row(db, tmp_path):
    from dagster import DagsterInstance

    from invoice_pipelines.history.jobs import history_import_job
    from invoice_pipelines.resources.database.engines import Database, SystemDatabase

    org = db.new_organization()
    bad = SALES_CSV.replace("K-200,Schulz & Partner,EUR", "K-200,Schulz & Partner,EURO")
    sales, supplier = _files(tmp_path, sales=bad)
    config = {"organization": org["slug"], "sales": [str(sales)], "supplier": [str(supplier)]}

    with DagsterInstance.ephemeral() as instance:
        result = history_import_job.execute_in_process(
            run_config={"ops": {"import_history_files": {"config": config}}},
            resources={
                "database": Database(url=db.url),
                "system_database": SystemDatabase(url=db.url),
            },
            instance=instance,
            raise_on_error=False,
        )

    assert not result.success
    failure = result.failure_data_for_node("import_history_files").error
    assert f"{org['slug']}: 1 refused (the others were imported)" in failure.message
    assert f"{sales}:3: invoice 2025-0102" in str(failure)  # the refusal is listed
    assert sorted(i["invoice_number"] for i in _sales(db, org)) == ["2025-0101", "2025-0103"]
    assert len(_incoming(db, org)) == 3
