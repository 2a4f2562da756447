"""A seller the register cannot hold, and one that asks to be paid to another supplier's account
(issue 83): held for a person with a finding that names why (IP-SUP-10, IP-SUP-11), never
VALIDATED unregistered; `suppliers learn-history` skips such a seller with its reason and registers
the rest; `suppliers add` refuses what it would store differently from what it shows, a look-alike
of a registered name and another supplier's IBAN. On SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import (
    RegisterError,
    add_supplier,
    set_supplier_policy,
    supplier_rows,
)
from invoice_pipelines_tests.intake.test_duplicates import _intake
from invoice_pipelines_tests.intake.test_supplier_register import (
    IBAN,
    OTHER_IBAN,
    SELLER,
    VAT_ID,
    _findings,
    _invoice,
    _register,
    confirm,
)
from invoice_pipelines_tests.intake.test_supplier_register_ui import _cli

BIDI = "Evil\u202eHbmG Papier"  # a right-to-left override: shown as "Evil Papier GmbH"-ish


def _document(db, doc: dict) -> dict:
    with tenant_transaction(db.engine, doc["organization_id"]) as conn:
        return dict(
            conn.execute(select(incoming_invoices).where(incoming_invoices.c.id == doc["id"]))
            .mappings()
            .one()
        )


@pytest.fixture
def store(tmp_path):
    return LocalUploads(str(tmp_path))


def test_a_seller_name_with_a_bidi_override_is_held_and_never_registered(db, store):
    org = db.new_organization()  # the default policy: a first invoice registers its seller
    docs = _intake(db, store, org, {"first.xml": _invoice(name=BIDI, iban=IBAN)})
    first = docs["first.xml"]
    assert first["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, first)
    assert rule == "IP-SUP-10"
    assert "U+202E" in message and "\\u202e" in message and "\u202e" not in message
    # the second invoice of the same name and VAT id, to another account, is held as well
    docs = _intake(db, store, org, {"second.xml": _invoice(name=BIDI, iban=OTHER_IBAN)})
    assert docs["second.xml"]["status"] == "NEEDS_REVIEW"
    assert [r for r, _ in _findings(db, docs["second.xml"])] == ["IP-SUP-10"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert supplier_rows(conn, org["id"]) == []
    # a person cannot confirm the name away: the seller's name is corrected, or it is rejected
    result = confirm(db, first)
    assert result.status == "NEEDS_REVIEW"
    assert any("IP-SUP-10" in p for p in result.problems)
    # corrected as the supplier writes it, it is compared again and registers what was confirmed
    doc = _document(db, first)
    result = review_document(
        db.engine,
        find_organization(db.engine, org["id"]),
        first["id"],
        reviewed_by="Anna",
        corrections={"seller_name": "Papier Evil GmbH"},
        confirm=True,
        expected_version=doc["processing_version"],
    )
    assert result.status == "VALIDATED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert [s["name"] for s in supplier_rows(conn, org["id"])] == ["Papier Evil GmbH"]


def test_a_seller_whose_vat_id_the_register_refuses_is_held_not_accepted_unregistered(db, store):
    org = db.new_organization()
    masked = "DEXXX123456"  # a masked id: never an identity for the register
    docs = _intake(db, store, org, {"masked.xml": _invoice(name="Papierwerk Nord AG",
                                                           vat_id=masked, iban=IBAN)})  # fmt: skip
    assert docs["masked.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["masked.xml"])
    assert rule == "IP-SUP-10" and "masked or partial" in message
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert supplier_rows(conn, org["id"]) == []


def test_the_real_suppliers_iban_under_a_new_name_is_held(db, store):
    org = db.new_organization()
    supplier_id = _register(db, org, name=SELLER, vat_id=VAT_ID, ibans=[(IBAN, None)])
    docs = _intake(
        db, store, org, {"new.xml": _invoice(name="Papierwerk Nord AG", vat_id="DE811569869",
                                             iban=IBAN)}
    )  # fmt: skip
    assert docs["new.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["new.xml"])
    assert rule == "IP-SUP-11"
    assert IBAN in message and f"supplier {supplier_id}" in message and SELLER in message
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert [s["id"] for s in supplier_rows(conn, org["id"])] == [supplier_id]
    # a person who knows both companies are paid to one account confirms it: registered beside
    assert confirm(db, docs["new.xml"]).status == "VALIDATED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert len(supplier_rows(conn, org["id"])) == 2


def test_learn_history_skips_a_seller_the_register_refuses_and_registers_the_rest(
    db, store, monkeypatch, capsys
):
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        set_supplier_policy(conn, org["id"], "review", changed_by="anna", reason="test")
    _intake(
        db,
        store,
        org,
        {
            "bad.xml": _invoice(name=BIDI, vat_id="DE811569869", iban=OTHER_IBAN),
            "good.xml": _invoice(iban=IBAN),
        },
    )
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        # as the intake accepted documents before the register: VALIDATED without one
        conn.execute(update(incoming_invoices).values(status="VALIDATED"))
        # a reading that kept a tab between two words: a blank, registered as one space
        conn.execute(
            update(incoming_invoices)
            .where(incoming_invoices.c.seller_name == SELLER)
            .values(seller_name=SELLER.replace(" ", "\t"))
        )
    code, out, err = _cli(
        db, monkeypatch, capsys, "learn-history", "--org", org["slug"], "--by", "Migration Team",
        "--reason", "suppliers of the books taken over",
    )  # fmt: skip
    assert code == 0, err
    learned = json.loads(out)
    assert learned["registered"] == 1
    (skipped,) = learned["skipped"]
    assert "IP-SUP-10" in skipped and "U+202E" in skipped
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert [s["name"] for s in supplier_rows(conn, org["id"])] == [SELLER]


def test_suppliers_add_refuses_a_line_break_a_look_alike_and_another_suppliers_iban(
    db, monkeypatch, capsys
):
    org = db.new_organization()
    slug = org["slug"]
    code, out, err = _cli(
        db, monkeypatch, capsys, "add", "--org", slug, "--name", "Bürobedarf  Schröder GmbH",
        "--iban", IBAN, "--by", "Anna", "--reason", "contract",
    )  # fmt: skip
    assert code == 0, err
    supplier_id = json.loads(out)["id"]
    # what the command shows is what the register holds
    assert json.loads(out)["registered"] == "Bürobedarf Schröder GmbH"
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert [s["name"] for s in supplier_rows(conn, org["id"])] == ["Bürobedarf Schröder GmbH"]

    def refused(*values: str) -> str:
        code, out, err = _cli(
            db, monkeypatch, capsys, "add", "--org", slug, *values, "--by", "Anna",
            "--reason", "r",
        )  # fmt: skip
        assert (code, out) == (2, ""), err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
        return err

    assert "U+000A" in refused("--name", "Papier\nHandel GmbH")
    err = refused("--name", "Bürobedarf Schr\u04e7der GmbH")  # a Cyrillic ӧ
    assert f"supplier {supplier_id}" in err and "--despite-lookalike" in err
    err = refused("--name", "Papierwerk Nord AG", "--iban", IBAN)
    assert f"IBAN {IBAN} belongs to supplier {supplier_id}" in err
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert len(supplier_rows(conn, org["id"])) == 1
    code, out, err = _cli(
        db, monkeypatch, capsys, "add", "--org", slug, "--name", "Papierwerk Nord AG",
        "--by", "Anna", "--reason", "contract",
    )  # fmt: skip
    assert code == 0, err
    other_id = json.loads(out)["id"]
    code, _, err = _cli(
        db, monkeypatch, capsys, "change", "--org", slug, "--id", str(other_id), "--iban", IBAN,
        "--version", "1", "--by", "Anna", "--reason", "new bank",
    )  # fmt: skip
    assert code == 2 and f"IBAN {IBAN} belongs to supplier {supplier_id}" in err
    # a person who says a look-alike is another company adds it all the same
    code, _, err = _cli(
        db, monkeypatch, capsys, "add", "--org", slug, "--name", "Bürobedarf Schroder KG",
        "--despite-lookalike", "--by", "Anna", "--reason", "another company in Köln",
    )  # fmt: skip
    assert code == 0, err


def test_the_register_refuses_control_characters_in_a_name_before_collapsing_blanks(db):
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        for name in ("A\tB", "A\u2028B", "A\u200bB"):
            with pytest.raises(RegisterError, match="invisible or control character"):
                add_supplier(conn, org["id"], name=name, changed_by="A", reason="r")
