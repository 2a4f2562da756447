"""Dunning letters: each notice as a PDF/A letter in the document store, written once.

What a letter states (`compose_letter`), in the customer's language (de or en): the organization's
letterhead as its invoices print it (sender line above the address, name, address and VAT id at
the foot), the date, the level's title (`Zahlungserinnerung`, `1. Mahnung`, `Letzte Mahnung`), the
claim of the invoice (number, issue and due date, invoice total, what is open of it), the default
interest of this notice with its period, what it was charged on (per segment where a partial
payment changed the balance), yearly rate and the base rate it is made of (per half-year where
the base rate changed), interest of earlier notices, the fees (the EUR 40 flat fee
of § 288(5) BGB where it is claimed, dunning costs beyond it, or the level fees), what this notice
adds, the total claimed, the date to pay by (`PAY_WITHIN_DAYS` after the notice's day) and the
bank details with the EPC QR code for the total (EUR, an IBAN in `settings.seller.iban`).
Every figure is the notice row's own; nothing is computed again except the base rate shown
beside the notice's rate.

`write_letters`: for each notice of the organization that has no letter yet and is not settled
(in-app, or pending delivery), one run claims it (`letter_status` NULL -> `writing`, a conditional
update committed before anything is written, so two runs never both write it), has the
`letter_writer` resource write it and stores it, then records `written` with its key, size and
pages, or `failed` with the reason. A claim a dead run left `writing` for `STALE_AFTER` is taken
over (a letter is a file: writing it again harms no one).
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine

from invoice_pipelines import sales_ledger
from invoice_pipelines.core.dunning import (
    DunningSettingsError,
    customer_kind,
    parse_settings,
)
from invoice_pipelines.core.invoice import Address
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import dunning_notices, sales_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.db.types import utcnow
from invoice_pipelines.einvoice.layout import (
    TEXT_WIDTH,
    _address_lines,
    format_date,
    format_iban,
    format_money,
    format_rate,
)
from invoice_pipelines.overdue.domain.letter_text import letter_text, letter_values
from invoice_pipelines.overdue.domain.wording import despite, named_fees, sent_before
from invoice_pipelines.overdue.domain.wording import title as level_title
from invoice_pipelines.resources.files.files import Files
from invoice_pipelines.resources.messaging.letter_types import (
    Letter,
    LetterError,
    Letters,
    Transfer,
)

PAY_WITHIN_DAYS = 7  # as the e-mail asks: "innerhalb von 7 Tagen"
STALE_AFTER = timedelta(minutes=15)
CHUNK = 50  # letters claimed per transaction
FLAT_FEE = Decimal("40.00")  # § 288(5) BGB

WORDS = {
    "de": {
        "date": "Datum",
        "customer_number": "Kundennummer",
        "greeting": "Sehr geehrte Damen und Herren,",
        "reminder": "sicher haben Sie übersehen, dass die folgende Rechnung am {due} fällig war. "
        "Bis heute ist sie nicht vollständig bezahlt.",
        # {despite}: the earlier notices that were sent (wording.despite), or nothing
        "first_dunning": "die folgende Rechnung war am {due} fällig und ist {despite}nicht "
        "vollständig bezahlt.",
        "final_notice": "die folgende Rechnung war am {due} fällig und ist {despite}nicht "
        "vollständig bezahlt. Dies ist unsere letzte Mahnung.",
        "other": "die folgende Rechnung war am {due} fällig und ist {despite}nicht vollständig "
        "bezahlt.",
        "columns": "Rechnung\tRechnungsdatum\tFällig am\tBetrag\tOffen",
        "open": "Offener Rechnungsbetrag",
        "interest_head": "Verzugszinsen auf {amount} für die Zeit vom {first} bis {last} "
        "({days} Tage){law}:",
        "interest_law": " nach § 288 BGB",
        "interest_head_segments": "Verzugszinsen für die Zeit vom {first} bis {last} ({days} Tage)"
        "{law}:",
        "interest_segment": "auf {amount} vom {first} bis {last} ({days} Tage)",
        "interest_period": "{first} bis {last}: Basiszinssatz {base} + {margin} Prozentpunkte "
        "= {rate} p. a.",
        "interest_fixed": "Zinssatz {rate} p. a.",
        "interest": "Verzugszinsen",
        "interest_earlier": "Verzugszinsen aus früheren Schreiben",
        "added": "Mit diesem Schreiben neu berechnet: Mahnkosten {fee}, Verzugszinsen {interest}.",
        "total": "Gesamtforderung",
        "pay": "Bitte überweisen Sie die Gesamtforderung von {total} bis zum {day} unter "
        "Angabe der Rechnungsnummer auf unser Konto:",
        "holder": "Kontoinhaber",
        "reference": "Verwendungszweck",
        "pay_no_account": "Bitte zahlen Sie die Gesamtforderung von {total} bis zum {day}.",
        "already_paid": "Sollten Sie inzwischen gezahlt haben, betrachten Sie dieses Schreiben "
        "bitte als gegenstandslos.",
        "regards": "Mit freundlichen Grüßen",
        "vat_id": "USt-IdNr.",
        "reference_text": "{number} {title}",
    },
    "en": {
        "date": "Date",
        "customer_number": "Customer number",
        "greeting": "Dear Sir or Madam,",
        "reminder": "you may have overlooked that the following invoice was due on {due}. "
        "It has not been paid in full yet.",
        "first_dunning": "the following invoice was due on {due} and {despite}has not been "
        "paid in full.",
        "final_notice": "the following invoice was due on {due} and {despite}has not been "
        "paid in full. This is our final notice.",
        "other": "the following invoice was due on {due} and {despite}has not been paid in full.",
        "columns": "Invoice\tIssue date\tDue date\tTotal\tOpen",
        "open": "Open amount of the invoice",
        "interest_head": "Default interest on {amount} from {first} to {last} ({days} days){law}:",
        "interest_law": " under § 288 BGB",
        "interest_head_segments": "Default interest from {first} to {last} ({days} days){law}:",
        "interest_segment": "on {amount} from {first} to {last} ({days} days)",
        "interest_period": "{first} to {last}: base rate {base} + {margin} percentage points "
        "= {rate} a year",
        "interest_fixed": "rate {rate} a year",
        "interest": "Default interest",
        "interest_earlier": "Default interest of earlier letters",
        "added": "Added by this letter: dunning costs {fee}, default interest {interest}.",
        "total": "Total claimed",
        "pay": "Please transfer the total claimed of {total} by {day}, quoting the invoice "
        "number, to our account:",
        "holder": "Account holder",
        "reference": "Reference",
        "pay_no_account": "Please pay the total claimed of {total} by {day}.",
        "already_paid": "If you have paid in the meantime, please disregard this letter.",
        "regards": "Kind regards",
        "vat_id": "VAT ID",
        "reference_text": "{number} {title}",
    },
}


def _language(value: str | None) -> str:
    return value if value in WORDS else "de"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, TEXT_WIDTH) or [""]


def _letterhead(org: Organization) -> tuple[list[str], Address]:
    """The sender's name and address lines (as the invoices print them) and the address."""
    seller = org.seller
    address = Address(
        seller.get("street") or None,
        seller.get("city") or None,
        seller.get("postal_code") or None,
        org.country or "DE",
    )
    return _address_lines(org.name, address), address


