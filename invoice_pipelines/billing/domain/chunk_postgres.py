"""One chunk of a sales-order batch job on PostgreSQL: a handful of set-based statements, NUMERIC math."""

# The chunk's orders and their lines are read once into two temporary tables; every later
# statement works from those: classification and sequence numbers, VAT breakdowns, invoices, lines,
# breakdown rows, orders marked invoiced, stock taken, each item's outcome. Amounts follow
# `core/totals.py`: round(quantity * unit_price, 2) per line, round(basis * rate / 100, 2) per
# (category, rate). PostgreSQL's round() on NUMERIC rounds half away from zero (= ROUND_HALF_UP).

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import Connection

from invoice_pipelines.billing.domain.contract import (
    ITEM_MESSAGES,
    SKIP_CODES,
    ChunkContext,
    ChunkOutcome,
)
from invoice_pipelines.core.totals import CHARGED_VAT_CATEGORIES, ZERO_VAT_CATEGORIES
from invoice_pipelines.queue.domain.item_rows import record_items_from


def _sql_list(values: frozenset[str] | dict) -> str:
    return ", ".join(f"'{v}'" for v in sorted(values))


VALID_VAT = (
    f"(vat_rate >= 0 AND ((vat_category IN ({_sql_list(ZERO_VAT_CATEGORIES)}) AND vat_rate = 0) "
    f"OR (vat_category IN ({_sql_list(CHARGED_VAT_CATEGORIES)}) AND vat_rate > 0)))"
)
SKIPS = _sql_list(SKIP_CODES)

