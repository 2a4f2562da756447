"""Draws one generated invoice (generated_invoices.py) as a PDF with a text layer (fpdf2)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fpdf import FPDF

from invoice_pipelines_devtools.bench.generated_invoices import (
    ROWS_PER_PAGE,
    WIDTHS,
    GeneratedInvoice,
    Layout,
    Line,
    day,
    money,
    plans,
    rate_text,
)

LEFT = 15.0
TABLE_WIDTH = 180.0
ROW = 5.0
CURRENCY_WORD = {"de": "Währung", "en": "Currency", "fr": "Devise"}
PAGE_WORD = {"de": "Seite {} von {}", "en": "Page {} of {}", "fr": "Page {} sur {}"}
RIGHT_ALIGNED = {"qty", "price", "rate", "amount"}


class _Page:
    def __init__(self, layout: Layout, currency: str) -> None:
        self.currency = currency
        self.pdf = FPDF(format="A4")
        self.pdf.set_creation_date(datetime(2026, 1, 1, tzinfo=UTC))
        self.pdf.set_auto_page_break(False)
        self.layout = layout
        self.pdf.add_page()
        self.font(9)

    def font(self, size: float, bold: bool = False) -> None:
        self.pdf.set_font("Helvetica", "B" if bold else "", size)

    def text(self, x: float, y: float, value: str, *, right: bool = False) -> None:
        if right:
            x -= self.pdf.get_string_width(value)
        self.pdf.text(x, y, value)


def _seller_block(page: _Page, document: dict[str, Any]) -> None:
    seller = document["seller"]
    where = page.layout.letterhead
    if where == "footer":
        return
    if where == "sender-line":
        page.font(7)
        page.text(LEFT, 44, f"{seller['name']} · {seller['street']} · {seller['city']}")
        return
    page.font(14, bold=True)
    x, right = (LEFT, False) if where == "left" else (LEFT + TABLE_WIDTH, True)
    page.text(x, 18, seller["name"], right=right)
    page.font(9)
    page.text(x, 24, seller["street"], right=right)
    page.text(x, 29, seller["city"], right=right)


def _head(page: _Page, document: dict[str, Any]) -> None:
    language, labels = page.layout.language, page.layout.labels
    _seller_block(page, document)
    page.font(9)
    y = 50.0
    buyer = document["buyer"]
    for value in (labels["buyer"], buyer["name"], buyer["street"], buyer["city"]):
        if value:
            page.text(LEFT, y, value)
            y += ROW
    style = document["date_style"]
    issued = day(document["issue_date"], language, style)
    meta = [
        (language.number, document["number"]),
        (language.issue, issued),
        (language.due, day(document["due_date"], language, style)),
    ]
    title = language.title
    if page.layout.title_number:
        words = language.title_words
        title = f"{words[0]} {document['number']} {words[1]} {issued}"
        meta = meta[2:]
    if page.layout.meta_row and not page.layout.title_number:
        for column, (label, value) in enumerate(meta):
            page.text(LEFT + column * 45, 78, label)
            page.text(LEFT + column * 45, 78 + ROW, value)
    else:
        for offset, (label, value) in enumerate(meta):
            page.text(120, 50 + offset * ROW, f"{label}:")
            page.text(160, 50 + offset * ROW, value)
    page.font(13 if page.layout.title_number else 16, bold=True)
    page.text(LEFT, 70 if page.layout.meta_row else 85, title)
    page.font(9)


def _column_x(columns: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    fixed = sum(WIDTHS[c] for c in columns if c != "desc")
    spans, x = {}, LEFT
    for column in columns:
        width = TABLE_WIDTH - fixed if column == "desc" else WIDTHS[column]
        spans[column] = (x, x + width)
        x += width
    return spans


def _cell(page: _Page, spans: dict, column: str, y: float, value: str) -> None:
    start, end = spans[column]
    if column in RIGHT_ALIGNED:
        page.text(end - 2, y, value, right=True)
    else:
        page.text(start, y, value)


def _header_row(page: _Page, spans: dict, y: float) -> float:
    page.font(9, bold=True)
    layout = page.layout
    for column in spans:
        heading = layout.headers[column]
        if column == "amount" and layout.currency == "heading":
            heading += f" ({page.currency})"
        _cell(page, spans, column, y, heading)
    page.font(9)
    page.pdf.line(LEFT, y + 1.5, LEFT + TABLE_WIDTH, y + 1.5)
    return y + ROW + 1


def _line_cells(line: Line, position: int, layout: Layout) -> dict[str, str]:
    language = layout.language
    places = layout.quantity_places
    quantity = f"{line.quantity.normalize():f}" if places is None else f"{line.quantity:.{places}f}"
    if language.code != "en":
        quantity = quantity.replace(".", ",")
    return {
        "pos": str(position),
        "desc": line.description[0],
        "qty": f"{quantity} {line.unit}",
        "price": money(line.price, language, layout.price_places),
        "rate": f"{rate_text(line.rate, language)} %",
        "amount": money(line.amount, language),
    }


def _carried(page: _Page, spans: dict, y: float, running: Decimal) -> float:
    page.font(9, bold=True)
    _cell(page, spans, "desc", y, page.layout.labels["carried"])
    _cell(page, spans, "amount", y, money(running, page.layout.language))
    page.font(9)
    return y + ROW


def _table(page: _Page, lines: list[Line]) -> float:
    spans = _column_x(page.layout.columns)
    y = _header_row(page, spans, 95.0)
    rows, running = 0, Decimal(0)
    for position, line in enumerate(lines, start=1):
        if rows + len(line.description) > ROWS_PER_PAGE:
            _carried(page, spans, y + 2, running)
            page.pdf.add_page()
            y = _carried(page, spans, _header_row(page, spans, 20.0), running)
            rows = 0
        cells = _line_cells(line, position, page.layout)
        for column in spans:
            _cell(page, spans, column, y, cells[column])
        for more in line.description[1:]:
            y += ROW
            _cell(page, spans, "desc", y, more)
        y += ROW
        rows += len(line.description)
        running += line.amount
    page.pdf.line(LEFT, y - 3, LEFT + TABLE_WIDTH, y - 3)
    return y + 3


def _vat_rows(page: _Page, document: dict[str, Any]) -> list[tuple[str, Decimal]]:
    layout, language = page.layout, page.layout.language
    label = layout.labels["vat"]
    if layout.breakdown in ("lines", "table"):
        return [(label, document["tax_total"])]
    rows = []
    for rate in sorted(document["vat"], reverse=True):
        if layout.breakdown == "rate":
            percent = f"{rate_text(rate, language)} %"
            text = f"{percent} {label}" if layout.vat_first else f"{label} {percent}"
            rows.append((text, document["vat"][rate]))
            continue
        basis = money(document["bases"][rate], language)
        text = language.vat_on.format(label=label, rate=rate_text(rate, language), basis=basis)
        rows.append((text, document["vat"][rate]))
    return rows


def _totals(page: _Page, document: dict[str, Any], y: float) -> None:
    labels, language = page.layout.labels, page.layout.language
    if y > 230:
        page.pdf.add_page()
        y = 30.0
    rows = [(labels["net"], document["net_total"]), *_vat_rows(page, document)]
    rows.append((labels["gross"], document["gross_total"]))
    if document["prepaid"] is not None:
        prepaid = document["prepaid"]
        rows.append((labels["prepaid"], -prepaid if page.layout.prepaid_sign else prepaid))
        rows.append((labels["due"], document["amount_due"]))
    style, currency = page.layout.currency, document["currency"]
    for label, value in rows:
        page.text(page.layout.totals_x, y, label)
        shown = money(value, language)
        shown = {"suffix": f"{shown} {currency}", "prefix": f"{currency} {shown}"}.get(style, shown)
        page.text(LEFT + TABLE_WIDTH - 2, y, shown, right=True)
        y += ROW
    if style == "heading":
        page.text(100, y + 2, f"{CURRENCY_WORD[language.code]}: {currency}")
        y += ROW
    if page.layout.breakdown == "table":
        _breakdown_table(page, document, y + ROW)


def _breakdown_table(page: _Page, document: dict[str, Any], y: float) -> None:
    language = page.layout.language
    xs = (100.0, 140.0, LEFT + TABLE_WIDTH - 2)
    page.font(9, bold=True)
    for x, heading in zip(xs, language.breakdown_header, strict=True):
        page.text(x, y, heading, right=x != xs[0])
    page.font(9)
    for rate in sorted(document["vat"], reverse=True):
        y += ROW
        values = (
            f"{rate_text(rate, language)} %",
            money(document["bases"][rate], language),
            money(document["vat"][rate], language),
        )
        for x, value in zip(xs, values, strict=True):
            page.text(x, y, value, right=x != xs[0])


def _footer(page: _Page, document: dict[str, Any]) -> None:
    seller, language = document["seller"], page.layout.language
    page.font(7)
    if page.layout.footer_columns:
        columns = (
            (seller["name"], seller["street"], seller["city"]),
            ("IBAN", document["iban"]),
            (language.vat_id, document["seller_vat_id"]),
        )
        for x, column in zip((LEFT, 80.0, 145.0), columns, strict=True):
            for offset, value in enumerate(column):
                page.text(x, 278 + offset * 3.5, value)
        return
    page.text(LEFT, 282, f"{seller['name']} · {seller['street']} · {seller['city']}")
    page.text(LEFT, 286, f"{language.vat_id} {document['seller_vat_id']} · IBAN {document['iban']}")


def generate(seed: int, count: int) -> list[GeneratedInvoice]:
    """`count` invoice PDFs, the same for the same seed (generated_invoices.py `plans`)."""
    return [
        GeneratedInvoice(plan.name, render(plan.document, plan.layout, plan.lines), plan.truth)
        for plan in plans(seed, count)
    ]


def render(document: dict[str, Any], layout: Layout, lines: list[Line]) -> bytes:
    page = _Page(layout, document["currency"])
    _head(page, document)
    _totals(page, document, _table(page, lines))
    _footer(page, document)
    if layout.page_note:
        pages = page.pdf.pages_count
        for number in range(1, pages + 1):
            page.pdf.page = number
            page.font(7)
            page.text(
                LEFT + TABLE_WIDTH,
                290,
                PAGE_WORD[layout.language.code].format(number, pages),
                right=True,
            )
    return bytes(page.pdf.output())
