"""The comparison of a document's seller with the supplier register (core/suppliers.py), as a
function: what each claim against each register gives."""

from __future__ import annotations

from invoice_pipelines.core.suppliers import (
    Claim,
    OwnParty,
    Register,
    RegisteredSupplier,
    compare,
    name_problem,
    name_skeleton,
)

ACME = RegisteredSupplier(
    1, "ACME Papier GmbH", vat_id="DE111111111", ibans=("DE89370400440532013000",)
)
ACME_NORD = RegisteredSupplier(2, "Acme Papier GmbH", vat_id="DE222222222")
OWN = OwnParty("Mueller Werkzeugbau GmbH", "DE333333333", "201/113/40209")


def rules(register: Register, claim: Claim) -> list[str | None]:
    return [f.rule for f in compare(register, claim, OWN).findings]


def test_what_agrees_and_what_differs():
    register = Register([ACME])
    agrees = compare(register, Claim("acme papier gmbh", "DE 111 111 111"), OWN)
    assert agrees.supplier == ACME and agrees.agrees
    assert rules(register, Claim("Evil Paper Ltd", "DE111111111")) == ["IP-SUP-02"]
    # a VAT id that only ends like the registered one is another supplier's: new, not ACME
    masked = compare(register, Claim("Evil Paper Ltd", "DE000011111"), OWN)
    assert masked.supplier is None and masked.new
    assert rules(register, Claim("ACME Papier GmbH", "DE999999999")) == ["IP-SUP-03"]
    assert rules(register, Claim("ACME Papier GmbH", "DE111111111", iban="DE02120300000000202051")) == ["IP-SUP-04"]  # fmt: skip
    assert rules(register, Claim("\u0410CME Papier GmbH", "DE111111111")) == ["IP-SUP-08"]


def test_the_organization_itself_by_name_vat_id_or_tax_number():
    register = Register([ACME])
    assert rules(register, Claim("MUELLER WERKZEUGBAU GMBH")) == ["IP-SUP-06"]
    assert rules(register, Claim("Anyone", "DE333333333")) == ["IP-SUP-06"]
    assert rules(register, Claim("Anyone", tax_number="20111340209")) == ["IP-SUP-06"]


def test_a_name_of_one_supplier_and_a_vat_id_of_another_and_a_name_of_several():
    register = Register([ACME, RegisteredSupplier(3, "Other AG", vat_id="DE444444444")])
    assert rules(register, Claim("Other AG", "DE111111111")) == ["IP-SUP-07"]
    several = Register([ACME, ACME_NORD])
    assert rules(several, Claim("ACME Papier GmbH")) == ["IP-SUP-09"]
    # with a VAT id the name is no longer ambiguous
    assert compare(several, Claim("ACME Papier GmbH", "DE222222222"), OWN).supplier == ACME_NORD


def test_names_compare_by_what_a_person_sees():
    assert name_skeleton("Bürobedarf Schröder GmbH") == name_skeleton(
        "Bürobedarf Schr\u04e7der GmbH"
    )
    assert name_skeleton("ACME, Inc.") == name_skeleton("acme inc")
    assert name_skeleton("ACME GmbH") != name_skeleton("ACNE GmbH")


def test_a_name_the_register_cannot_hold_is_held_whatever_else_agrees():
    register = Register([ACME])
    for name in ("ACME\u202e Papier GmbH", "ACME\x1bPapier GmbH", "ACME Pa\u200bpier GmbH"):
        comparison = compare(register, Claim(name, "DE111111111"), OWN)
        assert comparison.supplier is None and not comparison.new
        (finding,) = comparison.findings
        assert finding.rule == "IP-SUP-10" and "U+" in finding.message
        assert repr(name) in finding.message  # the hidden character shown as its escape
    assert name_problem("Bürobedarf Schröder GmbH & Co. KG") is None
    # blanks of a document (a tab, a line break) are blanks: the register keeps the name with one
    # space there, as the readers give it
    assert compare(register, Claim("ACME\tPapier\r\nGmbH", "DE111111111"), OWN).agrees


def test_a_new_seller_paid_to_a_registered_suppliers_account_is_held():
    register = Register([ACME])
    claim = Claim("Nordpapier AG", "DE444444444", iban="DE89 3704 0044 0532 0130 00")
    comparison = compare(register, claim, OWN)
    assert comparison.new and comparison.supplier is None
    (finding,) = comparison.findings
    assert finding.rule == "IP-SUP-11"
    assert "DE89370400440532013000" in finding.message and "supplier 1" in finding.message
    # its own account: new, nothing to hold
    assert compare(register, Claim("Nordpapier AG", "DE444444444"), OWN).findings == ()
    # a registered supplier's document asking for another registered supplier's account
    nord = RegisteredSupplier(3, "Nordpapier AG", vat_id="DE444444444")
    (finding,) = compare(Register([ACME, nord]), claim, OWN).findings
    assert finding.rule == "IP-SUP-04"
    assert (
        "DE89370400440532013000 is registered for 'ACME Papier GmbH' (supplier 1" in finding.message
    )
