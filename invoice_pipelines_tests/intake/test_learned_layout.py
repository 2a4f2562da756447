"""A supplier's layout learned from what a person confirmed (issue 84): the supplier's invoice
prints its number beside a label no general reader knows ("Vorgang"), so its first text PDF waits
in review; a person types the number and confirms it, and the layout (where each confirmed value
stands beside its label) is kept for that supplier of that organization, audited. The supplier's
next invoice is read with it and goes straight through when its own sums prove it, and to review
when they do not; another organization with the same supplier (name and VAT id) is never read
with it. An offboarded organization's layouts are read-only and go with its deletion. On SQLite
and PostgreSQL, through the intake run and the review as production runs them."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DBAPIError

from invoice_pipelines.cli import main
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.db.tables import audit_log, supplier_layouts
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.formats.text import TextField
from invoice_pipelines.intake.domain.formats.text.learned_layout import (
    learn_placements,
    read_placements,
)
from invoice_pipelines.intake.domain.layout_reading import LAYOUT_USED
from invoice_pipelines.intake.domain.listing import show_document
from invoice_pipelines.intake.domain.parse import parse_ocr_text, reread_with_layout
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.intake.domain.supplier_layouts import (
    current_layouts,
    layout_versions,
)
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import add_supplier
from invoice_pipelines.tenants.domain.offboarding import delete_organization, export_organization
from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf
from invoice_pipelines_tests.intake.test_duplicates import _intake

SELLER, VAT_ID, IBAN = "Lieferant GmbH", "DE123456789", "DE89370400440532013000"


def _page(number: str, gross: str = "562,87") -> list[str]:
    return [
        f"{SELLER} - Lieferantenstraße 20 - 80333 München",
        "",
        "Kunden AG Mitte",
        "Kundenstraße 15",
        "69876 Frankfurt",
        "",
        "Rechnung",
        "",
        f"Kundennummer 10023   Vorgang {number}\tRechnungsdatum: 05.03.2026",
        "",
        "Pos  Beschreibung\tMenge\tEinzelpreis\tBetrag",
        "1  Trennblätter A4\t20\t9,90 EUR\t198,00 EUR",
        "2  Joghurt Banane\t50\t5,50 EUR\t275,00 EUR",
        "",
        "\tNettobetrag\t473,00 EUR",
        "\tUmsatzsteuer 19 %\t89,87 EUR",
        f"\tGesamtbetrag\t{gross} EUR",
        "",
        f"{SELLER} · USt-IdNr. {VAT_ID} · IBAN DE89 3704 0044 0532 0130 00",
    ]


def _pdf(number: str, gross: str = "562,87") -> bytes:
    return write_text_pdf(_page(number, gross))


def _organization_with_the_supplier(db) -> tuple[dict, int]:
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        supplier = add_supplier(
            conn,
            org["id"],
            name=SELLER,
            vat_id=VAT_ID,
            ibans=[(IBAN, None)],
            changed_by="Anna",
            reason="known supplier",
        )
    return org, supplier


def _confirm_with_number(db, org: dict, doc: dict, number: str):
    return review_document(
        db.engine,
        find_organization(db.engine, org["slug"]),
        doc["id"],
        reviewed_by="Anna",
        corrections={"number": number},
        confirm=True,
        expected_version=doc["processing_version"],
    )


@pytest.fixture
def store(tmp_path):
    return LocalUploads(str(tmp_path / "uploads"))


def _learned(db, store) -> tuple[dict, int, dict]:
    """Organization A's supplier, its first invoice in review (no number read), confirmed with
    the number the person typed: the layout learned from it."""
    org, supplier = _organization_with_the_supplier(db)
    first = _intake(db, store, org, {"first.pdf": _pdf("471102")})["first.pdf"]
    assert first["status"] == "NEEDS_REVIEW"
    assert first["invoice_number"] is None
    assert "IP-REV-01" in first["rules"]
    result = _confirm_with_number(db, org, first, "471102")
    assert result.status == "VALIDATED", result.problems
    return org, supplier, first


def test_a_confirmed_layout_reads_the_next_invoice_and_the_proofs_still_decide(db, store):
    org, supplier, first = _learned(db, store)
    with tenant_transaction(db.engine, org["id"]) as conn:
        (version,) = layout_versions(conn, org["id"], supplier)
        audited = conn.execute(
            select(audit_log.c.created_by, audit_log.c.entity_id, audit_log.c.details).where(
                audit_log.c.organization_id == org["id"],
                audit_log.c.action == "supplier.layout_learned",
            )
        ).one()
    placements = {p.field: p for p in version.placements}
    assert (placements["number"].label, placements["number"].direction) == ("Vorgang", "right")
    assert placements["gross_total"].label == "Gesamtbetrag"
    assert placements["tax_total"].label == "Umsatzsteuer"  # the rate's digits left out
    assert (version.version, version.confirmed_by, version.incoming_invoice_id) == (
        1,
        "Anna",
        first["id"],
    )
    assert (audited.created_by, audited.entity_id) == ("Anna", str(supplier))
    assert audited.details["fields"]["number"]["label"] == "Vorgang"

    docs = _intake(
        db, store, org, {"next.pdf": _pdf("471177"), "wrong-sum.pdf": _pdf("471178", "526,87")}
    )
    following, wrong = docs["next.pdf"], docs["wrong-sum.pdf"]
    assert following["status"] == "VALIDATED", following["rules"]
    assert following["invoice_number"] == "471177"
    assert following["gross_total"] == D("562.87")
    assert following["raw_json"]["learned_layout"]["version"] == 1
    assert "number" in following["raw_json"]["learned_layout"]["fields"]
    assert "IP-LAYOUT-01" in following["rules"]
    shown = show_document(db.engine, find_organization(db.engine, org["slug"]), following["id"])
    assert shown["learned_layout"]["supplier_id"] == supplier
    (note,) = [f for f in shown["findings"] if f["rule"] == "IP-LAYOUT-01"]
    assert "number" in note["message"] and "Anna" in note["message"]
    # read by the layout too, but 473.00 + 89.87 is not 526.87: a person looks at it
    assert wrong["invoice_number"] == "471178"
    assert wrong["status"] == "NEEDS_REVIEW"
    assert "IP-REV-14" in wrong["rules"]

    # reading with it writes no version: only a person's confirmation does
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert len(layout_versions(conn, org["id"], supplier)) == 1


def test_another_organization_with_the_same_supplier_is_not_read_with_it(db, store):
    org_a, supplier_a, _ = _learned(db, store)
    org_b, supplier_b = _organization_with_the_supplier(db)
    doc = _intake(db, store, org_b, {"same.pdf": _pdf("471177")})["same.pdf"]
    assert doc["status"] == "NEEDS_REVIEW"
    assert doc["invoice_number"] is None
    assert "learned_layout" not in doc["raw_json"]
    with tenant_transaction(db.engine, org_b["id"]) as conn:
        # B sees no layout, not even asking for A's supplier by its id
        assert current_layouts(conn, org_b["id"], [supplier_a, supplier_b]) == {}
        if db.kind == "postgresql":
            # nor any row of A's, whatever the query forgets to ask (row-level security)
            everything = select(func.count()).select_from(supplier_layouts)
            assert conn.execute(everything).scalar_one() == 0
    with tenant_transaction(db.engine, org_a["id"]) as conn:
        assert set(current_layouts(conn, org_a["id"], [supplier_a, supplier_b])) == {supplier_a}


def test_the_command_shows_the_layout_and_forgetting_it_is_a_version_without_fields(
    db, store, monkeypatch, capsys
):
    org, supplier, first = _learned(db, store)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    layout = ["suppliers", "layout", "--org", org["slug"], "--id", str(supplier)]
    assert main(layout) == 0
    shown = json.loads(capsys.readouterr().out)
    (version,) = shown["versions"]
    assert (version["confirmed_by"], version["incoming_invoice_id"]) == ("Anna", first["id"])
    assert version["fields"]["number"]["label"] == "Vorgang"

    assert main([*layout, "--forget"]) == 2
    assert "--by NAME --reason TEXT" in capsys.readouterr().err
    assert main([*layout, "--forget", "--by", "Anna", "--reason", "new letterhead"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["fields"] == "forgotten") for v in shown["versions"]] == [
        (1, False),
        (2, True),
    ]
    assert main([*layout, "--forget", "--by", "Anna", "--reason", "again"]) == 2
    assert "has no layout to forget" in capsys.readouterr().err
    with tenant_transaction(db.engine, org["id"]) as conn:
        forgotten = conn.execute(
            select(audit_log.c.created_by, audit_log.c.details).where(
                audit_log.c.organization_id == org["id"],
                audit_log.c.action == "supplier.layout_forgotten",
            )
        ).one()
    assert forgotten.created_by == "Anna" and forgotten.details["reason"] == "new letterhead"
    # read as any other page again
    doc = _intake(db, store, org, {"after.pdf": _pdf("471190")})["after.pdf"]
    assert doc["status"] == "NEEDS_REVIEW"
    assert doc["invoice_number"] is None


def test_an_offboarded_organizations_layouts_are_read_only_and_deleted_with_it(
    db, store, tmp_path, monkeypatch, capsys
):
    org, supplier, first = _learned(db, store)
    export_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        tmp_path / "handover",
        system=db.system_engine,
        by="anna",
    )
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    forget = ["suppliers", "layout", "--org", org["slug"], "--id", str(supplier), "--forget"]
    assert main([*forget, "--by", "Anna", "--reason", "gone"]) == 2
    assert "is offboarded" in capsys.readouterr().err
    with pytest.raises(DBAPIError, match="is offboarded"):
        with tenant_transaction(db.engine, org["id"], write=True) as conn:
            conn.execute(
                insert(supplier_layouts).values(
                    organization_id=org["id"],
                    supplier_id=supplier,
                    version=9,
                    field="number",
                    label="Beleg",
                    direction="right",
                    confirmed_by="mallory",
                    incoming_invoice_id=first["id"],
                )
            )
    deleted = delete_organization(
        db.engine,
        find_organization(db.engine, org["slug"]),
        system=db.system_engine,
        by="anna",
        today=date(2040, 1, 1),
    )
    assert deleted.rows["supplier_layouts"] >= 7


def test_only_a_placement_that_reads_the_confirmed_value_back_is_learned() -> None:
    """Pure: a value that is not on the page, or a label standing twice with two values in the
    part of the page where it was learned, teaches and reads nothing."""
    text = "\n".join(_page("471102")).replace("\t", "     ")
    learned = learn_placements(text, {"number": "471102", "due_date": date(2026, 4, 4)})
    assert set(learned) == {"number"}
    twice = text.replace("Kundennummer 10023", "Vorgang 99", 1)
    assert read_placements(twice, list(learned.values()), lambda *a: a) == {}


def test_a_scans_text_is_read_with_the_layout_and_judged_by_its_proofs_alike() -> None:
    """Pure: the OCR path's reading again (parse.reread_with_layout) with the layout first; the
    scan's confidence still scales what the general reader found, the proofs still decide."""
    text = "\n".join(_page("471102")).replace("\t", "     ")
    placements = list(learn_placements(text, {"number": "471102"}).values())
    for gross, status in (("562,87", "VALIDATED"), ("526,87", "NEEDS_REVIEW")):
        page = "\n".join(_page("471177", gross)).replace("\t", "     ")
        scan = parse_ocr_text(page, source_format="image", confidence=96, today=date(2026, 3, 10))
        assert scan.invoice.number is None
        learned = read_placements(scan.raw["text"], placements, TextField)
        note = Finding(LAYOUT_USED, "number read by the layout", "warning", "extract")
        again = reread_with_layout(scan, learned, note)
        assert (again.invoice.number, again.status) == ("471177", status)
        assert again.raw["extraction"] == "ocr" and again.raw["ocr_confidence"] == 96
