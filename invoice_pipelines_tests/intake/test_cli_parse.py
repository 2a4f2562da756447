"""The real `invoice-pipelines parse PATH [--json]` console script, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from invoice_pipelines.intake.commands.parse_command import run_parse
from invoice_pipelines_tests.conftest import require_programs
from invoice_pipelines_tests.intake.test_samples import FX, HETZNER, ZF2, require_samples

SCRIPT = Path(sys.executable).with_name("invoice-pipelines")


def run_cli(*args: str, cwd: Path) -> tuple[int, str, str]:
    completed = subprocess.run(
        [str(SCRIPT), "parse", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )
    return completed.returncode, completed.stdout, completed.stderr


def test_valid_factur_x_pdf_as_json(tmp_path: Path) -> None:
    path = require_samples() / FX / "FX/EN16931_Einfach.pdf"
    code, out, err = run_cli(str(path), "--json", cwd=tmp_path)
    assert code == 0, err
    result = json.loads(out)  # exactly one JSON object on stdout
    assert (result["format"], result["status"], result["errors"]) == (
        "facturx-pdf",
        "VALIDATED",
        [],
    )
    invoice = result["invoice"]
    assert {
        k: invoice[k] for k in ("number", "type_code", "issue_date", "due_date", "currency")
    } == {
        "number": "471102",
        "type_code": "380",
        "issue_date": "2018-03-05",
        "due_date": None,
        "currency": "EUR",
    }
    assert (invoice["seller_name"], invoice["buyer_name"]) == ("Lieferant GmbH", "Kunden AG Mitte")
    assert [invoice[k] for k in ("net_total", "tax_total", "gross_total", "amount_due")] == [
        "473.00",
        "56.87",
        "529.87",
        "529.87",
    ]
    first = invoice["lines"][0]
    assert {k: first[k] for k in ("quantity", "unit_price", "net_amount", "vat_rate")} == {
        "quantity": "20.0000",
        "unit_price": "9.9000",
        "net_amount": "198.00",
        "vat_rate": "19.00",
    }
    assert first["description"] == "Trennblätter A4"
    assert len(invoice["lines"]) == 2


def test_failed_invoice_names_the_rules_and_exits_1(tmp_path: Path) -> None:
    path = (
        require_samples()
        / FX
        / "UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"
    )
    code, out, _ = run_cli(str(path), "--json", cwd=tmp_path)
    assert code == 1
    result = json.loads(out)
    assert result["status"] == "FAILED"
    assert {"BR-CO-10", "BR-CO-15"} <= {e["rule"] for e in result["errors"]}
    assert all(set(e) >= {"rule", "message"} for e in result["errors"])
    assert result["invoice"]["gross_total"] == "205"


def test_unparseable_embedded_xml_has_no_invoice(tmp_path: Path) -> None:
    path = (
        require_samples() / ZF2 / "fail/Mustangproject/factur-x-invalid-xml-encoding-attribute.pdf"
    )
    code, out, _ = run_cli(str(path), "--json", cwd=tmp_path)
    result = json.loads(out)
    assert (code, result["status"], result["invoice"]) == (1, "FAILED", None)
    assert "UTF-8-W/O-BOM" in result["errors"][0]["message"]


def test_human_summary_and_usage_errors(tmp_path: Path) -> None:
    path = require_samples() / FX / "CII/EN16931_Rabatte.cii.xml"
    code, out, _ = run_cli(str(path), cwd=tmp_path)
    assert code == 0
    # a short report: the verdict, what was read, the figures, then what is wrong
    assert out.splitlines()[:11] == [
        "EN16931_Rabatte.cii.xml: VALIDATED",
        "  read as   CII XML (UN/CEFACT, e.g. XRechnung)",
        "  class     valid e-invoice",
        "  invoice   471102, commercial invoice 380, issued 2018-06-05",
        "  seller    Lieferant GmbH",
        "  buyer     Kunden AG Mitte",
        "  amounts   net 193.77 + VAT 21.30 = gross 215.07 EUR",
        "  due       165.07 EUR, no due date stated",
        "  lines     4",
        "  errors    none",
        "  warnings  1",
    ]
    assert out.splitlines()[11].startswith("    PEPPOL-EN16931-R008 (facturx) Document MUST")
    code, out, err = run_cli(str(tmp_path / "missing.pdf"), "--json", cwd=tmp_path)
    assert (code, out) == (2, "")
    assert "no such file" in err


def test_scanned_image_goes_through_ocr(tmp_path: Path) -> None:
    require_programs("tesseract", "pdftoppm")
    pdf = require_samples() / HETZNER
    subprocess.run(
        ["pdftoppm", "-r", "200", "-gray", "-png", "-singlefile", str(pdf), str(tmp_path / "scan")],
        check=True,
        timeout=60,
    )
    code, out, err = run_cli(str(tmp_path / "scan.png"), "--json", cwd=tmp_path)
    result = json.loads(out)
    assert (code, result["format"], result["status"]) == (0, "image", "VALIDATED"), err
    invoice = result["invoice"]
    assert (invoice["number"], invoice["issue_date"], invoice["gross_total"]) == (
        "R0005532486",
        "2016-01-19",
        "104.00",
    )
    assert invoice["origin"] == "ocr"


def test_missing_ocr_engine_gives_a_clear_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def unavailable() -> None:
        raise RuntimeError("tesseract is not installed")

    image = tmp_path / "scan.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert run_parse(str(image), as_json=True, ocr_reader=unavailable) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "FAILED"
    assert "OCR is not available" in result["errors"][0]["message"]
    assert "tesseract is not installed" in result["errors"][0]["message"]


def test_human_report_of_a_failed_invoice_lists_each_error_once_with_its_rule(
    tmp_path: Path,
) -> None:
    path = (
        require_samples()
        / FX
        / "UBL/not_validating_full_invoice_based_onTest_EeISI_300_CENfullmodel.ubl.xml"
    )
    code, out, _ = run_cli(str(path), cwd=tmp_path)
    lines = out.splitlines()
    assert code == 1
    assert lines[0] == f"{path.name}: FAILED"
    # CEN's and our BR-CO-10 and BR-CO-15; it names Peppol BIS in BT-24, so OpenPEPPOL's five
    # findings too, said as theirs (they do not decide its class)
    assert "  errors    9" in lines
    errors = lines[lines.index("  errors    9") + 1 : lines.index("  errors    9") + 10]
    assert {line.split()[0] for line in errors} == {
        "BR-CO-10",
        "BR-CO-15",
        "PEPPOL-EN16931-R002",
        "PEPPOL-EN16931-R120",
        "PEPPOL-EN16931-CL008",
        "PEPPOL-EN16931-P0105",
    }
    assert {line.split()[1] for line in errors if "PEPPOL" in line} == {"(peppol)"}
    assert "  class     e-invoice with business-rule errors (BR-CO-10, BR-CO-15)" in lines
    assert not any("[BR-CO-" in line for line in errors)  # the rule id is said once


def test_human_report_says_what_a_text_pdf_does_not_state(tmp_path: Path) -> None:
    """What a PDF's text layer does not state (no amount due) is said in words, never `None`;
    the buyer is the address block under Hetzner's sender line."""
    code, out, _ = run_cli(str(require_samples() / HETZNER), cwd=tmp_path)
    assert code == 0
    assert "None" not in out, out
    assert "  read as   PDF text layer (no structured invoice data)" in out
    assert "  buyer     Usegroup Inh. Jochen Stärk" in out
    # nothing paid before is printed, so the whole total is due
    assert "  due       104.00 EUR, by 2016-01-22" in out
    # its 8 lines (MANIFEST.md) are read from the text layer since e209b1c
    assert "  lines     8" in out
