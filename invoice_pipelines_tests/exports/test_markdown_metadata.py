"""Markdown tables in Dagster metadata: supplier text renders as text, never as an image, a link
or HTML (`invoice_pipelines.metadata.markdown_table`)."""

from __future__ import annotations

from datetime import date

from dagster import instance_for_test
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from invoice_pipelines.limits import MAX_TEXT_FIELD_CHARS
from invoice_pipelines.metadata import markdown_cell, markdown_table
from invoice_pipelines_tests.exports.books import DATEV, incoming
from invoice_pipelines_tests.exports.test_export_defs import _materializations, _run

HOSTILE = (
    "![x](http://evil.example/p.png) [click](http://evil.example) "
    "<img src=x onerror=alert(1)> <a href='http://evil.example'>a</a> "
    "<http://evil.example> www.evil.example boss@evil.example **bold** `code` &lt;b&gt; | x"
)

# a month that is over: exports book a month once it is over (closed months)
OVER = date(2026, 10, 5)


def _html(markdown: str) -> str:
    # CommonMark with GFM tables, as the Dagster UI renders metadata markdown
    return MarkdownIt("commonmark").enable("table").enable("strikethrough").render(markdown)


def _assert_inert(html: str) -> None:
    assert "<img" not in html
    assert "<a href" not in html and "<a " not in html
    assert "<strong>" not in html and "<em>" not in html and "<code>" not in html


def test_a_hostile_supplier_name_renders_as_text_in_the_export_metadata(db, tmp_path):
    org = db.new_organization(**DATEV)
    incoming(db.engine, org["id"], "R-1 " + HOSTILE[:60], seller=HOSTILE[:255], day=OVER)
    # an unknown VAT rate: skipped, its number in the table of reasons
    incoming(
        db.engine,
        org["id"],
        "[x](http://evil.example)",
        taxes=[("S", "3", "1.00", "0.03")],
        day=OVER,
    )
    with instance_for_test() as instance:
        result = _run(db, tmp_path, instance, org["slug"], partition_key=f"2026-10|{org['slug']}")
        metadata = next(iter(_materializations(result, "incoming_invoice_exports").values()))
    preview = metadata["preview"].value
    skipped = metadata["skipped_invoices"].value
    for markdown in (preview, skipped):
        html = _html(markdown)
        _assert_inert(html)
        assert "<table>" in html
    preview_html = _html(preview)
    # the name is still there to read, as text, and stays within its row and cell
    assert "![x](http://evil.example/p.png)" in preview_html.replace("&quot;", '"')
    assert preview_html.count("<tr>") == 2
    assert "[x](http://evil.example)" in _html(skipped)


def test_cells_escape_markdown_and_keep_the_row():
    table = markdown_table(
        ("invoice id", "name"),
        [(1, HOSTILE), (2, "line\nbreak\r| next"), (3, "x" * (MAX_TEXT_FIELD_CHARS + 10))],
        align="r",
        limit=2,
    )
    lines = table.split("\n")
    assert lines[:2] == ["| invoice id | name |", "|---:|---|"]
    assert len(lines) == 2 + 2 + 1 and lines[-1] == "| … | 1 more |"
    html = _html(table)
    _assert_inert(html)
    assert html.count("<tr>") == 4 and html.count("<td") == 6
    assert "<td>line break | next</td>" in html  # one cell, the bar shown as text
    assert "://" not in table and "www." not in table and "boss@" not in table
    assert markdown_cell(None) == "" and len(markdown_cell("y" * 5000)) == MAX_TEXT_FIELD_CHARS


_CHARS = st.one_of(
    st.sampled_from(list("\\`*_[]()!<>#|~&@:/.=-+ \t\r\n\x00\x1b\"'")),
    st.characters(codec="utf-8"),
)
_PIECES = st.sampled_from(
    ["http://", "https://", "www.", "<img src=x>", "](", "![", "&#60;", "\u202e"]
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.one_of(_CHARS, _PIECES), max_size=12).map("".join), min_size=1, max_size=4)
)
def test_fuzz_no_cell_becomes_markup(cells):
    table = markdown_table(("a", "b", "c", "d"), [cells])
    html = _html(table)
    _assert_inert(html)
    assert html.count("<tr>") == 2 and html.count("<td") == 4
    assert "://" not in table and "\n" not in table.split("\n", 2)[2]
