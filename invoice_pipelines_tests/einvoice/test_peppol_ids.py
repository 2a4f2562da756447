"""Peppol participant ids: our parser accepts exactly what OpenPEPPOL's rules accept in a
document. Each id is put into an official example as the seller's electronic address and run
through the compiled rules (../shared/reference/peppol, 3.0.19): the PEPPOL-COMMON rule of its
scheme fails the document exactly when our parser refuses the id, and warns exactly when our
parser accepts it with a warning."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from invoice_pipelines.einvoice.peppol_ids import (
    EAS_CODES,
    ParticipantId,
    ParticipantIdError,
    parse_participant,
    participant_or_none,
)
from invoice_pipelines.einvoice.schematron import check_peppol
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR

UBL_RULES = PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl"
CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
CAC = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
# the rule of each scheme the rules check, and whether it is fatal
SCHEME_RULES = {
    "0088": ("PEPPOL-COMMON-R040", True),
    "0192": ("PEPPOL-COMMON-R041", True),
    "0184": ("PEPPOL-COMMON-R042", True),
    "0208": ("PEPPOL-COMMON-R043", True),
    "0201": ("PEPPOL-COMMON-R044", False),
    "0210": ("PEPPOL-COMMON-R045", False),
    "0211": ("PEPPOL-COMMON-R047", False),
    "0007": ("PEPPOL-COMMON-R049", True),
    "0151": ("PEPPOL-COMMON-R050", True),
}
ENDPOINT_RULES = {rule for rule, _ in SCHEME_RULES.values()} | {"PEPPOL-EN16931-CL008"}

# (scheme, value): valid and invalid ones for every scheme with a rule, and a few without
CASES = [
    ("0088", "7300010000001"),  # a GLN of the official examples
    ("0088", "4035811991021"),
    ("0088", "4035811991022"),  # check digit off by one
    ("0088", "40358119910A1"),
    ("0192", "987654325"),  # the Norwegian example's
    ("0192", "987654326"),
    ("0192", "98765432"),
    ("0192", "000000000"),
    ("0184", "12345678"),
    ("0184", "DK12345678"),
    ("0184", "1234567"),
    ("0184", "DE12345678"),
    ("0208", "0123456749"),
    ("0208", "0123456748"),
    ("0208", "BE0123456749"),
    ("0208", "0403170701"),
    ("0007", "5560360793"),
    ("0007", "5560360794"),
    ("0007", "556036079"),
    ("0151", "51824753556"),
    ("0151", "51824753557"),
    ("0201", "UFXYZ1"),
    ("0201", "UF-XYZ"),
    ("0210", "RSSMRA85T10A562S"),
    ("0210", "12345678901"),
    ("0210", "RSSMRA85"),
    ("0211", "IT12345678903"),
    ("0211", "IT12345678901"),
    ("0211", "12345678901"),  # without IT the rule checks nothing
    ("0204", "991-12345-67"),  # Leitweg-ID: no rule checks its check digits
    ("9930", "DE123456789"),
    ("0106", "12345678"),
    ("9999", "123"),  # not an EAS code
    ("EM", "rechnung@example.de"),  # e-mail: CEN's EAS list has it, Peppol's does not
]


@pytest.fixture(scope="module", autouse=True)
def _peppol_rules():
    if not UBL_RULES.is_file():
        pytest.skip(f"Peppol rules not found at {PEPPOL_RULES_DIR} (../shared beside the repo)")


def _sample_with_seller_endpoint(scheme: str, value: str) -> str:
    root = etree.parse(str(PEPPOL_SAMPLES_DIR / "base-example.xml")).getroot()
    (endpoint,) = root.xpath(
        "cac:AccountingSupplierParty/cac:Party/cbc:EndpointID", namespaces={"cac": CAC, "cbc": CBC}
    )
    endpoint.set("schemeID", scheme)
    endpoint.text = value
    return etree.tostring(root, encoding="unicode")


def _rules_say(scheme: str, value: str) -> dict[str, str]:
    """The endpoint rules the Peppol rules report on the document: rule id -> severity."""
    findings = check_peppol(_sample_with_seller_endpoint(scheme, value), "ubl")
    assert findings is not None
    return {f.rule: f.severity for f in findings if f.rule in ENDPOINT_RULES}


def _we_say(scheme: str, value: str) -> ParticipantId | ParticipantIdError:
    try:
        return parse_participant(f"{scheme}:{value}")
    except ParticipantIdError as exc:
        return exc


def _agree(scheme: str, value: str) -> None:
    rules, ours = _rules_say(scheme, value), _we_say(scheme, value)
    refused_by_rules = any(severity == "error" for severity in rules.values())
    assert isinstance(ours, ParticipantIdError) == refused_by_rules, (scheme, value, rules, ours)
    if isinstance(ours, ParticipantIdError):
        # our message names the rule that refuses it in a document
        assert any(rule.split("-")[-1] in str(ours) for rule in rules), (str(ours), rules)
    else:
        warned = {rule for rule, severity in rules.items() if severity == "warning"}
        assert bool(ours.warning) == bool(warned), (scheme, value, rules, ours)
        if warned:
            assert all(rule in ours.warning for rule in warned)


@pytest.mark.parametrize(("scheme", "value"), CASES)
def test_our_parser_refuses_exactly_what_the_peppol_rules_refuse(scheme, value):
    _agree(scheme, value)


def test_the_cases_cover_both_sides_of_every_scheme_the_rules_check():
    for scheme, (rule, fatal) in SCHEME_RULES.items():
        outcomes = {isinstance(_we_say(s, v), ParticipantIdError) for s, v in CASES if s == scheme}
        warnings = {bool(getattr(_we_say(s, v), "warning", None)) for s, v in CASES if s == scheme}
        assert (outcomes if fatal else warnings) == {True, False}, (scheme, rule)


# the schemes whose rule computes a check digit: (prefix, number of digits)
_CHECK_DIGITS = {
    "0088": ("", 13),
    "0192": ("", 9),
    "0208": ("", 10),
    "0007": ("", 10),
    "0151": ("", 11),
    "0211": ("IT", 11),
}


@settings(
    max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(scheme=st.sampled_from(sorted(_CHECK_DIGITS)), data=st.data())
def test_random_numbers_are_judged_as_the_rules_judge_them(scheme, data):
    prefix, length = _CHECK_DIGITS[scheme]
    _agree(scheme, prefix + data.draw(st.from_regex(rf"\A[0-9]{{{length}}}\Z")))


def test_our_eas_list_is_the_one_the_rules_carry():
    source = UBL_RULES.read_text(encoding="utf-8")
    (codes,) = re.findall(r'<xsl:variable name="eaid"\s+select="tokenize\(\'([^\']*)\'', source)
    assert EAS_CODES == tuple(codes.split())
    assert {"0204", "9930", "0088", "0208", "0106", "0190"} <= set(EAS_CODES)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0088:7300010000001", "0088:7300010000001"),
        ("  iso6523-actorid-upis::0088:7300010000001 ", "0088:7300010000001"),
        ("ISO6523-ACTORID-UPIS::0208:0123456749", "0208:0123456749"),
        ("0204:991-12345-67", "0204:991-12345-67"),
    ],
)
def test_a_participant_id_is_read_with_or_without_its_identifier_scheme(text, expected):
    participant = parse_participant(text)
    assert str(participant) == expected
    assert participant.with_scheme == f"iso6523-actorid-upis::{expected}"
    assert participant.warning is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "'<scheme>:<value>'"),
        ("7300010000001", "expected '<scheme>:<value>'"),
        ("0088:", "expected '<scheme>:<value>'"),
        ("88:7300010000001", "not a four-digit EAS code"),
        ("9999:123", "not on the EAS code list"),
        ("0088:730001 0000001", "may not contain blanks"),
        ("0088:7300010000002", "not a valid GLN"),
        ("0208:0123456748", "not a valid Belgian enterprise number"),
        ("0204:" + "9" * 200, "longer than 128 characters"),
    ],
)
def test_a_wrong_participant_id_is_refused_saying_why(text, says):
    with pytest.raises(ParticipantIdError, match=re.escape(says)):
        parse_participant(text)


def test_a_stored_id_reads_back_and_none_stays_none():
    assert participant_or_none(None) is None and participant_or_none("  ") is None
    assert participant_or_none("0192:987654325") == ParticipantId("0192", "987654325")
