"""Who sent an invoice (issue 54): every document the intake reads is compared with the
organization's supplier register, and what differs waits in NEEDS_REVIEW with a finding that
names the difference and what the register says; a person's confirmation teaches the register,
audited. On SQLite and PostgreSQL, through the intake run as production runs it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from invoice_pipelines.db.tables import processing_errors, supplier_changes
from invoice_pipelines.db.tenancy import find_organization, tenant_transaction
from invoice_pipelines.intake.domain.review import review_document
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    add_supplier,
    change_supplier,
    set_supplier_policy,
    supplier_history,
    supplier_rows,
)
from invoice_pipelines_tests.conftest import samples_dir
from invoice_pipelines_tests.intake.test_duplicates import EINFACH, _intake

SELLER = "Lieferant GmbH"
VAT_ID = "DE123456789"
IBAN = "DE89370400440532013000"
OTHER_IBAN = "DE02120300000000202051"
_numbers = iter(range(1, 10_000))


def _invoice(
    name: str = SELLER,
    vat_id: str = VAT_ID,
    iban: str | None = None,
    email: str | None = None,
    number: str | None = None,
) -> bytes:
    """The EN 16931 sample (a valid CII invoice) with the seller, IBAN and e-mail given."""
    text = (samples_dir() / EINFACH).read_text(encoding="utf-8")
    text = text.replace(
        "<ram:ID>471102</ram:ID>", f"<ram:ID>{number or next(_numbers)}</ram:ID>", 1
    )
    text = text.replace(f"<ram:Name>{SELLER}</ram:Name>", f"<ram:Name>{name}</ram:Name>", 1)
    text = text.replace(
        f'<ram:ID schemeID="VA">{VAT_ID}</ram:ID>', f'<ram:ID schemeID="VA">{vat_id}</ram:ID>', 1
    )
    if email:
        text = text.replace(
            "</ram:PostalTradeAddress>\n        <ram:SpecifiedTaxRegistration>",
            "</ram:PostalTradeAddress>\n        <ram:URIUniversalCommunication><ram:URIID "
            f'schemeID="EM">{email}</ram:URIID></ram:URIUniversalCommunication>\n'
            "        <ram:SpecifiedTaxRegistration>",
            1,
        )
    if iban:
        text = text.replace(
            "<ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>",
            "<ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>"
            "<ram:SpecifiedTradeSettlementPaymentMeans><ram:TypeCode>58</ram:TypeCode>"
            "<ram:PayeePartyCreditorFinancialAccount>"
            f"<ram:IBANID>{iban}</ram:IBANID></ram:PayeePartyCreditorFinancialAccount>"
            "</ram:SpecifiedTradeSettlementPaymentMeans>",
            1,
        )
    return text.encode()


def _findings(db, doc: dict) -> list[tuple[str, str]]:
    with tenant_transaction(db.engine, doc["organization_id"]) as conn:
        return [
            (r.rule_id, r.message)
            for r in conn.execute(
                select(processing_errors.c.rule_id, processing_errors.c.message).where(
                    processing_errors.c.incoming_invoice_id == doc["id"]
                )
            )
            if (r.rule_id or "").startswith("IP-SUP")
        ]


def _register(db, org, **values) -> int:
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        return add_supplier(
            conn,
            org["id"],
            changed_by=values.pop("by", "Anna Buchhaltung"),
            reason="known supplier",
            **values,
        )


def confirm(db, doc: dict, by: str = "Anna"):
    """A person confirms the document in review at the version they looked at."""
    return review_document(
        db.engine,
        find_organization(db.engine, doc["organization_id"]),
        doc["id"],
        reviewed_by=by,
        confirm=True,
        expected_version=doc["processing_version"],
    )


@pytest.fixture
def store(tmp_path):
    return LocalUploads(str(tmp_path))


def test_first_invoice_registers_the_supplier_and_the_next_is_compared(db, store):
    org = db.new_organization()
    docs = _intake(db, store, org, {"first.xml": _invoice(iban=IBAN)})
    assert docs["first.xml"]["status"] == "VALIDATED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        history = supplier_history(conn, org["id"], supplier["id"])
    assert (supplier["name"], supplier["vat_id"], supplier["origin"]) == (
        SELLER,
        VAT_ID,
        "first_invoice",
    )
    assert [a["iban"] for a in supplier["bank_accounts"]] == [IBAN]
    assert supplier["notice_email"] is None  # never learned from a document
    assert [(h["action"], h["changed_by"], h["incoming_invoice_id"]) for h in history] == [
        ("add", "policy:first_invoice", docs["first.xml"]["id"])
    ]

    docs = _intake(
        db,
        store,
        org,
        {
            "same.xml": _invoice(iban=IBAN),
            "other-name.xml": _invoice(name="Evil Paper Ltd"),
            "other-iban.xml": _invoice(iban=OTHER_IBAN),
        },
    )
    assert docs["same.xml"]["status"] == "VALIDATED"
    assert _findings(db, docs["same.xml"]) == []
    assert docs["other-name.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["other-name.xml"])
    assert rule == "IP-SUP-02"
    assert "Evil Paper Ltd" in message and SELLER in message and VAT_ID in message
    assert docs["other-iban.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["other-iban.xml"])
    assert rule == "IP-SUP-04"
    assert OTHER_IBAN in message and IBAN in message


def test_a_known_name_under_another_vat_id_waits(db, store):
    org = db.new_organization()
    _register(db, org, name=SELLER)  # no VAT id in the register
    docs = _intake(db, store, org, {"a.xml": _invoice(vat_id="DE999999999")})
    assert docs["a.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["a.xml"])
    assert rule == "IP-SUP-03"
    assert "DE999999999" in message and "no VAT id" in message
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
    assert supplier["vat_id"] is None  # the document taught it nothing
    # a person confirms: the supplier of that name, which had no VAT id, has this one now
    assert confirm(db, docs["a.xml"]).status == "VALIDATED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        history = supplier_history(conn, org["id"], supplier["id"])
    assert supplier["vat_id"] == "DE999999999"
    assert [h["action"] for h in history] == ["add", "confirmed"]
    docs = _intake(db, store, org, {"b.xml": _invoice(vat_id="DE999999999")})
    assert docs["b.xml"]["status"] == "VALIDATED"


def test_look_alike_names_and_a_name_of_two_suppliers_wait(db, store):
    org = db.new_organization()
    _register(db, org, name="Bürobedarf Schröder GmbH", vat_id="DE111111111")
    _register(db, org, name=SELLER)
    cyrillic = "Bürobedarf Schr\u04e7der GmbH"  # Cyrillic small o with diaeresis
    docs = _intake(
        db,
        store,
        org,
        {
            "lookalike.xml": _invoice(name=cyrillic, vat_id="DE111111111"),
            "lookalike-other-vat.xml": _invoice(name=cyrillic, vat_id="DE222222222"),
            "two.xml": _invoice(name=SELLER, vat_id="DE111111111"),
        },
    )
    assert [r for r, _ in _findings(db, docs["lookalike.xml"])] == ["IP-SUP-08"]
    assert [r for r, _ in _findings(db, docs["lookalike-other-vat.xml"])] == ["IP-SUP-03"]
    assert [r for r, _ in _findings(db, docs["two.xml"])] == ["IP-SUP-07"]
    assert {d["status"] for d in docs.values()} == {"NEEDS_REVIEW"}


def test_another_notice_address_waits(db, store):
    org = db.new_organization()
    _register(db, org, name=SELLER, vat_id=VAT_ID, notice_email="billing@lieferant.example")
    docs = _intake(
        db,
        store,
        org,
        {
            "same.xml": _invoice(email="Billing@Lieferant.example"),
            "other.xml": _invoice(email="payments@elsewhere.example"),
        },
    )
    assert docs["same.xml"]["status"] == "VALIDATED"
    assert docs["other.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, message),) = _findings(db, docs["other.xml"])
    assert rule == "IP-SUP-05"
    assert "payments@elsewhere.example" in message and "billing@lieferant.example" in message


@pytest.mark.parametrize("by", ["name", "vat_id", "tax_number"])
def test_the_organization_itself_as_seller_is_never_validated(db, store, by):
    # the sample states the seller's tax number 201/113/40209 (BT-32, scheme FC)
    own = {"name": {"name": SELLER}, "vat_id": {"vat_id": VAT_ID}}.get(
        by, {"tax_number": "201 113 40209"}
    )
    org = db.new_organization(**own)
    docs = _intake(db, store, org, {"self.xml": _invoice()})
    assert docs["self.xml"]["status"] == "NEEDS_REVIEW"
    ((rule, _),) = _findings(db, docs["self.xml"])
    assert rule == "IP-SUP-06"
    doc = docs["self.xml"]
    # a person's confirmation is held to the same rule
    result = confirm(db, doc, "Anna")
    assert result.status == "NEEDS_REVIEW"
    assert any("IP-SUP-06" in p for p in result.problems)


def test_review_policy_holds_a_new_supplier_and_the_confirmation_registers_it(db, store):
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        set_supplier_policy(conn, org["id"], "review", changed_by="test", reason="the test's setup")
    docs = _intake(db, store, org, {"new.xml": _invoice(iban=IBAN)})
    doc = docs["new.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    assert [r for r, _ in _findings(db, doc)] == ["IP-SUP-01"]
    with tenant_transaction(db.engine, org["id"]) as conn:
        assert supplier_rows(conn, org["id"]) == []
    result = confirm(db, doc, "Anna Buchhaltung")
    assert result.status == "VALIDATED"
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        (change,) = supplier_history(conn, org["id"], supplier["id"])
    assert (supplier["origin"], supplier["vat_id"], supplier["updated_by"]) == (
        "person",
        VAT_ID,
        "Anna Buchhaltung",
    )
    assert change["changed_by"] == "Anna Buchhaltung"
    assert f"incoming invoice {doc['id']}" in change["reason"]
    # the next invoice of that supplier is known
    docs = _intake(db, store, org, {"next.xml": _invoice(iban=IBAN)})
    assert docs["next.xml"]["status"] == "VALIDATED"


def test_confirming_another_name_teaches_the_register_that_name(db, store):
    org = db.new_organization()
    supplier_id = _register(db, org, name=SELLER, vat_id=VAT_ID)
    docs = _intake(db, store, org, {"trading.xml": _invoice(name="Lieferant Handels GmbH")})
    doc = docs["trading.xml"]
    assert doc["status"] == "NEEDS_REVIEW"
    confirm(db, doc, "Anna")
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        history = supplier_history(conn, org["id"], supplier_id)
    assert supplier["other_names"] == ["Lieferant Handels GmbH"]
    assert [h["action"] for h in history] == ["add", "confirmed"]
    assert history[1]["before"]["other_names"] == []
    docs = _intake(db, store, org, {"again.xml": _invoice(name="Lieferant Handels GmbH")})
    assert docs["again.xml"]["status"] == "VALIDATED"


def test_register_changes_are_checked_and_audited(db):
    org = db.new_organization()
    supplier_id = _register(db, org, name=SELLER, vat_id=VAT_ID)
    other = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        with pytest.raises(RegisterError, match="VAT id DE123456789 belongs to supplier"):
            add_supplier(conn, org["id"], name="Copy", vat_id="de 123.456.789", changed_by="A",
                         reason="r")  # fmt: skip
        with pytest.raises(RegisterError, match="not an IBAN"):
            change_supplier(conn, org["id"], supplier_id, Change(add_ibans=(("DE00123", None),)),
                            changed_by="A", reason="r")  # fmt: skip
        with pytest.raises(RegisterError, match="says why"):
            change_supplier(conn, org["id"], supplier_id, Change(notice_email="a@b.example"),
                            changed_by="A", reason=" ")  # fmt: skip
        after = change_supplier(
            conn,
            org["id"],
            supplier_id,
            Change(notice_email="a@b.example", add_ibans=((IBAN, "cobadeffxxx"),)),
            changed_by="A",
            reason="phoned the supplier",
            expected_version=1,
        )
        assert after["bank_accounts"] == [{"iban": IBAN, "bic": "COBADEFFXXX"}]
        with pytest.raises(RegisterError, match="changed since version 1"):
            change_supplier(conn, org["id"], supplier_id, Change(name="X"), changed_by="A",
                            reason="r", expected_version=1)  # fmt: skip
        history = supplier_history(conn, org["id"], supplier_id)
    assert [(h["action"], h["reason"]) for h in history] == [
        ("add", "known supplier"),
        ("change", "phoned the supplier"),
    ]
    # another organization sees none of it (on PostgreSQL, not even by asking for all rows)
    with tenant_transaction(db.engine, other["id"]) as conn:
        assert supplier_rows(conn, other["id"]) == []
        if db.kind == "postgresql":
            assert conn.execute(select(supplier_changes)).all() == []


def test_a_person_cannot_confirm_a_name_of_one_supplier_with_the_vat_id_of_another(db, store):
    org = db.new_organization()
    _register(db, org, name="Other Supplier AG", vat_id=VAT_ID)
    _register(db, org, name=SELLER, vat_id="DE111111111")
    docs = _intake(db, store, org, {"two.xml": _invoice()})
    doc = docs["two.xml"]
    result = confirm(db, doc, "Anna")
    assert result.status == "NEEDS_REVIEW"
    assert any("IP-SUP-07" in p for p in result.problems)


def test_text_pdfs_the_law_firm_is_a_new_supplier_and_the_organization_never_its_own(db, store):
    """The case found from outside: a law firm's text PDF addressed to Mueller Werkzeugbau was
    VALIDATED with the organization itself as seller. Under the review policy the firm is a new
    supplier for a person to confirm; a text PDF whose sender is the organization (its own
    outgoing invoice dropped by mistake) is held with IP-SUP-06 whatever the policy."""
    from invoice_pipelines_devtools.demo.writers.textpdf import write_text_pdf
    from invoice_pipelines_tests.intake.test_text_sender import (
        CUSTOMER,
        FIRM,
        HEADER_DE,
        _law_firm_letter,
    )

    org = db.new_organization(name=CUSTOMER, vat_id="DE811111111")
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        set_supplier_policy(conn, org["id"], "review", changed_by="test", reason="the test's setup")
    own_invoice = [
        CUSTOMER,
        "Werkzeuge und Vorrichtungen",
        "",
        f"{CUSTOMER} · Schützenstraße 14 · 42659 Solingen",
        "Stahlhandel Nord KG",
        "Hafenweg 3",
        "20457 Hamburg",
        "",
        *HEADER_DE,
        "",
        f"{CUSTOMER} · HRB 4711 Wuppertal · USt-IdNr. DE811111111",
    ]
    docs = _intake(
        db,
        store,
        org,
        {
            "kanzlei.pdf": write_text_pdf(_law_firm_letter()),
            "own.pdf": write_text_pdf(own_invoice),
        },
    )
    kanzlei, own = docs["kanzlei.pdf"], docs["own.pdf"]
    assert kanzlei["seller_name"] == FIRM
    assert kanzlei["status"] == "NEEDS_REVIEW"
    assert [(r, FIRM in m) for r, m in _findings(db, kanzlei)] == [("IP-SUP-01", True)]
    assert own["status"] == "NEEDS_REVIEW"
    assert "IP-SUP-06" in [r for r, _ in _findings(db, own)]


def test_a_confirmed_look_alike_spelling_leaves_the_real_name_known(db, store):
    org = db.new_organization()
    _register(db, org, name="Bürobedarf Schröder GmbH", vat_id="DE111111111")
    cyrillic = "Bürobedarf Schr\u04e7der GmbH"
    docs = _intake(db, store, org, {"c.xml": _invoice(name=cyrillic, vat_id="DE111111111")})
    assert [r for r, _ in _findings(db, docs["c.xml"])] == ["IP-SUP-08"]
    assert confirm(db, docs["c.xml"]).status == "VALIDATED"  # a person says: the same supplier
    docs = _intake(
        db,
        store,
        org,
        {
            "real.xml": _invoice(name="Bürobedarf Schröder GmbH", vat_id="DE111111111"),
            "again.xml": _invoice(name=cyrillic, vat_id="DE111111111"),
        },
    )
    assert docs["real.xml"]["status"] == "VALIDATED"
    assert docs["again.xml"]["status"] == "VALIDATED"


def test_the_first_accepted_document_registers_even_after_one_that_failed(db, store):
    """In one batch, the first document of a new supplier fails (a duplicate number) and the
    second is accepted: the second registers the supplier."""
    org = db.new_organization()
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        set_supplier_policy(conn, org["id"], "review", changed_by="test", reason="the test's setup")
    held = _intake(db, store, org, {"a0.xml": _invoice(number="DUP-1")})["a0.xml"]
    assert held["status"] == "NEEDS_REVIEW"  # IP-SUP-01, not registered
    with tenant_transaction(db.engine, org["id"], write=True) as conn:
        set_supplier_policy(
            conn, org["id"], "first_invoice", changed_by="test", reason="the test's setup"
        )
    docs = _intake(
        db,
        store,
        org,
        # b1 differs from a0 in bytes (an upload of the same bytes is no new document)
        {
            "b1.xml": _invoice(number="DUP-1", email="x@lieferant.example"),
            "c2.xml": _invoice(number="NEW-2"),
        },  # fmt: skip
    )
    assert docs["b1.xml"]["id"] < docs["c2.xml"]["id"]
    assert (docs["b1.xml"]["status"], docs["c2.xml"]["status"]) == ("FAILED", "VALIDATED")
    with tenant_transaction(db.engine, org["id"]) as conn:
        (supplier,) = supplier_rows(conn, org["id"])
        (change,) = supplier_history(conn, org["id"], supplier["id"])
    assert change["incoming_invoice_id"] == docs["c2.xml"]["id"]