def _interest_lines(
    notice: dict, org: Organization, words: dict, language: str, money
) -> list[str]:
    """The period, rate and base rate of this notice's interest, then its amount."""
    if not notice["interest"] or notice["interest_from"] is None:
        return []
    first = notice["interest_from"] + timedelta(days=1)  # interest runs from the day after
    last = notice["interest_until"]
    settings = parse_settings(org.settings.get("dunning"), org.country)
    margin = settings.margin(customer_kind(notice["customer_kind"], notice["customer_vat_id"]))
    # what the interest was charged on, one segment per balance (NULL before migration 0030:
    # the amount open, throughout)
    segments = notice.get("interest_segments") or [{"amount": str(notice["amount_open"])}]
    head = "interest_head" if len(segments) == 1 else "interest_head_segments"
    lines = _wrap(
        words[head].format(
            amount=money(Decimal(segments[0]["amount"])),
            first=format_date(first, language),
            last=format_date(last, language),
            days=(last - first).days + 1,
            law=words["interest_law"] if settings.law == "DE" else "",
        )
    )
    for segment in segments[1:] and segments:  # one segment: the head names its amount
        after, until = date.fromisoformat(segment["after"]), date.fromisoformat(segment["until"])
        lines.append(
            "  "
            + words["interest_segment"].format(
                amount=money(Decimal(segment["amount"])),
                first=format_date(after + timedelta(days=1), language),
                last=format_date(until, language),
                days=(until - after).days,
            )
        )
    periods = settings.base_rates.periods(first, last)
    for start, end, base in periods:
        if base is None:
            continue  # never charged (accrue stops before a day without a base rate)
        rate = base + margin
        if len(periods) == 1 and rate != notice["interest_rate_percent"]:
            # the settings changed since: the notice's own rate is what was charged
            lines.append("  " + words["interest_fixed"].format(rate=format_rate(
                notice["interest_rate_percent"], language)))  # fmt: skip
            break
        lines.append(
            "  "
            + words["interest_period"].format(
                first=format_date(start, language),
                last=format_date(end, language),
                base=format_rate(base, language),
                margin=format_rate(margin, language).rstrip(" %"),
                rate=format_rate(rate, language),
            )
        )
    lines.append(f"\t{words['interest']}\t{money(notice['interest'])}")
    return lines