# ON COMMIT DELETE ROWS: empty at the start of every chunk; created once per connection. No
# indexes: every statement reads them whole (hash joins), and each index would be maintained on
# every insert and update of the chunk.
CREATE_TEMP_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS billing_chunk (
    item_id bigint NOT NULL,
    position integer NOT NULL,
    sales_order_id bigint,
    customer_id bigint,
    currency varchar(3),
    code text,
    detail text,
    seq integer,
    invoice_id bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS billing_lines (
    sales_order_id bigint NOT NULL,
    line_no integer NOT NULL,
    line_type varchar(16) NOT NULL,
    item_id bigint,
    description varchar(512) NOT NULL,
    quantity numeric(18, 4) NOT NULL,
    unit_price numeric(18, 4) NOT NULL,
    net_amount numeric(18, 2) NOT NULL,
    vat_rate numeric(5, 2) NOT NULL,
    vat_category varchar(2) NOT NULL,
    item_found boolean NOT NULL,
    item_active boolean,
    item_sku varchar(64),
    is_stock_item boolean
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS billing_tax (
    sales_order_id bigint NOT NULL,
    vat_category varchar(2) NOT NULL,
    vat_rate numeric(5, 2) NOT NULL,
    basis numeric(18, 2) NOT NULL,
    amount numeric(18, 2) NOT NULL
) ON COMMIT DELETE ROWS;
"""

# Order-level checks, in the eligibility order chunk_python._order_problem follows. Each order is
# looked up by primary key alone in a LATERAL ... OFFSET 0 subquery, planned on its own, and its
# organization checked afterwards: with "id and organization" in the lookup, statistics from before
# a new tenant's bulk load (one row for that organization) made the planner walk the organization
# index for every item, 17-48 s for a 5,000-order chunk instead of 20 ms.
TAKE_ORDERS = """
INSERT INTO billing_chunk (item_id, position, sales_order_id, customer_id, currency, code, detail, invoice_id)
SELECT bi.id, bi.position, coalesce(so.id, bi.sales_order_id), so.customer_id, so.currency,
    CASE
        WHEN so.id IS NULL OR so.organization_id <> :org THEN 'unknown_order'
        WHEN so.status = 'invoiced' OR inv.id IS NOT NULL THEN 'already_invoiced'
        WHEN so.status NOT IN ('reviewed', 'pending') THEN 'wrong_status'
        WHEN cu.id IS NULL OR cu.organization_id <> :org THEN 'unknown_customer'
        WHEN NOT cu.active THEN 'inactive_customer'
    END,
    CASE
        WHEN so.id IS NULL OR so.organization_id <> :org
            THEN coalesce(bi.payload ->> 'sales_order_id', bi.sales_order_id::text)
        WHEN so.status = 'invoiced' OR inv.id IS NOT NULL THEN NULL
        WHEN so.status NOT IN ('reviewed', 'pending') THEN so.status
        WHEN cu.id IS NULL OR cu.organization_id <> :org THEN so.customer_id::text
        WHEN NOT cu.active THEN cu.customer_number
    END,
    inv.id  -- an already invoiced order's invoice; eligible orders get theirs in ALLOCATE_IDS
FROM (
    -- a window of positions on the (batch_job_id, position) index; OFFSET 0 keeps the status
    -- test outside, so stale statistics cannot send the planner to the status index instead
    SELECT * FROM (
        SELECT id, position, sales_order_id, payload, status FROM batch_job_items
        WHERE batch_job_id = :job AND position > :after AND position <= :up_to
        OFFSET 0
    ) AS w
    WHERE status = 'pending'
) AS bi
LEFT JOIN LATERAL (
    SELECT id, organization_id, customer_id, currency, status FROM sales_orders
    WHERE id = bi.sales_order_id OFFSET 0
) AS so ON true
LEFT JOIN sales_invoices inv ON inv.sales_order_id = so.id
LEFT JOIN customers cu ON cu.id = so.customer_id
"""

# LATERAL ... OFFSET 0 (not flattened into a join) keeps these lookups on the indexes whatever the
# statistics say: right after a bulk load they still describe an empty table, and the planner
# would otherwise scan every line of the organization for each chunk.
TAKE_LINES = """
INSERT INTO billing_lines
SELECT l.sales_order_id, l.line_no, l.line_type, l.item_id, l.description, l.quantity, l.unit_price,
       round(l.quantity * l.unit_price, 2), l.vat_rate, l.vat_category,
       i.id IS NOT NULL AND i.organization_id = :org, i.active, i.sku, i.is_stock_item
FROM billing_chunk b
CROSS JOIN LATERAL (
    SELECT * FROM sales_order_lines WHERE sales_order_id = b.sales_order_id OFFSET 0
) AS l
LEFT JOIN LATERAL (
    SELECT id, organization_id, active, sku, is_stock_item FROM items WHERE id = l.item_id OFFSET 0
) AS i ON true
WHERE b.code IS NULL
"""

# Line-level checks, then each eligible order's rank in position order (1, 2, ...): its invoice
# number is the chunk's start value + rank, known once the sequence (or the chain of chunks in
# flight, `chunks_in_flight.py`) says where this chunk starts.
CLASSIFY = f"""
UPDATE billing_chunk b SET code = x.code, detail = x.detail, seq = x.seq
FROM (
    SELECT c.item_id, c.code, c.detail,
           CASE WHEN c.code IS NULL
                THEN count(*) FILTER (WHERE c.code IS NULL) OVER (ORDER BY c.position)
           END AS seq
    FROM (
        SELECT b.item_id, b.position,
            CASE
                WHEN b.code IS NOT NULL THEN b.code
                WHEN a.sales_order_id IS NULL THEN 'no_lines'
                WHEN a.unknown_item IS NOT NULL THEN 'unknown_item'
                WHEN a.inactive_item IS NOT NULL THEN 'inactive_item'
                WHEN a.bad_vat IS NOT NULL THEN 'invalid_vat'
            END AS code,
            CASE
                WHEN b.code IS NOT NULL THEN b.detail
                WHEN a.sales_order_id IS NULL THEN NULL
                WHEN a.unknown_item IS NOT NULL THEN a.unknown_item::text
                WHEN a.inactive_item IS NOT NULL THEN a.inactive_item
                ELSE a.bad_vat
            END AS detail
        FROM billing_chunk b
        LEFT JOIN (
            SELECT sales_order_id,
                   min(item_id) FILTER (WHERE item_id IS NOT NULL AND NOT item_found) AS unknown_item,
                   min(item_sku) FILTER (WHERE item_found AND NOT item_active) AS inactive_item,
                   min(vat_category || ' ' || vat_rate::text) FILTER (WHERE NOT {VALID_VAT}) AS bad_vat
            FROM billing_lines
            GROUP BY sales_order_id
        ) AS a ON a.sales_order_id = b.sales_order_id
    ) AS c
) AS x
WHERE b.item_id = x.item_id
"""

TAXES = """
INSERT INTO billing_tax (sales_order_id, vat_category, vat_rate, basis, amount)
SELECT l.sales_order_id, l.vat_category, l.vat_rate, sum(l.net_amount), round(sum(l.net_amount) * l.vat_rate / 100, 2)
FROM billing_lines l
JOIN billing_chunk b ON b.sales_order_id = l.sales_order_id AND b.code IS NULL
GROUP BY l.sales_order_id, l.vat_category, l.vat_rate
"""

# Invoice ids are drawn in rank order, so within a chunk ids follow the numbers (nextval() is never
# rolled back: a rolled back chunk skips ids, which carry no meaning; numbers never skip). The
# sequence is looked up once, in a scalar subquery (an InitPlan): as a plain argument,
# pg_get_serial_sequence() searched the catalog again for every id drawn, 11-17 ms of backend CPU
# per 1,000 ids against 0.5 for the nextval() calls themselves (issue 59).
ALLOCATE_IDS = """
UPDATE billing_chunk b SET invoice_id = ids.id
FROM (
    SELECT id, row_number() OVER (ORDER BY id) AS rank
    FROM (SELECT nextval((SELECT pg_get_serial_sequence('sales_invoices', 'id')::regclass)) AS id
          FROM generate_series(1, :n)) AS g
) AS ids
WHERE b.seq = ids.rank
"""

# lpad() would cut a counter longer than the width; greatest() keeps every digit, like format()
INVOICES = """
WITH totals AS (
    SELECT sales_order_id, sum(basis) AS net, sum(amount) AS tax FROM billing_tax GROUP BY sales_order_id
)
INSERT INTO sales_invoices (
    id, organization_id, invoice_number, sequence_number, sales_order_id, customer_id, batch_job_id,
    issue_date, due_date, currency, net_total, tax_total, gross_total, amount_due,
    created_by, created_at, updated_at
)
SELECT b.invoice_id, :org,
       :prefix || lpad((:start + b.seq)::text, greatest(:width, length((:start + b.seq)::text)), '0') || :suffix,
       :start + b.seq, b.sales_order_id, b.customer_id, :job,
       :issue_date, :due_date, b.currency, t.net, t.tax, t.net + t.tax, t.net + t.tax,
       :created_by, :now, :now
FROM billing_chunk b
JOIN totals t ON t.sales_order_id = b.sales_order_id
WHERE b.code IS NULL
ORDER BY b.seq
"""

# The chunk's items stay as they were checked until the chunk commits (invoice lines refer to them
# without a foreign key): one lock per item, not one per line.
HOLD_ITEMS = """
SELECT id FROM items
WHERE id = ANY(ARRAY(SELECT DISTINCT l.item_id FROM billing_lines l
                     JOIN billing_chunk b ON b.sales_order_id = l.sales_order_id
                     WHERE b.code IS NULL AND l.item_id IS NOT NULL))
ORDER BY id
FOR KEY SHARE
"""

LINES = """
INSERT INTO sales_invoice_lines (
    organization_id, sales_invoice_id, line_no, line_type, item_id, description,
    quantity, unit_price, net_amount, vat_rate, vat_category
)
SELECT :org, b.invoice_id, l.line_no, l.line_type, l.item_id, l.description,
       l.quantity, l.unit_price, l.net_amount, l.vat_rate, l.vat_category
FROM billing_chunk b
JOIN billing_lines l ON l.sales_order_id = b.sales_order_id
WHERE b.code IS NULL
ORDER BY b.invoice_id, l.line_no
"""

BREAKDOWNS = """
INSERT INTO sales_invoice_taxes (organization_id, sales_invoice_id, vat_category, vat_rate, basis, amount)
SELECT :org, b.invoice_id, t.vat_category, t.vat_rate, t.basis, t.amount
FROM billing_tax t
JOIN billing_chunk b ON b.sales_order_id = t.sales_order_id
WHERE b.code IS NULL
ORDER BY b.invoice_id, t.vat_category, t.vat_rate
"""

# `id = ANY(ARRAY(...))` finds the chunk's orders by primary key whatever the statistics say; as a
# join, the planner chose to scan every order of every tenant per chunk once it believed the
# table small (a cost model that expects each index lookup to read from disk).
MARK_ORDERS = """
UPDATE sales_orders SET status = 'invoiced', invoiced_at = :now, updated_at = :now
WHERE id = ANY(ARRAY(SELECT sales_order_id FROM billing_chunk WHERE code IS NULL))
"""

TAKE_STOCK = """
UPDATE items i SET inventory_quantity = i.inventory_quantity - s.quantity, updated_at = :now
FROM (
    SELECT l.item_id, sum(l.quantity) AS quantity
    FROM billing_lines l
    JOIN billing_chunk b ON b.sales_order_id = l.sales_order_id
    WHERE b.code IS NULL AND l.line_type = 'item' AND l.is_stock_item
    GROUP BY l.item_id
) AS s
WHERE i.id = s.item_id
  AND i.id = ANY(ARRAY(SELECT item_id FROM billing_lines WHERE is_stock_item AND item_id IS NOT NULL))
"""


def _messages_values() -> str:
    # the texts chunk_python uses too, with {detail} filled in by SQL
    return ", ".join(
        f"('{code}', '{message.replace(chr(39), chr(39) * 2)}')"
        for code, message in ITEM_MESSAGES.items()
    )


# each item's outcome, for queue.item_rows.record_items_from (one UPDATE for the chunk)
ITEM_OUTCOMES = f"""
SELECT b.item_id,
       CASE WHEN b.code IS NULL THEN 'succeeded' WHEN b.code IN ({SKIPS}) THEN 'skipped' ELSE 'failed' END AS status,
       b.code AS error_code,
       replace(m.message, '{{detail}}', coalesce(b.detail, '')) AS error_message,
       CASE WHEN b.code IS NULL OR b.code IN ({SKIPS}) THEN b.invoice_id END AS sales_invoice_id
FROM billing_chunk b
LEFT JOIN (VALUES {_messages_values()}) AS m(code, message) ON m.code = b.code
"""

COUNTS = f"""
SELECT count(*) AS processed,
       count(*) FILTER (WHERE code IS NULL) AS succeeded,
       count(*) FILTER (WHERE code IN ({SKIPS})) AS skipped
FROM billing_chunk
"""

ERRORS = f"""
SELECT b.position, b.sales_order_id, b.customer_id, b.code,
       replace(m.message, '{{detail}}', coalesce(b.detail, '')) AS message
FROM billing_chunk b
JOIN (VALUES {_messages_values()}) AS m(code, message) ON m.code = b.code
WHERE b.code NOT IN ({SKIPS})
ORDER BY b.position
LIMIT :room
"""


class ItemsTakenElsewhere(RuntimeError):
    """A chunk's items were recorded by another runner of the job meanwhile; roll the chunk back."""


@dataclass(frozen=True)
class ChunkCounts:
    processed: int
    succeeded: int
    skipped: int


def _params(ctx: ChunkContext) -> dict:
    prefix, width, suffix = ctx.number_format.split(ctx.issue_date)
    return {
        "org": ctx.organization_id,
        "job": ctx.job_id,
        "after": ctx.after_position,
        # the window's end as one value: psycopg 3 binds a small Python int as smallint, and
        # `:after + :limit` then overflows past position 32767
        "up_to": ctx.after_position + ctx.limit,
        "start": ctx.last_value,
        "prefix": prefix,
        "width": width,
        "suffix": suffix,
        "issue_date": ctx.issue_date,
        "due_date": ctx.due_date,
        "created_by": ctx.created_by,
        "now": ctx.now,
        "room": ctx.error_room,
    }


def prepare_chunk(conn: Connection, ctx: ChunkContext) -> ChunkCounts:
    """Read the chunk's items, orders and lines and decide each item's outcome; writes nothing shared.

    Takes no row locks: preparing a chunk never waits for another transaction.
    """
    params = _params(ctx)
    # JIT compiles each statement for 100-200 ms because stale statistics make their cost look
    # huge; these statements touch a few thousand rows each and finish faster without it
    conn.exec_driver_sql("SET LOCAL jit = off")
    conn.exec_driver_sql(CREATE_TEMP_TABLES)
    conn.execute(text(TAKE_ORDERS), params)
    conn.execute(text(TAKE_LINES), params)
    # From here to the end of the transaction every join is between the chunk's temporary tables,
    # which the planner knows nothing about: it guesses that few rows match `code IS NULL` (the
    # filter of most statements) and would join row by row, rescanning a temporary table per row
    # (TAKE_STOCK took 1.5 s per chunk that way). Hash joins read each table once. Shared tables
    # are reached by key (`= ANY(ARRAY(...))`, the job's position window), never by a join. (An
    # ANALYZE of the temporary tables gave the same plans and cost 7 % of the chunk.)
    conn.exec_driver_sql("SET LOCAL enable_nestloop = off")
    conn.execute(text(CLASSIFY), params)
    counts = conn.execute(text(COUNTS)).one()
    return ChunkCounts(counts.processed, counts.succeeded, counts.skipped)


def allocate_invoice_ids(conn: Connection, counts: ChunkCounts) -> None:
    if counts.succeeded:
        conn.execute(text(ALLOCATE_IDS), {"n": counts.succeeded})


def write_chunk(conn: Connection, ctx: ChunkContext, counts: ChunkCounts) -> ChunkOutcome:
    """Write a prepared chunk: invoices numbered last_value + 1, + 2, ..., orders marked, items recorded.

    Stock is taken separately (`take_stock`) under the sequence lock: two chunks in flight would
    otherwise lock the same item rows in different orders.
    """
    if counts.processed == 0:
        return ChunkOutcome()  # this window was done before (a resumed or concurrent run)
    params = _params(ctx)
    if counts.succeeded:
        for statement in (TAXES, HOLD_ITEMS, INVOICES, LINES, BREAKDOWNS, MARK_ORDERS):
            conn.execute(text(statement), params)
    recorded = record_items_from(conn, ITEM_OUTCOMES, params)
    if recorded != counts.processed:
        # another runner of the job recorded some of these items since this chunk read them
        raise ItemsTakenElsewhere(
            f"batch job {ctx.job_id}: {counts.processed - recorded} of the chunk's items after "
            f"position {ctx.after_position} were recorded by another runner"
        )
    errors = (
        [dict(r._mapping) for r in conn.execute(text(ERRORS), params)] if ctx.error_room else []
    )
    return ChunkOutcome(
        processed=counts.processed,
        succeeded=counts.succeeded,
        skipped=counts.skipped,
        failed=counts.processed - counts.succeeded - counts.skipped,
        errors=errors,
    )


def take_stock(conn: Connection, ctx: ChunkContext) -> None:
    """Take the written chunk's stock items out of inventory (the caller holds the sequence lock)."""
    conn.execute(text(TAKE_STOCK), {"now": ctx.now})


def invoice_sales_orders(conn: Connection, ctx: ChunkContext) -> ChunkOutcome:
    """Invoice the job's next pending sales orders; the caller holds the sequence lock."""
    counts = prepare_chunk(conn, ctx)
    allocate_invoice_ids(conn, counts)
    outcome = write_chunk(conn, ctx, counts)
    if outcome.succeeded:
        take_stock(conn, ctx)
    return outcome
