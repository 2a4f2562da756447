"""What a received document is under German VAT law (BMF letter of 2025-10-15 on §14 UStG).

Three classes, recorded per document with the rule ids that decided them:

* `not_einvoice`: no structured invoice the law accepts. Reasons: `format_error` (the XML cannot
  be read or is not valid against its syntax's schema), `profile` (Factur-X/ZUGFeRD MINIMUM or
  BASIC-WL: they lack the invoice data an e-invoice must carry), `legacy_format` (ZUGFeRD 1.0, before
  EN 16931), `no_xml` (a PDF or a scan: its data is read from the page).
* `einvoice_with_errors`: an EN 16931 document (XRechnung, ZUGFeRD/Factur-X from 2.0.1 on, UBL) that
  breaks business rules (CEN's fatal rules, with the severities the rules' publisher applies).
* `valid_einvoice`: an EN 16931 document without such errors (warnings may remain).

A format error means the supplier has to send a proper e-invoice; a business-rule error is handled
separately. Each organization decides what a class leads to (`policy_key`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class EInvoiceClass(StrEnum):
    VALID = "valid_einvoice"
    WITH_ERRORS = "einvoice_with_errors"
    NOT_EINVOICE = "not_einvoice"


class NotEInvoiceReason(StrEnum):
    FORMAT_ERROR = "format_error"
    PROFILE = "profile"
    LEGACY_FORMAT = "legacy_format"
    NO_XML = "no_xml"


CLASS_LABELS = {
    EInvoiceClass.VALID: "valid e-invoice",
    EInvoiceClass.WITH_ERRORS: "e-invoice with business-rule errors",
    EInvoiceClass.NOT_EINVOICE: "not an e-invoice",
}
REASON_LABELS = {
    NotEInvoiceReason.FORMAT_ERROR: "format error: the XML cannot be read or breaks its schema",
    NotEInvoiceReason.PROFILE: "its profile (MINIMUM or BASIC-WL) is not an e-invoice",
    NotEInvoiceReason.LEGACY_FORMAT: "ZUGFeRD 1.0 predates EN 16931 and is not an e-invoice",
    NotEInvoiceReason.NO_XML: "no invoice XML: the data is read from the page",
}
# Every key an organization's intake policy can set, in the order the docs list them.
POLICY_KEYS = (
    EInvoiceClass.VALID.value,
    EInvoiceClass.WITH_ERRORS.value,
    *(f"{EInvoiceClass.NOT_EINVOICE.value}.{reason.value}" for reason in NotEInvoiceReason),
)


@dataclass(frozen=True)
class Verdict:
    """The class of one document, why, and which rule sources were run."""

    klass: EInvoiceClass
    reason: NotEInvoiceReason | None = None
    rules: tuple[str, ...] = ()
    # rule source ("xsd", "en16931", "facturx", "xrechnung", "peppol", "ours") -> "checked",
    # "not applicable" or "not configured: ..." (a rule source this deployment lacks)
    sources: dict[str, str] = field(default_factory=dict)
    # errors of a CIUS (KoSIT's XRechnung, OpenPEPPOL's Peppol BIS): recorded, but not binding
    # for a B2B recipient
    cius_rules: tuple[str, ...] = ()

    @property
    def policy_key(self) -> str:
        if self.reason is None:
            return self.klass.value
        return f"{self.klass.value}.{self.reason.value}"

    @property
    def label(self) -> str:
        if self.reason is None:
            return CLASS_LABELS[self.klass]
        return f"{CLASS_LABELS[self.klass]} ({REASON_LABELS[self.reason]})"

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "class": self.klass.value,
            "reason": None if self.reason is None else self.reason.value,
            "rules": list(self.rules),
            "sources": dict(self.sources),
            "cius_rules": list(self.cius_rules),
            "label": self.label,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> Verdict:
        reason = data.get("reason")
        return cls(
            EInvoiceClass(data["class"]),
            None if reason is None else NotEInvoiceReason(reason),
            tuple(data.get("rules") or ()),
            dict(data.get("sources") or {}),
            tuple(data.get("cius_rules") or ()),
        )


ACTIONS = ("accept", "review", "reject")
HYBRID_MISMATCH = "hybrid_mismatch"
# What each class leads to unless an organization says otherwise: a valid e-invoice is booked;
# business-rule and format errors go back to the supplier; MINIMUM/BASIC-WL carry too little to
# book unseen; ZUGFeRD 1.0 and PDFs/scans are still lawful "other invoices" in the transition
# period (their data is checked, a text or scan read with doubt goes to review); a page that
# shows other values than its XML is looked at.
DEFAULT_POLICY: dict[str, str] = {
    EInvoiceClass.VALID.value: "accept",
    EInvoiceClass.WITH_ERRORS.value: "reject",
    f"{EInvoiceClass.NOT_EINVOICE.value}.{NotEInvoiceReason.FORMAT_ERROR.value}": "reject",
    f"{EInvoiceClass.NOT_EINVOICE.value}.{NotEInvoiceReason.PROFILE.value}": "review",
    f"{EInvoiceClass.NOT_EINVOICE.value}.{NotEInvoiceReason.LEGACY_FORMAT.value}": "accept",
    f"{EInvoiceClass.NOT_EINVOICE.value}.{NotEInvoiceReason.NO_XML.value}": "accept",
    HYBRID_MISMATCH: "review",
}


def action_for(
    verdict: Verdict, policy: dict[str, str] | None = None, *, own_errors: bool = False
) -> str:
    """accept, review or reject for a document of this verdict under an organization's policy
    (missing keys take DEFAULT_POLICY). `own_errors`: our own rules found errors in the data read
    (a wrong total, a missing number); accepting such a document unseen would book a wrong
    invoice, so "accept" becomes "review" unless the class itself is the one with errors."""
    action = {**DEFAULT_POLICY, **(policy or {})}.get(verdict.policy_key, "review")
    if action == "accept" and own_errors and verdict.klass is not EInvoiceClass.WITH_ERRORS:
        return "review"
    return action


# the stage of a finding where a hybrid PDF's page shows other values than its XML
HYBRID_STAGE = "hybrid"


def holds(policy: dict[str, str] | None, stage: str) -> bool:
    """Whether a doubt of this stage holds a document for review under the policy: every doubt
    does, a page that differs from its XML only where `hybrid_mismatch` is "review"."""
    return (
        stage != HYBRID_STAGE or {**DEFAULT_POLICY, **(policy or {})}[HYBRID_MISMATCH] == "review"
    )


def decide(
    verdict: Verdict,
    policy: dict[str, str] | None = None,
    *,
    own_errors: bool = False,
    doubt_stages: Iterable[str] = (),
) -> str:
    """accept, review or reject for a read document: its class under the policy (`action_for`),
    then held for review by any doubt that `holds` (stages of its review findings)."""
    action = action_for(verdict, policy, own_errors=own_errors)
    if action == "reject":
        return action
    if action == "review" or any(holds(policy, stage) for stage in doubt_stages):
        return "review"
    return "accept"


POLICY_SETTING = "intake_policy"  # the key in organizations.settings


class PolicyError(ValueError):
    """An organization's intake policy names an unknown class or action."""


def checked_policy(policy: object) -> dict[str, str]:
    """An organization's intake policy (`organizations.settings["intake_policy"]`) as a complete
    mapping: its own choices over DEFAULT_POLICY. PolicyError names the first unknown key or
    action in one sentence."""
    if policy is None:
        return dict(DEFAULT_POLICY)
    if not isinstance(policy, dict):
        raise PolicyError("the intake policy must map classes to actions")
    chosen: dict[str, str] = {}
    for key, action in policy.items():
        if key not in DEFAULT_POLICY:
            raise PolicyError(
                f"the intake policy names {key!r}, which is none of {', '.join(DEFAULT_POLICY)}"
            )
        allowed = ("review", "accept") if key == HYBRID_MISMATCH else ACTIONS
        if action not in allowed:
            raise PolicyError(
                f"the intake policy's {key} is {action!r}; it must be one of {', '.join(allowed)}"
            )
        chosen[key] = action
    return {**DEFAULT_POLICY, **chosen}
