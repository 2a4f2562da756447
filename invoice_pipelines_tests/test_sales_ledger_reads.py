"""The sales ledger is read in one place: an area that reads a sales invoice with its customer or
with the invoice it corrects, or reads an invoice's lines or VAT breakdown, does so through
`invoice_pipelines/sales_ledger.py` (docs/architecture.md, "The sales ledger").

The check reads each area module's source (sales_ledger.py itself is not an area module):

- a comparison of two columns that links a sales invoice to its customer
  (`customers.c.id == sales_invoices.c.customer_id`) or to another sales invoice by
  `corrects_invoice_id` (the corrected invoice), whatever names the module gives the tables
  (`s, c = sales_invoices.c, customers.c`, `corrected = sales_invoices.alias("corrected")`), in a
  function or at module level, and the same join written in an SQL string
  (`JOIN customers c ON c.id = s.customer_id`), fails;
- a module that names `sales_invoice_lines` or `sales_invoice_taxes` fails, unless
  LINES_ALLOWED says why it may.

A failure lists each offence as `file:line what`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from invoice_pipelines_tests.test_import_graph import AREAS, PROJECT, ROOT

TABLES_MODULE = "invoice_pipelines.db.tables"
INVOICES, CUSTOMERS = "sales_invoices", "customers"
LINES_AND_TAXES = frozenset({"sales_invoice_lines", "sales_invoice_taxes"})
# Area modules that may name the lines' and VAT breakdown's tables themselves, each with why.
LINES_ALLOWED = {
    # billing writes the ledger: it inserts the lines and VAT rows of the invoices it makes
    "billing/domain/chunk_python.py": "writes the invoices' lines and VAT rows",
    # issuing a credit note reads the invoice's lines and VAT rows under the invoice's lock, in
    # the transaction that writes the credit note's
    "billing/domain/credit_notes.py": "reads what it credits in the transaction that writes the note",
    # the billing checks' queries compare what was written (lines, VAT rows, totals) with itself
    "billing/domain/check_queries.py": "checks the rows billing wrote against each other",
    # one export query per direction over either invoice table (incoming or sales), in the
    # export's snapshot, for every invoice of a month at once
    "exports/domain/reads.py": "the month's export reads both directions' lines and VAT rows alike",
    # the onboarding import writes the ledger: the lines and VAT rows of past invoices it brings in
    "history/domain/writing.py": "writes the imported invoices' lines and VAT rows",
}


def _area_modules() -> list[Path]:
    return sorted(
        path
        for area in AREAS
        for path in (ROOT / area).rglob("*.py")
        if "__pycache__" not in path.parts
    )


class _Tables:
    """Which names of one scope stand for which table of db/tables.py: the names imported from
    it, and names bound to a table, its `.c` or an alias of it."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = dict(names)

    def table(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr in ("c", "columns"):
            return self.table(node.value)
        if isinstance(node, ast.Attribute) and node.attr == "tables":
            return None
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "tables"
        ):
            return node.attr  # `from invoice_pipelines.db import tables`: tables.customers
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "alias"
        ):
            return self.table(node.func.value)
        return None

    def column(self, node: ast.AST) -> tuple[str, str] | None:
        """(table, column) of `t.c.column`, `t.column` (t a table's `.c`) or `t.c["column"]`."""
        if isinstance(node, ast.Attribute):
            table = self.table(node.value)
            return (table, node.attr) if table else None
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and isinstance(node.slice.value, str)
        ):
            table = self.table(node.value)
            return (table, node.slice.value) if table else None
        return None

    def bind(self, body: ast.AST) -> _Tables:
        """These names and those `body`'s assignments bind to a table (`s = sales_invoices.c`,
        `s, c = sales_invoices.c, customers.c`)."""
        scope = _Tables(self.names)
        for node in ast.walk(body):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                pairs = [(target, node.value)]
                if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    pairs = list(zip(target.elts, node.value.elts, strict=False))
                for name, value in pairs:
                    table = scope.table(value)
                    if isinstance(name, ast.Name) and table:
                        scope.names[name.id] = table
        return scope


def _imported_tables(tree: ast.Module) -> dict[str, str]:
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == TABLES_MODULE:
            names.update({alias.asname or alias.name: alias.name for alias in node.names})
    return names


def _ledger_join(pair: set[tuple[str, str]]) -> str | None:
    """What a comparison of the columns `pair` joins, when it is a read of the sales ledger."""
    if pair == {(CUSTOMERS, "id"), (INVOICES, "customer_id")}:
        return "joins a sales invoice to its customer"
    if pair == {(INVOICES, "id"), (INVOICES, "corrects_invoice_id")}:
        return "joins a credit note to the invoice it corrects"
    return None


def _column_joins(tree: ast.Module) -> list[tuple[int, str]]:
    module = _Tables(_imported_tables(tree)).bind(
        ast.Module(body=[n for n in tree.body if isinstance(n, ast.Assign)], type_ignores=[])
    )
    scopes = [(tree, module)] + [
        (node, module.bind(node))
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]
    found = set()
    for body, scope in scopes:
        for node in ast.walk(body):
            if not isinstance(node, ast.Compare) or len(node.ops) != 1:
                continue
            if not isinstance(node.ops[0], ast.Eq):
                continue
            left, right = scope.column(node.left), scope.column(node.comparators[0])
            what = _ledger_join({left, right}) if left and right else None
            if what:
                found.add((node.lineno, what))
    return sorted(found)


def _sql_aliases(table: str, sql: str) -> set[str]:
    """The names `sql` gives `table` (the table's own and `table [AS] alias`)."""
    if not re.search(rf"\b{table}\b", sql):
        return set()
    named = re.findall(rf"\b{table}\s+(?:AS\s+)?(?!ON\b|WHERE\b|JOIN\b)(\w+)", sql, re.I)
    return {table, *named}


