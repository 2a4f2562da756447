"""Early-payment discount (Skonto): structured terms, where they are read from, what they are worth.

A term says: pay within `days` of a start day (the invoice's issue date, unless the term names
its own start) and take `percent` off the base (the amount due, BT-115, unless the term names a
base amount). Where terms come from:

- XRechnung's form in the payment terms (BT-20), one line per step, as KoSIT's rule BR-DE-18
  checks it: ``#SKONTO#TAGE=14#PROZENT=2.00#`` with an optional ``BASISBETRAG=123.45#`` before the
  closing ``#``; every such line ends with a line break. ``#VERZUG#`` lines (late-payment
  interest) have the same shape and are not discounts.
- CII's ``ram:ApplicableTradePaymentDiscountTerms`` (Factur-X EXTENDED): the reader hands its
  values to `DiscountTerm` directly.
- The sentences a printed or scanned invoice uses: "2 % Skonto bei Zahlung innerhalb von
  10 Tagen", "zahlbar innerhalb 14 Tagen mit 3 % Skonto, 30 Tage netto", "bis zum 15.03.2026
  abzüglich 2 % Skonto", "2% discount if paid within 10 days", "2/10 net 30".

Rounding: the discount is base x percent / 100 rounded to the cent, half up (commercial
rounding, DIN 1333; the same rule as every other amount here, `core.money.round_cents`); the
amount to pay is the base's invoice amount minus that rounded discount, so the two always add up
to what was invoiced. Split over VAT rates (`split_by_rate`), each rate's share is rounded the
same way and the last rate takes the remainder, so the parts add up to the discount exactly.

No Dagster, no SQL: plain functions on Decimal and date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from invoice_pipelines.core.money import ZERO, plain_string, round_cents

HUNDRED = Decimal(100)
# A discount step longer than a year or of 50 % or more is no early-payment discount: a reading
# of such a sentence is more likely wrong than the term.
MAX_DAYS = 365
MAX_PERCENT = Decimal(50)
# The last day a discount period may start on: counting MAX_DAYS from it still gives a date. A
# document dated later (9999-12-25) has no discount we can compute, whatever its terms say.
LATEST_START = date.max - timedelta(days=MAX_DAYS)

Source = Literal["xrechnung", "cii", "text", "settings"]


class SkontoError(ValueError):
    """Terms that cannot be what they claim (no days, a percentage out of range)."""


@dataclass(frozen=True, slots=True)
class DiscountTerm:
    """One step of an early-payment discount: `percent` off when paid within `days`."""

    days: int
    percent: Decimal
    # the amount the percentage applies to when it is not the whole amount due (BASISBETRAG)
    base_amount: Decimal | None = None
    # the day the days count from when it is not the invoice's issue date (CII BasisDateTime, or
    # a sentence naming a last day: then days is 0 and this is that day)
    start: date | None = None
    source: Source = "xrechnung"

    def __post_init__(self) -> None:
        if not isinstance(self.days, int) or not 0 <= self.days <= MAX_DAYS:
            raise SkontoError(f"discount days must be a whole number 0..{MAX_DAYS}: {self.days!r}")
        if not (isinstance(self.percent, Decimal) and ZERO < self.percent < MAX_PERCENT):
            raise SkontoError(f"a discount percentage must be above 0 and below 50: {self.percent}")
        if self.days == 0 and self.start is None:
            raise SkontoError("a discount of 0 days needs the day it ends")
        if self.start is not None and not (
            isinstance(self.start, date) and self.start <= LATEST_START
        ):
            raise SkontoError(f"a discount cannot start on {self.start}: no calendar day follows")
        if self.base_amount is not None and not (
            isinstance(self.base_amount, Decimal) and self.base_amount.is_finite()
        ):
            raise SkontoError(f"a discount's base amount must be a number: {self.base_amount}")

    def last_day(self, issue_date: date) -> date:
        """The last day a payment earns the discount: the start (issue date unless the term names
        its own) plus the days. SkontoError for a start too late for the calendar."""
        start = self.start or issue_date
        if start > LATEST_START:
            raise SkontoError(f"a discount cannot start on {start}: no calendar day follows")
        return start + timedelta(days=self.days)

    def base(self, amount_due: Decimal) -> Decimal:
        return amount_due if self.base_amount is None else self.base_amount

    def discount(self, amount_due: Decimal) -> Decimal:
        """The discount in money, rounded to the cent half up."""
        return round_cents(self.base(amount_due) * self.percent / HUNDRED)

    def xrechnung_line(self) -> str:
        """The BT-20 line of this step as BR-DE-18 wants it (without the line break)."""
        line = f"#SKONTO#TAGE={self.days}#PROZENT={self.percent.quantize(Decimal('0.01'))}#"
        if self.base_amount is not None:
            line += f"BASISBETRAG={round_cents(self.base_amount)}#"
        return line

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "percent": plain_string(self.percent),
            "base_amount": None if self.base_amount is None else plain_string(self.base_amount),
            "start": None if self.start is None else self.start.isoformat(),
            "source": self.source,
        }

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> DiscountTerm:
        return cls(
            days=int(data["days"]),
            percent=Decimal(str(data["percent"])),
            base_amount=None
            if data.get("base_amount") in (None, "")
            else Decimal(str(data["base_amount"])),
            start=None if not data.get("start") else date.fromisoformat(data["start"]),
            source=data.get("source") or "xrechnung",
        )


@dataclass(frozen=True, slots=True)
class DiscountOffer:
    """A term applied to one invoice: until when, on what, how much off, what is left to pay."""

    term: DiscountTerm
    last_day: date
    base: Decimal
    discount: Decimal
    pay: Decimal  # the amount that settles the invoice within the period

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "days": self.term.days,
            "percent": plain_string(self.term.percent),
            "last_day": self.last_day.isoformat(),
            "base": plain_string(self.base),
            "discount": plain_string(self.discount),
            "pay": plain_string(self.pay),
        }


def offers(
    terms: Iterable[DiscountTerm], issue_date: date | None, amount_due: Decimal | None
) -> list[DiscountOffer]:
    """Each term applied to an invoice, earliest last day first. None when the invoice has no
    issue date or nothing positive is due (a credit note, a paid invoice): nothing to discount.
    A term that cannot be applied is left out: one whose base is not above 0 or is more than is
    due (a part of the invoice cannot be larger than the invoice), or whose period starts too
    late for the calendar (a document dated 9999-12-25)."""
    if issue_date is None or amount_due is None or amount_due <= ZERO:
        return []
    result = []
    for term in terms:
        base = term.base(amount_due)
        if base <= ZERO or base > amount_due or (term.start or issue_date) > LATEST_START:
            continue
        discount = min(term.discount(amount_due), amount_due)
        result.append(
            DiscountOffer(term, term.last_day(issue_date), base, discount, amount_due - discount)
        )
    return sorted(result, key=lambda o: (o.last_day, -o.discount))


def offer_on(
    terms: Iterable[DiscountTerm],
    issue_date: date | None,
    amount_due: Decimal | None,
    paid_on: date,
) -> DiscountOffer | None:
    """The best discount a payment made on `paid_on` earns (the largest of the steps still
    running that day), or None."""
    running = [o for o in offers(terms, issue_date, amount_due) if paid_on <= o.last_day]
    return max(running, key=lambda o: o.discount, default=None)


SETTING = "skonto"


def terms_from_settings(settings: dict | None) -> list[DiscountTerm]:
    """The organization's default discount steps for the invoices it issues,
    `settings["skonto"]`: a list of {"days": 10, "percent": "2.00"}; SkontoError names a wrong
    entry in one sentence."""
    return _steps((settings or {}).get(SETTING) or [], f'settings["{SETTING}"]')


def _steps(entries: Any, name: str) -> list[DiscountTerm]:
    if not isinstance(entries, list):
        raise SkontoError(f'{name} must be a list of {{"days", "percent"}} steps')
    terms = []
    for entry in entries:
        try:
            terms.append(
                DiscountTerm(int(entry["days"]), Decimal(str(entry["percent"])), source="settings")
            )
        except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
            raise SkontoError(f"{name} has a step that cannot be: {entry!r} ({exc})") from exc
    return terms


def customer_terms(
    own: list | None, organization_settings: dict | None, customer: str = ""
) -> list[DiscountTerm]:
    """The steps an invoice to a customer offers: the customer's own (`customers.skonto`, a list
    in the organization setting's form; an empty list: this customer gets no discount) or, when
    the customer has none (NULL), the organization's default. SkontoError names a wrong entry and
    the customer in one sentence."""
    if own is None:
        return terms_from_settings(organization_settings)
    return _steps(own, f"the payment terms of customer {customer}".rstrip())


def recorded_terms(steps: Any, invoice: str = "") -> list[DiscountTerm]:
    """The steps recorded on a sales invoice when its document was written
    (`sales_invoices.skonto_steps`, the organization setting's form): the terms it was issued
    with. SkontoError names a wrong entry and the invoice in one sentence."""
    return _steps(steps, f"the discount steps recorded on invoice {invoice}".rstrip())


def stored_steps(terms: Iterable[DiscountTerm]) -> list[dict[str, str | int]]:
    """Steps in the stored form ({"days": 10, "percent": "2"}), the inverse of `_steps`."""
    return [{"days": t.days, "percent": plain_string(t.percent)} for t in terms]


def steps_from_text(text: str) -> list[dict[str, str | int]]:
    """Steps as a person types them, "10:2,20:1" (days:percent, comma between steps; "none" for
    no discount), in the stored form; SkontoError names what cannot be read in one sentence."""
    if text.strip().lower() == "none":
        return []
    steps: list[dict[str, str | int]] = []
    for part in text.split(","):
        days, _, percent = part.strip().partition(":")
        try:
            term = DiscountTerm(int(days), Decimal(percent.strip().replace("%", "")))
        except SkontoError as exc:
            raise SkontoError(f"discount step {part.strip()!r}: {exc}") from exc
        except (ValueError, InvalidOperation) as exc:
            raise SkontoError(
                f"discount steps are days:percent separated by commas (10:2,20:1): {part.strip()!r}"
            ) from exc
        steps.append({"days": term.days, "percent": plain_string(term.percent)})
    if len({s["days"] for s in steps}) != len(steps):
        raise SkontoError(f"two discount steps have the same days: {text.strip()!r}")
    return steps


# ---------------------------------------------------------------- settling by a payment


@dataclass(frozen=True, slots=True)
class Settlement:
    """An invoice settled by payments of its discounted amount within a step's period."""

    offer: DiscountOffer  # the step earned (its last day, percent, discount on what was invoiced)
    discount: Decimal  # what is taken off: the rest the payments left open, at most the step's
    paid_on: date  # the day the payments reached the step's amount to pay


def settlement(
    terms: Iterable[DiscountTerm],
    issue_date: date | None,
    invoiced: Decimal,
    payments: Iterable[tuple[date, Decimal]],
) -> Settlement | None:
    """Whether payments settle an invoice with a discount, and with which.

    `invoiced` is what the invoice still bills after its credit notes: the discount applies to
    that. A step is earned when the payments made up to its last day add up to at least its
    amount to pay (the amount the invoice states: "zu zahlen sind dann ..."); a payment after the
    last day counts toward the total, never toward the discount. A partial payment in time earns
    nothing on its own: the term is a discount for paying the invoice by that day, so the rest
    stays open at its full amount. What is taken off is what the payments left open (never more
    than the step's discount; nothing when they paid it all). None: no step earned."""
    money = sorted((day, amount) for day, amount in payments if amount > ZERO)
    rest = invoiced - sum((amount for _, amount in money), ZERO)
    if rest <= ZERO:
        return None
    best: Settlement | None = None
    for offer in offers(terms, issue_date, invoiced):
        running = ZERO
        for day, amount in money:
            if day > offer.last_day:
                break
            running += amount
            if running >= offer.pay:
                if best is None or offer.discount > best.offer.discount:
                    best = Settlement(offer, rest, day)
                break
    return best


# ---------------------------------------------------------------- XRechnung BT-20

# BR-DE-18's regular expression (KoSIT xrechnung-schematron, common.sch XR-SKONTO-REGEX), read
# leniently: surrounding whitespace of a line is ignored, as the rule's normalize-space does.
_XR_LINE = re.compile(
    r"#(SKONTO|VERZUG)#TAGE=([0-9]+)#PROZENT=([0-9]+\.[0-9]{2})#(?:BASISBETRAG=(-?[0-9]+\.[0-9]{2})#)?"
)


def parse_xrechnung_terms(text: str | None) -> tuple[list[DiscountTerm], list[str]]:
    """The Skonto steps of an XRechnung BT-20 text, and a sentence for each '#' line that is not
    in the form (it is not read: a wrong discount is worse than none)."""
    terms: list[DiscountTerm] = []
    problems: list[str] = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            continue
        match = _XR_LINE.fullmatch(line)
        if match is None:
            problems.append(f"payment terms line {line[:80]!r} is not in the XRechnung form")
            continue
        if match.group(1) != "SKONTO":
            continue
        if len(match.group(2).lstrip("0")) > len(str(MAX_DAYS)):
            problems.append(f"payment terms line {line[:80]!r}: more than {MAX_DAYS} days")
            continue
        try:
            terms.append(
                DiscountTerm(
                    days=int(match.group(2)),
                    percent=Decimal(match.group(3)),
                    base_amount=None if match.group(4) is None else Decimal(match.group(4)),
                    source="xrechnung",
                )
            )
        except SkontoError as exc:
            problems.append(f"payment terms line {line[:80]!r}: {exc}")
    return terms, problems


def xrechnung_terms_text(terms: Sequence[DiscountTerm], free_text: str | None = None) -> str | None:
    """BT-20 for a document: the free text as given, then one #SKONTO# line per discount step,
    each closed by a line break as BR-DE-18 requires. The free text is not changed: a '#' line
    of its own is the writer's mistake, which KoSIT's rules then name."""
    if not terms:
        return free_text or None
    steps = "".join(term.xrechnung_line() + "\n" for term in terms)
    if free_text and free_text.strip():
        return free_text.rstrip("\r\n") + "\n" + steps
    return steps


# ---------------------------------------------------------------- printed sentences

_NUMBER = r"(\d{1,2}(?:[.,]\d{1,2})?)"
_PERCENT = _NUMBER + r"\s?(?:%|Prozent|percent|per cent|v\.\s?H\.)"
_DAYS = r"(\d{1,3})\s?(?:Kalender|Werk|calendar\s)?(?:Tage?n?|days?|jours)\b"
_DATE = r"(\d{1,2})\.(\d{1,2})\.(\d{2,4})|(\d{4})-(\d{2})-(\d{2})"
_KEYWORD = re.compile(r"skonto|\bdiscount\b|\bescompte\b|abzüglich|abzgl|\bless\b", re.IGNORECASE)
_NET = re.compile(r"\bnetto\b|\bnet\b|ohne abzug|rein netto|without deduction", re.IGNORECASE)
_PERCENT_RE = re.compile(_PERCENT, re.IGNORECASE)
_DAYS_RE = re.compile(_DAYS, re.IGNORECASE)
_DATE_RE = re.compile(_DATE)
_SLASH_NET = re.compile(
    r"\b(\d{1,2}(?:\.\d{1,2})?)\s?%?\s?/\s?(\d{1,3})\s*,?\s*net\s*\d{1,3}\b", re.I
)
# clauses: a ';', a sentence end, or a comma followed by a space ("2,5 %" keeps its comma)
_CLAUSE = re.compile(r";|,\s|\.\s(?=[A-ZÄÖÜ])|\n")


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _day_named(clause: str) -> date | None:
    match = _DATE_RE.search(clause)
    if match is None:
        return None
    try:
        if match.group(1):
            year = int(match.group(3))
            year = year + 2000 if year < 100 else year
            return date(year, int(match.group(2)), int(match.group(1)))
        return date(int(match.group(4)), int(match.group(5)), int(match.group(6)))
    except ValueError:
        return None


def _term_of(clause: str) -> DiscountTerm | None:
    percent_match = _PERCENT_RE.search(clause)
    if percent_match is None:
        return None
    percent = _decimal(percent_match.group(1))
    days_match = _DAYS_RE.search(clause)
    try:
        if days_match is not None:
            return DiscountTerm(int(days_match.group(1)), percent, source="text")
        named = _day_named(clause)
        if named is not None:
            return DiscountTerm(0, percent, start=named, source="text")
    except (SkontoError, TypeError):
        return None
    return None


def _clauses(line: str) -> list[str]:
    return [c for c in _CLAUSE.split(line) if c.strip()]


def text_terms(text: str | None) -> list[DiscountTerm]:
    """The discount steps a page states in words, in the order it states them. A clause counts
    when it names a percentage and a number of days (or a last day) and either says Skonto /
    discount itself or follows a clause that did ("3 % Skonto innerhalb 7 Tagen, 2 % innerhalb
    14 Tagen"); "30 Tage netto" is the due date, not a step. A sentence wrapped onto the next
    line ("2 % Skonto bei Zahlung innerhalb / von 10 Tagen") is read joined."""
    terms: list[DiscountTerm] = []

    def add(term: DiscountTerm | None) -> bool:
        if term is not None and term not in terms:
            terms.append(term)
        return term is not None

    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    for index, line in enumerate(lines):
        slashed = [m for m in _SLASH_NET.finditer(line)]
        for match in slashed:
            try:
                add(DiscountTerm(int(match.group(2)), Decimal(match.group(1)), source="text"))
            except SkontoError:
                pass
        if slashed:
            continue
        clauses = _clauses(line)
        in_discount = False
        for position, clause in enumerate(clauses):
            said = _KEYWORD.search(clause) is not None
            if _NET.search(clause) and not said:
                in_discount = False
                continue
            if not (said or in_discount):
                continue
            if add(_term_of(clause)):
                in_discount = True
                continue
            following = _clauses(lines[index + 1]) if index + 1 < len(lines) else []
            if said and position == len(clauses) - 1 and following:
                # wrapped: the sentence goes on in the next line's first clause
                add(_term_of(clause + " " + following[0]))
            in_discount = said
    return terms


def read_terms(payment_terms: str | None) -> list[DiscountTerm]:
    """The steps of a payment terms text: XRechnung's form where it has any, else the words."""
    structured, _ = parse_xrechnung_terms(payment_terms)
    return structured or text_terms(payment_terms)


# ---------------------------------------------------------------- per VAT rate


@dataclass(frozen=True, slots=True)
class RateShare:
    """The part of a discount that falls on one VAT rate: gross, and the net and VAT it corrects."""

    category: str | None
    rate: Decimal
    gross: Decimal
    net: Decimal
    vat: Decimal


def split_by_rate(
    discount: Decimal, breakdown: Sequence[tuple[str | None, Decimal, Decimal]]
) -> list[RateShare]:
    """A gross discount spread over the invoice's VAT rates in proportion to each rate's gross
    amount (category, rate, gross), each share split into net and VAT at its rate: the
    correction of the VAT base (§ 17 UStG) a discount taken is. Shares are rounded to the cent
    and the last one takes the remainder, so they add up to the discount."""
    total = sum((gross for _, _, gross in breakdown), ZERO)
    if total == ZERO or discount == ZERO:
        return []
    shares: list[RateShare] = []
    left = discount
    for index, (category, rate, gross) in enumerate(breakdown):
        part = left if index == len(breakdown) - 1 else round_cents(discount * gross / total)
        left -= part
        net = round_cents(part * HUNDRED / (HUNDRED + rate))
        shares.append(RateShare(category, rate, part, net, part - net))
    return shares


def describe(
    offer: DiscountOffer, currency: str = "EUR", language: str = "de", country: str | None = None
) -> str:
    """One sentence a person reads on an invoice or in a listing, its last day and amounts written
    the way the rest of that document writes them: `country` is the seller's (the page's dates
    follow it, einvoice/layout.plain_date), amounts with thousands separators as the page's."""
    percent = format(offer.term.percent.normalize(), "f")
    last_day = written_date(offer.last_day, language, country)
    if language == "de":
        return (
            f"Bei Zahlung bis zum {last_day} gewähren wir {percent.replace('.', ',')} % "
            f"Skonto ({_de(offer.discount)} {currency}); zu zahlen sind dann {_de(offer.pay)} {currency}."
        )
    return (
        f"If paid by {last_day}, deduct a {percent} % early-payment discount "
        f"({_en(offer.discount)} {currency}): {_en(offer.pay)} {currency} to pay."
    )


def written_date(day: date, language: str, country: str | None = None) -> str:
    """A date as a document of a seller in `country` writes it: 11/15/2026 for a US seller,
    15.11.2026 in German, ISO otherwise. The one rule: the plain invoice layout writes its dates
    by it too (einvoice/layout.plain_date)."""
    if (country or "").upper() == "US":
        return f"{day:%m/%d/%Y}"
    return f"{day:%d.%m.%Y}" if language == "de" else day.isoformat()


def _en(amount: Decimal) -> str:
    """1234.5 -> "1,234.50": cents rounded half up, as the page prints amounts."""
    return format(round_cents(amount), ",.2f")


def _de(amount: Decimal) -> str:
    whole, _, cents = _en(amount).partition(".")
    return whole.replace(",", ".") + "," + cents
