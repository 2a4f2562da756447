"""What an invoice read from a page (text layer or scan) proves about its own amounts.

A value read from a page is a guess until the invoice proves it. The proofs are the invoice's own
arithmetic, the sums EN 16931 requires of every invoice: the lines add up to the net (BR-CO-10),
each VAT rate's basis times its rate is its VAT and the rates' VAT add up to the VAT total
(BR-CO-14, BR-S-08), net plus VAT is the total (BR-CO-15), the total less what was paid before
(plus a rounding) is the amount due (BR-CO-16). Two readings that are wrong in a way that still
satisfies all of them at once are far less likely than a reader's confidence being wrong, so a
document whose amounts are all proven may be booked unseen; one whose proof fails is held, and
its review names the value nothing proved and the sum that failed (IP-REV-14).

A page that states the VAT but no rate with it (the breakdown not printed, or printed where it
was not read) gets the breakdown its lines give (`derived_breakdown`), only when the sums prove
it. A reader's confidence stays a second guard (intake/domain/plausibility.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from invoice_pipelines.core.invoice import Invoice, VatBreakdown
from invoice_pipelines.core.money import CENT, ZERO, percent_of, plain_string
from invoice_pipelines.core.rules import KNOWN_RATES, Finding
from invoice_pipelines.intake.domain.plausibility import adjusted_lines_total, breakdown_problems

# a rate's VAT summed from per-line rounded amounts may be off by a cent per line, and no more
# than this in all
MAX_LINE_ROUNDING = Decimal("0.05")
UNPROVEN = "IP-REV-14"
PROVEN_VALUES = {
    "net_total": "the net total",
    "tax_total": "the VAT",
    "gross_total": "the total with VAT",
    "amount_due": "the amount due",
}


@dataclass(frozen=True)
class Proof:
    """One sum the invoice must satisfy: whether it holds and, in numbers, why (not)."""

    rule: str
    holds: bool
    detail: str

    def to_json_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "holds": self.holds, "detail": self.detail}


def _money(value: Decimal | None) -> str:
    return "none" if value is None else plain_string(value)


def _stated(value: Decimal | None) -> str:
    return "(not read)" if value is None else plain_string(value)


def derived_breakdown(invoice: Invoice) -> tuple[VatBreakdown, ...]:
    """The VAT breakdown the lines give when the page states the VAT but no breakdown was read,
    and the sums prove it: every line has an amount and a rate VAT law knows, the lines add up
    to the net, and each rate's basis times its rate adds up to the stated VAT (one rate: within
    a cent per line, as lines rounded one by one make it; several rates: to the cent, or which
    rate takes the odd cent would be a guess). Otherwise no breakdown."""
    net, tax = invoice.net_total, invoice.tax_total
    lines = invoice.lines
    if invoice.vat_breakdown or net is None or tax is None or not lines:
        return ()
    if any(line.net_amount is None or line.vat_rate is None for line in lines):
        return ()
    if abs(sum((line.net_amount for line in lines), ZERO) - net) > CENT:
        return ()
    bases: dict[Decimal, Decimal] = {}
    counts: dict[Decimal, int] = {}
    for line in lines:
        rate = line.vat_rate.normalize()
        if rate not in KNOWN_RATES:
            return ()
        bases[rate] = bases.get(rate, ZERO) + line.net_amount
        counts[rate] = counts.get(rate, 0) + 1
    if len(bases) == 1:
        ((rate, basis),) = bases.items()
        slack = min(CENT * counts[rate], MAX_LINE_ROUNDING)
        if abs(percent_of(basis, rate) - tax) > slack:
            return ()
        return (VatBreakdown(category=None, rate=rate, basis=basis, amount=tax),)
    amounts = {rate: percent_of(basis, rate) for rate, basis in bases.items()}
    if sum(amounts.values(), ZERO) != tax:
        return ()
    return tuple(
        VatBreakdown(category=None, rate=rate, basis=bases[rate], amount=amounts[rate])
        for rate in sorted(bases, reverse=True)
    )


def lines_proof(invoice: Invoice) -> Proof:
    """BR-CO-10 (and BR-CO-13 where the page sums allowances or charges): the lines read, less
    the document's allowances plus its charges, add up to the net."""
    lines = [line.net_amount for line in invoice.lines if line.net_amount is not None]
    total = adjusted_lines_total(invoice)
    net = invoice.net_total
    holds = bool(lines) and net is not None and abs(total - net) <= CENT
    if not lines:
        return Proof("BR-CO-10", False, "no invoice line was read")
    adjusted = ""
    if invoice.allowance_total or invoice.charge_total:
        adjusted = (
            f" less allowances {_money(invoice.allowance_total or ZERO)} plus charges "
            f"{_money(invoice.charge_total or ZERO)}"
        )
    return Proof(
        "BR-CO-10",
        holds,
        f"the {len(lines)} lines{adjusted} add up to {_money(total)}, net {_money(net)}",
    )


