"""An organization's intake policy applied to one outcome (intake/pipeline._decide): each action,
the doubts that hold an accepted document, the hybrid setting, outcomes without a verdict, and
the policy's checking. No database: what a document becomes, before anything is written."""

from __future__ import annotations

from dataclasses import replace

import pytest

from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.rules import Finding
from invoice_pipelines.db.incoming_status import DocumentRef
from invoice_pipelines.einvoice.classes import (
    DEFAULT_POLICY,
    POLICY_KEYS,
    EInvoiceClass,
    NotEInvoiceReason,
    PolicyError,
    Verdict,
    checked_policy,
)
from invoice_pipelines.intake.domain.parse import parse_document
from invoice_pipelines.intake.domain.pipeline import _decide
from invoice_pipelines_tests.intake.test_bad_input import own_invoice

REF = DocumentRef(1, 1, Status.UPLOADED, 1)
VALID = Verdict(EInvoiceClass.VALID)
WITH_ERRORS = Verdict(EInvoiceClass.WITH_ERRORS, rules=("BR-CO-15",))
PROFILE = Verdict(EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.PROFILE)
NO_XML = Verdict(EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.NO_XML)
DOUBT = Finding("IP-REV-03", "net + VAT is not the total", "warning", "review")
PAGE = Finding("IP-HYB-01", "the page shows invoice RE-2, the XML RE-1", "warning", "hybrid")
CEN_ERROR = Finding("BR-CO-15", "the total with VAT is not net + VAT", "error", "en16931")


@pytest.fixture(scope="module")
def read():
    outcome = parse_document(own_invoice("POL-1"), "pol.xml")
    assert outcome.invoice is not None and outcome.status == "VALIDATED"
    return outcome


def decide(outcome, policy=None):
    decision = _decide(REF, outcome, 0.1, None, checked_policy(policy))
    return decision.target[-1].value, decision


@pytest.mark.parametrize(
    ("verdict", "policy", "expected"),
    [
        (VALID, None, "VALIDATED"),
        (WITH_ERRORS, None, "FAILED"),
        (PROFILE, None, "NEEDS_REVIEW"),
        (NO_XML, None, "VALIDATED"),
        (VALID, {"valid_einvoice": "review"}, "NEEDS_REVIEW"),
        (VALID, {"valid_einvoice": "reject"}, "FAILED"),
        (WITH_ERRORS, {"einvoice_with_errors": "accept"}, "VALIDATED"),
        (WITH_ERRORS, {"einvoice_with_errors": "review"}, "NEEDS_REVIEW"),
        (PROFILE, {"not_einvoice.profile": "reject"}, "FAILED"),
        (NO_XML, {"not_einvoice.no_xml": "review"}, "NEEDS_REVIEW"),
    ],
)
def test_each_action_of_the_policy(read, verdict, policy, expected) -> None:
    errors = [CEN_ERROR] if verdict is WITH_ERRORS else []
    status, decision = decide(replace(read, verdict=verdict, errors=errors), policy)
    assert status == expected
    assert decision.fields["einvoice_class"] == verdict.klass.value
    assert decision.rejected is (expected == "FAILED")
    assert (decision.review is not None) is (expected == "NEEDS_REVIEW")
    if expected == "VALIDATED" and errors:
        # accepted with its errors: they stay on the document as findings
        assert [(f.rule_id, f.severity) for f in decision.findings] == [("BR-CO-15", "error")]


def test_a_doubt_holds_an_accepted_document_and_is_kept_as_a_warning(read) -> None:
    status, decision = decide(replace(read, verdict=NO_XML, review=[DOUBT]))
    assert status == "NEEDS_REVIEW" and decision.review == DOUBT.message
    assert [(f.stage, f.rule_id, f.severity) for f in decision.findings] == [
        ("review", "IP-REV-03", "warning")
    ]