def compose_letter(notice: dict, org: Organization) -> Letter:
    """The letter of one notice (`notice`: the notice row with the invoice's and customer's fields
    `_unwritten` adds; `org`: the organization)."""
    # every text from outside as one line of visible text: a tab in a name would move it into
    # the right-hand column, a bidi override would draw it reversed
    notice = letter_values(notice)
    org = replace(
        org,
        name=letter_text(org.name),
        vat_id=letter_text(org.vat_id),
        settings={**org.settings, "seller": letter_values(org.seller)},
    )
    language = _language(notice["language"])
    words = WORDS[language]
    currency = notice["currency"]

    def money(amount: Decimal) -> str:
        return f"{format_money(amount, language)} {currency}"

    sender, seller_address = _letterhead(org)
    seller = org.seller
    title = level_title(notice["level_name"], language)
    recipient = _address_lines(
        notice["customer_name"],
        Address(
            notice["customer_street"] or None,
            notice["customer_city"] or None,
            notice["customer_postal_code"] or None,
            notice["customer_country"] or None,
        ),
    )
    head = [" · ".join(part for part in sender if part), "", *recipient, ""]
    if notice["customer_number"]:
        head.append(f"\t{words['customer_number']}: {notice['customer_number']}")
    head += [f"\t{words['date']}: {format_date(notice['as_of'], language)}", "", ""]

    due = format_date(notice["due_date"], language)
    intro = words.get(notice["level_name"], words["other"]).format(
        due=due, despite=despite(notice.get("sent_before") or [], language)
    )
    body = ["", words["greeting"], "", *_wrap(intro), "", words["columns"]]
    body.append(
        f"{notice['invoice_number']}\t{format_date(notice['issue_date'], language)}\t{due}\t"
        f"{money(notice['invoice_total'])}\t{money(notice['amount_open'])}"
    )
    body += ["", f"\t{words['open']}\t{money(notice['amount_open'])}"]
    body += _interest_lines(notice, org, words, language, money)
    earlier = notice["interest_total"] - notice["interest"]
    if earlier > 0:
        body.append(f"\t{words['interest_earlier']}\t{money(earlier)}")
    body += [f"\t{name}\t{money(amount)}" for name, amount in named_fees(notice, org, language)]
    body.append(f"\t{words['total']}\t{money(notice['total_claimed'])}")
    if (notice["fee"], notice["interest"]) != (notice["fees_total"], notice["interest_total"]):
        body += ["", *_wrap(words["added"].format(
            fee=money(notice["fee"]), interest=money(notice["interest"])))]  # fmt: skip
    pay_by = format_date(notice["as_of"] + timedelta(days=PAY_WITHIN_DAYS), language)
    total = money(notice["total_claimed"])
    iban = (seller.get("iban") or "").replace(" ", "")
    transfer = None
    body.append("")
    if iban:
        reference = words["reference_text"].format(number=notice["invoice_number"], title=title)
        body += _wrap(words["pay"].format(total=total, day=pay_by))
        body += ["", f"{words['holder']}: {org.name}", f"IBAN: {format_iban(iban)}"]
        if seller.get("bic"):
            body.append(f"BIC: {seller['bic']}")
        body.append(f"{words['reference']}: {reference}")
        body += ["", ""]
        if currency == "EUR" and Decimal("0.01") <= notice["total_claimed"] <= Decimal(
            "999999999.99"
        ):
            transfer = Transfer(
                org.name, iban, notice["total_claimed"], reference, seller.get("bic")
            )
    else:
        body += _wrap(words["pay_no_account"].format(total=total, day=pay_by))
    body += ["", *_wrap(words["already_paid"]), "", words["regards"], org.name]
    footer = [org.name, *_address_lines(None, seller_address)[1:]]
    if org.vat_id:
        footer.append(f"{words['vat_id']}: {org.vat_id}")
    body += ["", "", " · ".join(part for part in footer if part)]
    return Letter(
        author=org.name,
        title=title,
        head=tuple(head),
        body=tuple(body),
        language=language,
        transfer=transfer,
    )