def _sql_linked(sql: str, a: set[str], a_column: str, b: set[str], b_column: str) -> bool:
    return any(
        re.search(rf"\b{x}\.{a_column}\s*=\s*{y}\.{b_column}\b", sql, re.I)
        or re.search(rf"\b{y}\.{b_column}\s*=\s*{x}\.{a_column}\b", sql, re.I)
        for x in a
        for y in b
    )


def _sql_joins(tree: ast.Module) -> list[tuple[int, str]]:
    """The same joins written in SQL strings: `<customers alias>.id = <invoices alias>.customer_id`
    or `<invoices alias>.id = <invoices alias>.corrects_invoice_id` (either way round)."""
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        sql = node.value
        invoices, customers = _sql_aliases(INVOICES, sql), _sql_aliases(CUSTOMERS, sql)
        if _sql_linked(sql, customers, "id", invoices, "customer_id"):
            found.append((node.lineno, "joins a sales invoice to its customer (SQL)"))
        if _sql_linked(sql, invoices, "id", invoices, "corrects_invoice_id"):
            found.append((node.lineno, "joins a credit note to the invoice it corrects (SQL)"))
    return found


def _lines_and_taxes(tree: ast.Module) -> list[tuple[int, str]]:
    """The first line that names each of the lines' and VAT rows' tables."""
    imported = _imported_tables(tree)
    first: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and imported.get(node.id) in LINES_AND_TAXES:
            table = imported[node.id]
            first[table] = min(first.get(table, node.lineno), node.lineno)
    return sorted((line, f"reads {table} itself") for table, line in first.items())


def ledger_reads(source: str, *, lines_allowed: bool = False) -> list[tuple[int, str]]:
    """The reads of the sales ledger `source` makes without sales_ledger.py: (line, what)."""
    tree = ast.parse(source)
    found = _column_joins(tree) + _sql_joins(tree)
    if not lines_allowed:
        found += _lines_and_taxes(tree)
    return sorted(found)


def test_the_areas_read_the_sales_ledger_through_sales_ledger_py():
    offences = []
    for path in _area_modules():
        relative = path.relative_to(ROOT).as_posix()
        found = ledger_reads(path.read_text(), lines_allowed=relative in LINES_ALLOWED)
        offences += [f"{path.relative_to(PROJECT)}:{line} {what}" for line, what in found]
    assert not offences, (
        "read these through invoice_pipelines/sales_ledger.py (fields, joined, joined_to, "
        "read_invoices, read_credit_notes, read_lines, read_vat_breakdowns):\n"
        + "\n".join(offences)
    )


def test_lines_allowed_names_modules_that_exist_and_need_it():
    for relative in LINES_ALLOWED:
        path = ROOT / relative
        assert path.is_file(), f"LINES_ALLOWED names {relative}, which is gone: take it out"
        assert _lines_and_taxes(ast.parse(path.read_text())), (
            f"{relative} no longer names the lines' or VAT rows' tables: take it out of "
            "LINES_ALLOWED"
        )


# how the QuickBooks push read its credit notes before it read them through sales_ledger.py, and
# how the documents read their customers' formats: the check must see both
BEFORE = '''
from sqlalchemy import select
from invoice_pipelines.db.tables import customers, qbo_push_queue, sales_invoice_lines, sales_invoices


def _load(conn, wanted):
    corrected = sales_invoices.alias("corrected")
    rows = conn.execute(
        select(qbo_push_queue.c.id, sales_invoices, corrected.c.invoice_number)
        .join(sales_invoices, sales_invoices.c.id == qbo_push_queue.c.sales_invoice_id)
        .join(corrected, corrected.c.id == sales_invoices.c.corrects_invoice_id)
        .where(wanted)
    )
    lines = conn.execute(select(sales_invoice_lines))
    return rows, lines


def choose_formats(conn, ids):
    s, c = sales_invoices.c, customers.c
    return conn.execute(
        select(s.id, c.document_format).join(customers, c.id == s.customer_id).where(s.id.in_(ids))
    )


LETTER_SQL = """
SELECT n.id, c.name FROM dunning_notices n
JOIN sales_invoices AS si ON si.id = n.sales_invoice_id
JOIN customers c ON si.customer_id = c.id
"""
'''


def test_the_check_sees_a_read_that_bypasses_the_ledger():
    found = {what for _line, what in ledger_reads(BEFORE)}
    assert found == {
        "joins a credit note to the invoice it corrects",
        "joins a sales invoice to its customer",
        "joins a sales invoice to its customer (SQL)",
        "reads sales_invoice_lines itself",
    }


def test_the_check_lets_other_joins_through():
    # an order joined to its customer, a notice to its customer and invoice, a credit note found
    # by the id of the invoice it corrects: none of them reads the ledger's joins
    source = """
from sqlalchemy import exists, select
from invoice_pipelines.db.tables import customers, dunning_notices, sales_invoices, sales_orders


def orders(conn, invoice_id):
    n, si, c = dunning_notices, sales_invoices, customers
    conn.execute(
        select(sales_orders.c.id)
        .select_from(sales_orders.outerjoin(customers, customers.c.id == sales_orders.c.customer_id))
        .where(exists().where(c.c.id == n.c.customer_id, si.c.id == n.c.sales_invoice_id))
    )
    return select(si.c.id).where(si.c.corrects_invoice_id == invoice_id)


SQL = "LEFT JOIN sales_invoices inv ON inv.sales_order_id = so.id LEFT JOIN customers cu ON cu.id = so.customer_id"
"""
    assert ledger_reads(source) == []