def breakdown_proof(invoice: Invoice) -> Proof:
    """BR-CO-14 and BR-S-08: each rate's basis times its rate is its VAT, the rates' VAT add up
    to the VAT total and their bases to the net, at rates VAT law knows."""
    entries = [e for e in invoice.vat_breakdown if e.basis is not None and e.amount is not None]
    if not entries:
        if invoice.tax_total == ZERO and invoice.net_total == invoice.gross_total:
            return Proof("BR-CO-14", True, "no VAT, and the net is the total")
        return Proof("BR-CO-14", False, f"VAT {_money(invoice.tax_total)} and no rate with it")
    rates = ", ".join(
        f"{_money(e.rate)} % of {_money(e.basis)} = {_money(e.amount)}" for e in entries
    )
    problems = breakdown_problems(
        invoice.net_total, invoice.tax_total, [(e.rate, e.basis, e.amount) for e in entries]
    )
    if problems or len(entries) != len(invoice.vat_breakdown):
        why = "; ".join(problems) or "a rate without its basis or VAT"
        return Proof("BR-CO-14", False, f"{rates}: {why}")
    return Proof("BR-CO-14", True, f"{rates}, VAT {_money(invoice.tax_total)}")


def totals_proof(invoice: Invoice) -> Proof:
    """BR-CO-15: net plus VAT is the total."""
    net, tax, gross = invoice.net_total, invoice.tax_total, invoice.gross_total
    holds = None not in (net, tax, gross) and abs(net + tax - gross) <= CENT
    detail = f"net {_money(net)} + VAT {_money(tax)}, total {_money(gross)}"
    return Proof("BR-CO-15", holds, detail)


def due_proof(invoice: Invoice) -> Proof:
    """BR-CO-16: the total less what was paid before, plus a rounding, is the amount due."""
    gross, due = invoice.gross_total, invoice.amount_due
    prepaid, rounding = invoice.prepaid or ZERO, invoice.rounding or ZERO
    holds = None not in (gross, due) and abs(gross - prepaid + rounding - due) <= CENT
    detail = f"total {_money(gross)} - prepaid {_money(prepaid)}"
    if rounding:
        detail += f" + rounding {_money(rounding)}"
    return Proof("BR-CO-16", holds, f"{detail}, amount due {_money(due)}")


@dataclass(frozen=True)
class Proven:
    """The proofs of one reading and, for each amount they do not prove, why."""

    proofs: tuple[Proof, ...]
    # the amounts whose own sum failed, and why
    unproven: dict[str, str]
    # the amounts whose sum holds on a value that is not proven (named in `unproven`)
    resting: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.unproven and not self.resting

    @property
    def proven_amounts(self) -> frozenset[str]:
        """The amounts the sums prove (none failed, none rests on one that failed)."""
        return frozenset(PROVEN_VALUES) - set(self.unproven) - set(self.resting)

    def findings(self, invoice: Invoice) -> list[Finding]:
        """One review finding per amount nothing proved, naming the value and the failed sum."""
        return [
            Finding(
                UNPROVEN,
                f"{PROVEN_VALUES[name]} {_stated(getattr(invoice, name))} is not proven by the "
                f"invoice's own sums: {why}",
                severity="warning",
                stage="review",
            )
            for name, why in self.unproven.items()
        ]

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "proofs": [p.to_json_dict() for p in self.proofs],
            "unproven": dict(self.unproven),
            "resting_on_unproven": list(self.resting),
        }


def _failed(*proofs: Proof) -> str:
    return "; ".join(f"{p.rule} {p.detail}" for p in proofs if not p.holds)


def prove(invoice: Invoice) -> Proven:
    """Which amounts the invoice's own sums prove: the net by its lines (or its breakdown's
    bases), the VAT by its breakdown, the total by net + VAT when both are proven, the amount
    due by the total less the prepaid when the total is proven."""
    lines, breakdown = lines_proof(invoice), breakdown_proof(invoice)
    totals, due = totals_proof(invoice), due_proof(invoice)
    has_bases = any(e.basis is not None for e in invoice.vat_breakdown)
    unproven: dict[str, str] = {}
    resting: list[str] = []
    if not (lines.holds or (breakdown.holds and has_bases)):
        unproven["net_total"] = _failed(lines, breakdown)
    if not breakdown.holds:
        unproven["tax_total"] = _failed(breakdown)
    if not totals.holds:
        unproven["gross_total"] = _failed(totals)
    elif unproven:
        resting.append("gross_total")
    if not due.holds:
        unproven["amount_due"] = _failed(due)
    elif "gross_total" in unproven or resting:
        resting.append("amount_due")
    return Proven((lines, breakdown, totals, due), unproven, tuple(resting))
