"""What a dunning notice says in words, once for its letter (`letter.py`) and its e-mail, SMS or
WhatsApp text (`notice_sending.py`, `templates/`): the level's title, the name of each fee, and the
earlier notices it refers to.

- Fees: under German law a business debtor's fees are the § 288(5) BGB flat fee of EUR 40 and the
  dunning costs beyond it ("Pauschale nach § 288 Abs. 5 BGB"), never "Mahngebühren"; otherwise the
  levels' fees ("Mahngebühren"). `fee_items` gives (name, amount) for both.
- Earlier notices: a notice refers only to earlier notices of its invoice that were sent
  (`dunning_notices.delivery_status` 'sent'), by title and day ("trotz unserer
  Zahlungserinnerung vom 04.11.2026"). A level that was skipped (the schedule was off), a notice
  withdrawn, failed, unknown or kept in-app is not named: the customer may never have read it.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.engine import Connection

from invoice_pipelines.core.dunning import FLAT_FEE_EUR, customer_kind, parse_settings
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import dunning_notices
from invoice_pipelines.einvoice.layout import format_date

TITLES = {
    "de": {
        "reminder": "Zahlungserinnerung",
        "first_dunning": "1. Mahnung",
        "final_notice": "Letzte Mahnung",
    },
    "en": {
        "reminder": "Payment reminder",
        "first_dunning": "First reminder",
        "final_notice": "Final notice",
    },
}
GENERIC_TITLE = {"de": "Mahnung", "en": "Reminder"}
FEE_NAMES = {
    "de": {
        "flat_fee": "Pauschale nach § 288 Abs. 5 BGB",
        "costs_beyond": "Mahnkosten über die Pauschale hinaus",
        "fees": "Mahngebühren",
    },
    "en": {
        "flat_fee": "Flat fee under § 288(5) BGB",
        "costs_beyond": "Dunning costs beyond the flat fee",
        "fees": "Dunning fees",
    },
}
# "trotz unserer Zahlungserinnerung vom 04.11.2026 und unserer 1. Mahnung vom 18.11.2026"
DESPITE = {
    "de": ("trotz unserer ", " vom ", " und unserer "),
    "en": ("despite our ", " of ", " and our "),
}


def title(level_name: str, language: str) -> str:
    return TITLES[language].get(level_name, GENERIC_TITLE[language])


def fee_items(notice: dict, org: Organization) -> list[tuple[str, Decimal]]:
    """(key of FEE_NAMES, amount) of the fees claimed so far (`notice`: the notice row with the
    customer's kind and VAT id): the flat fee and the costs beyond it where the notice's fees are
    exactly those, else the level fees; [] without fees."""
    fees = notice["fees_total"]
    if not fees:
        return []
    settings = parse_settings(org.settings.get("dunning"), org.country)
    kind = customer_kind(notice["customer_kind"], notice["customer_vat_id"])
    costs = notice["dunning_costs_total"]
    flat = (
        settings.law == "DE"
        and settings.flat_fee
        and kind == "business"
        and notice["currency"] == "EUR"
        and costs is not None
        and fees == max(FLAT_FEE_EUR, costs)
    )
    if not flat:
        return [("fees", fees)]
    items = [("flat_fee", FLAT_FEE_EUR)]
    if fees > FLAT_FEE_EUR:
        items.append(("costs_beyond", fees - FLAT_FEE_EUR))
    return items


def named_fees(notice: dict, org: Organization, language: str) -> list[tuple[str, Decimal]]:
    """`fee_items` with their names in `language`."""
    return [(FEE_NAMES[language][key], amount) for key, amount in fee_items(notice, org)]


def sent_before(
    conn: Connection, organization_id: int, notices: list[dict]
) -> dict[int, list[tuple[str, date]]]:
    """Per notice id: (level name, day) of the earlier notices of its invoice that were sent, in
    level order; one query."""
    invoice_ids = sorted({n["sales_invoice_id"] for n in notices})
    sent: dict[int, list[tuple[int, str, date]]] = defaultdict(list)
    if invoice_ids:
        n = dunning_notices.c
        for invoice_id, level, name, day in conn.execute(
            select(n.sales_invoice_id, n.level, n.level_name, n.as_of)
            .where(
                n.organization_id == organization_id,
                n.sales_invoice_id.in_(invoice_ids),
                n.delivery_status == "sent",
            )
            .order_by(n.sales_invoice_id, n.level)
        ):
            sent[invoice_id].append((level, name, day))
    return {
        notice["id"]: [
            (name, day) for level, name, day in sent[notice["sales_invoice_id"]]
            if level < notice["level"]
        ]
        for notice in notices
    }  # fmt: skip


def despite(earlier: list[tuple[str, date]], language: str) -> str:
    """ "trotz unserer Zahlungserinnerung vom 04.11.2026 " naming the earlier notices sent, or ""
    (the sentence then says nothing of earlier notices)."""
    if not earlier:
        return ""
    start, of, joined = DESPITE[language]
    named = [f"{title(name, language)}{of}{format_date(day, language)}" for name, day in earlier]
    return start + joined.join(named) + " "
