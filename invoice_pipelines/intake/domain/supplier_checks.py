"""The intake's look at who sent each document: its seller claim compared with the organization's
supplier register (core/suppliers.py), in the transaction that records the outcomes.

Every difference (a known VAT id under another name, a known name under another VAT id, a look-
alike name, a new IBAN, another notice address, the organization itself as the seller, a name and
a VAT id of two suppliers, and, where the organization's policy is `review`, a supplier the
register does not know) is a review finding of stage "supplier": it holds the document for a
person, whatever its e-invoice class would let through. Under the `first_invoice` policy a new
supplier's first accepted document registers it (audited, origin `first_invoice`); later
documents of the same batch are compared with it as registered.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.suppliers import (
    FIRST_INVOICE_BOOKS,
    REGISTERING_POLICIES,
    Claim,
    Comparison,
    RegisteredSupplier,
    compare,
    new_supplier_finding,
    unregistrable_finding,
)
from invoice_pipelines.einvoice.read import ParseOutcome
from invoice_pipelines.supplier_register import (
    RegisterError,
    learn,
    load_register,
    own_party,
    registration_problem,
    supplier_policy,
)

log = logging.getLogger(__name__)

POLICY_ACTOR = "policy:first_invoice"


@dataclass(frozen=True)
class SupplierCheck:
    claim: Claim
    comparison: Comparison
    # the first-invoice policy registers the seller when this document is accepted
    registers: bool = False
    # ... as confirmed (`first_invoice_books`), else unconfirmed until a person confirms it
    confirms: bool = False


def claim_of(invoice) -> Claim:
    return Claim(
        name=invoice.seller_name,
        vat_id=invoice.seller_vat_id,
        iban=invoice.iban,
        email=invoice.seller_email,
        tax_number=invoice.seller_tax_number,
        other_ibans=tuple(a.iban for a in invoice.payment_accounts),
    )


def check_suppliers(
    conn: Connection, organization: Organization, outcomes: dict[int, ParseOutcome]
) -> tuple[dict[int, ParseOutcome], dict[int, SupplierCheck]]:
    """Each read document's outcome with its supplier findings among its review findings, and
    what the register said of it; in document order, so that a new supplier registered by one
    document of the batch is known to the next."""
    checked = dict(outcomes)
    read = {
        doc_id: o
        for doc_id, o in outcomes.items()
        if o.invoice is not None and o.status in ("VALIDATED", "NEEDS_REVIEW")
    }
    if not read:
        return checked, {}
    register = load_register(conn, organization.id)
    own, policy = own_party(organization), supplier_policy(organization)
    first_invoice = policy in REGISTERING_POLICIES
    checks: dict[int, SupplierCheck] = {}
    for doc_id in sorted(read):
        outcome = read[doc_id]
        claim = claim_of(outcome.invoice)
        comparison = compare(register, claim, own)
        found = list(comparison.findings)
        registers = False
        refusal = registration_problem(claim) if comparison.new else None
        if refusal is not None:
            # a seller the register would refuse is never accepted unregistered (IP-SUP-10)
            found.append(unregistrable_finding(claim, refusal))
        if comparison.new and first_invoice:
            # a look-alike of a registered supplier (IP-SUP-08) waits for a person
            registers = outcome.status == "VALIDATED" and not outcome.review and not found
            if registers:
                # known to the next documents of the batch, its id negative until it is written
                register = register.adding(RegisteredSupplier.of_claim(-doc_id, claim))
        elif comparison.new:
            found.append(new_supplier_finding(claim))
        checks[doc_id] = SupplierCheck(
            claim, comparison, registers, confirms=policy == FIRST_INVOICE_BOOKS
        )
        if found:
            checked[doc_id] = dataclasses.replace(outcome, review=[*outcome.review, *found])
    return checked, checks


def register_first_invoices(
    conn: Connection,
    organization_id: int,
    checks: dict[int, SupplierCheck],
    accepted: set[int],
    batch_accepted: set[int] | None = None,
) -> list[int]:
    """Register the new suppliers of the `accepted` documents under the first-invoice policy; the
    suppliers' ids. `batch_accepted`: every document of the batch accepted so far (where the
    batch is recorded document by document), `accepted` by default. A supplier the register
    refuses (its VAT id was registered meanwhile) is logged: the document stays as decided."""
    registered = []
    every = set(batch_accepted if batch_accepted is not None else accepted)
    for doc_id in sorted(accepted):
        check = checks.get(doc_id)
        if check is None:
            continue
        provisional = check.comparison.supplier
        if provisional is not None and provisional.id < 0 and -provisional.id not in every:
            # compared with a supplier an earlier document of the batch was to register, which
            # was not accepted after all: this one is the supplier's first accepted document
            check = dataclasses.replace(
                check, comparison=Comparison(None, new=True), registers=True
            )
            every.add(-provisional.id)  # registered once, by the first of them
        if not check.registers:
            continue
        try:
            with conn.begin_nested():
                supplier_id = learn(
                    conn,
                    organization_id,
                    check.claim,
                    check.comparison,
                    changed_by=f"policy:{FIRST_INVOICE_BOOKS}" if check.confirms else POLICY_ACTOR,
                    reason=f"first accepted invoice of a new supplier (document {doc_id})"
                    + ("" if check.confirms else "; unconfirmed until a person confirms it"),
                    document_id=doc_id,
                    origin="first_invoice",
                    confirmed=check.confirms,
                )
        except RegisterError as exc:
            log.warning("document %s: its supplier is not registered: %s", doc_id, exc)
            continue
        if supplier_id is not None:
            registered.append(supplier_id)
    return registered