def letter_key(slug: str, notice: dict) -> str:
    """Where a notice's letter is stored: beside the organization's invoice documents."""
    number = re.sub(r"[^A-Za-z0-9._-]+", "-", notice["invoice_number"]).strip("-") or "invoice"
    day: date = notice["as_of"]
    name = f"{number}_{notice['level_name']}_{notice['id']}.pdf"
    return f"{slug}/dunning/{day.year:04d}-{day.month:02d}/{name}"


@dataclass
class LetterSummary:
    written: list[dict] = field(default_factory=list)  # notice id, invoice, level, key, size, pages
    failed: dict[int, str] = field(default_factory=dict)  # notice id -> reason


def _claimable(organization_id: int, now: datetime):
    n = dunning_notices.c
    return and_(
        n.organization_id == organization_id,
        or_(n.delivery_status.is_(None), n.delivery_status == "pending"),
        or_(
            n.letter_status.is_(None),
            and_(n.letter_status == "writing", n.letter_started_at < now - STALE_AFTER),
        ),
    )


def _claim(engine: Engine, organization_id: int) -> list[int]:
    """Up to CHUNK notices whose letter this run writes, claimed `writing` and committed."""
    n = dunning_notices.c
    now = utcnow()
    with tenant_transaction(engine, organization_id, write=True) as conn:
        ids = (
            select(n.id)
            .where(_claimable(organization_id, now))
            .order_by(n.id)
            .limit(CHUNK)
            .scalar_subquery()
        )
        claimed = conn.execute(
            update(dunning_notices)
            # the condition again: of two runs that read the same ids, only one updates a row
            .where(n.id.in_(ids), _claimable(organization_id, now))
            .values(letter_status="writing", letter_started_at=now, letter_error=None)
            .returning(n.id)
        )
        return sorted(row[0] for row in claimed)


# what a letter reads of the invoice and its customer (sales_ledger.py), besides the notice
LETTER_FIELDS = (
    "invoice_number",
    "issue_date",
    "due_date",
    "customer_name",
    "customer_street",
    "customer_postal_code",
    "customer_city",
    "customer_country",
    "customer_number",
    "customer_kind",
    "customer_vat_id",
)


def _notices(engine: Engine, organization_id: int, ids: list[int]) -> list[dict]:
    n = dunning_notices
    query = (
        select(n, *sales_ledger.fields(*LETTER_FIELDS, invoice_total="gross_total"))
        .select_from(
            n.join(sales_ledger.joined(*LETTER_FIELDS), sales_invoices.c.id == n.c.sales_invoice_id)
        )
        .where(n.c.organization_id == organization_id, n.c.id.in_(ids))
        .order_by(n.c.id)
    )
    with tenant_transaction(engine, organization_id) as conn:
        rows = [dict(row) for row in conn.execute(query).mappings()]
        earlier = sent_before(conn, organization_id, rows)
    for row in rows:
        row["sent_before"] = earlier[row["id"]]
    return rows


def _record(engine: Engine, organization_id: int, notice_id: int, **values) -> None:
    n = dunning_notices.c
    with tenant_transaction(engine, organization_id, write=True) as conn:
        conn.execute(
            update(dunning_notices)
            .where(n.id == notice_id, n.letter_status == "writing")
            .values(**values)
        )


def _sentence(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def write_letters(
    engine: Engine,
    writer: Letters,
    store: Files,
    org: Organization,
    *,
    created: datetime | None = None,
) -> LetterSummary:
    """Write the letters of the organization's notices that have none yet (module docstring)."""
    summary = LetterSummary()
    while ids := _claim(engine, org.id):
        for notice in _notices(engine, org.id, ids):
            try:
                written = writer.write(compose_letter(notice, org), created=created)
            except (LetterError, DunningSettingsError, ValueError, ArithmeticError) as exc:
                # this customer's letter only: its notice fails with the reason, the others go on
                reason = f"the dunning letter cannot be written: {_sentence(exc)}"
                _record(engine, org.id, notice["id"], letter_status="failed", letter_error=reason)
                summary.failed[notice["id"]] = reason
                continue
            key = letter_key(org.slug, notice)
            store.write(key, [written.pdf])
            _record(
                engine, org.id, notice["id"], letter_status="written", letter_key=key,
                letter_size_bytes=len(written.pdf), letter_pages=written.pages,
                letter_sha256=hashlib.sha256(written.pdf).hexdigest(),
            )  # fmt: skip
            summary.written.append(
                {
                    "notice_id": notice["id"],
                    "invoice_number": notice["invoice_number"],
                    "level": notice["level_name"],
                    "path": store.location(key),
                    "size_bytes": len(written.pdf),
                    "pages": written.pages,
                }
            )
    return summary