def test_a_page_against_its_xml_follows_hybrid_mismatch(read) -> None:
    held = replace(read, verdict=VALID, review=[PAGE], status="NEEDS_REVIEW")
    assert decide(held)[0] == "NEEDS_REVIEW"
    status, decision = decide(held, {"hybrid_mismatch": "accept"})
    # booked as its XML says, the page's difference kept beside it
    assert status == "VALIDATED"
    assert [(f.stage, f.rule_id) for f in decision.findings] == [("hybrid", "IP-HYB-01")]
    # but a doubt of another kind still holds it
    assert decide(replace(held, review=[PAGE, DOUBT]), {"hybrid_mismatch": "accept"})[0] == (
        "NEEDS_REVIEW"
    )


def test_nothing_read_fails_whatever_the_policy(read) -> None:
    unreadable = replace(
        read,
        invoice=None,
        verdict=Verdict(EInvoiceClass.NOT_EINVOICE, NotEInvoiceReason.FORMAT_ERROR),
        errors=[Finding("IP-XML-01", "not well-formed", "error", "xml")],
        status="FAILED",
    )
    accepting = dict.fromkeys(POLICY_KEYS, "accept")
    assert decide(unreadable, accepting)[0] == "FAILED"
    status, decision = decide(replace(unreadable, verdict=None))
    # no verdict (our own trouble, not the supplier's file): failed, and nobody is told off
    assert status == "FAILED" and not decision.rejected


def test_an_outcome_without_a_verdict_is_still_held_by_its_doubts(read) -> None:
    assert decide(replace(read, verdict=None))[0] == "VALIDATED"
    assert decide(replace(read, verdict=None, review=[DOUBT]))[0] == "NEEDS_REVIEW"
    # the parser says NEEDS_REVIEW without a finding: never booked unseen
    assert decide(replace(read, verdict=None, status="NEEDS_REVIEW"))[0] == "NEEDS_REVIEW"
    assert decide(replace(read, verdict=NO_XML, status="NEEDS_REVIEW"))[0] == "NEEDS_REVIEW"


def test_our_own_rules_turn_accept_into_review(read) -> None:
    wrong = Finding("IP-SUM-01", "net + VAT is not the total", "error", "rules")
    assert decide(replace(read, verdict=NO_XML, errors=[wrong]))[0] == "NEEDS_REVIEW"


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"valid": "accept"}, "names 'valid', which is none of"),
        ({"valid_einvoice": "book"}, "valid_einvoice is 'book'; it must be one of"),
        ({"hybrid_mismatch": "reject"}, "hybrid_mismatch is 'reject'; it must be one of"),
        (["accept"], "must map classes to actions"),
    ],
)
def test_a_policy_naming_unknown_keys_or_actions_is_one_clear_error(policy, message) -> None:
    with pytest.raises(PolicyError, match=message):
        checked_policy(policy)
    assert checked_policy({}) == DEFAULT_POLICY
    assert set(POLICY_KEYS) | {"hybrid_mismatch"} == set(DEFAULT_POLICY)


def test_a_rejection_notice_names_the_reasons_in_plain_words_with_their_rule_ids() -> None:
    from invoice_pipelines.intake.domain.notices import MAX_REASONS, compose

    notice = compose(
        "Käufer GmbH", "RE-9", "re-9.xml", WITH_ERRORS.label, [CEN_ERROR, DOUBT], "a@b.example"
    )
    assert notice.subject == "Not accepted: invoice RE-9 to Käufer GmbH"
    assert "it is e-invoice with business-rule errors" in notice.body
    assert "- BR-CO-15: the total with VAT is not net + VAT" in notice.body
    assert "IP-REV-03" not in notice.body  # a doubt of ours is no reason to the supplier
    # no error finding: the class itself is the reason, with the rules that decided it
    notice = compose("K", None, "scan.pdf", PROFILE.label, [], None, ("BR-16", "BR-CO-10"))
    assert "the document scan.pdf" in notice.subject
    assert f"it is {PROFILE.label}; the rules that decided it:\n  - BR-16, BR-CO-10" in notice.body
    many = [Finding(f"BR-{i:02d}", f"missing {i}") for i in range(MAX_REASONS + 3)]
    notice = compose("K", "RE-1", "x.xml", WITH_ERRORS.label, many, None)
    assert notice.body.count("\n  - BR-") == MAX_REASONS and "- and 3 more" in notice.body
