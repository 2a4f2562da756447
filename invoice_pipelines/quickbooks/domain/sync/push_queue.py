"""The push queue a sales invoice, a credit note and a discount share on their way to QBO
(`qbo_push_queue`).

invoices.py pushes invoices, credit_memos.py credit notes and discounts.py the early-payment
discounts settled here through it; what they need is here: the queue as an outbox (PUSHES), when a
`sending` row is a dead run's, the deterministic request id built in SQL, the QBO body of one
document and how an existing QBO document is recognized as ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Select, String, and_, cast, literal, select

from invoice_pipelines import sales_ledger
from invoice_pipelines.db.tables import qbo_mappings, qbo_push_queue
from invoice_pipelines.outbox import Outbox

CENT = Decimal("0.01")
DOC_NUMBER_MAX = 21  # QBO's DocNumber length
# a row `sending` this long belongs to a run that is gone: longer than a batch can take with all
# its retries (6 attempts, 60 s timeouts, 60 s throttle waits). A run that holds the organization's
# lease does not wait: no other run can be sending then
SENDING_STALE_AFTER = timedelta(minutes=30)


def _failed_our_check(queue) -> object:
    """A row failed only by our own check: claimable again (what it missed may be synced now)."""
    return queue.c.error_code == "validation"


# the queue in the outbox's terms: success is `pushed`, and there is no unknown status: a row a
# dead run left `sending` stays so until `reconcile_unknown` has looked for it in QBO
PUSHES = Outbox(
    qbo_push_queue,
    error="error_message",
    key=("sales_invoice_id", "action"),
    sent="pushed",
    unknown=None,
    failed_again_when=_failed_our_check,
)


def request_id_sql(action: str):
    """'ip-<org>-si-<id>-<action>': deterministic per invoice and action, built in SQL (over the
    sales ledger's invoices, sales_ledger.py)."""
    return (
        literal("ip-")
        + cast(sales_ledger.field("organization_id"), String)
        + literal("-si-")
        + cast(sales_ledger.field("id"), String)
        + literal(f"-{action}")
    )


# what `build_invoice` and `same_invoice` read of an invoice or a credit note (sales_ledger.py)
PUSH_FIELDS = (
    "id",
    "invoice_number",
    "status",
    "customer_id",
    "issue_date",
    "due_date",
    "net_total",
    "tax_total",
    "gross_total",
)


def enqueueable(action: str):
    """SELECT of the queue row of `action` (organization, invoice, action, status, request id)
    of each invoice the reader's conditions name: the source of an INSERT ... SELECT."""
    return sales_ledger.select_invoices("organization_id", "id").add_columns(
        literal(action), literal("pending"), request_id_sql(action)
    )


QUEUE_COLUMNS = ["organization_id", "sales_invoice_id", "action", "status", "request_id"]


@dataclass
class Candidate:
    queue_id: int
    sales_invoice_id: int
    request_id: str
    invoice: dict  # PUSH_FIELDS of the invoice
    lines: list  # its sales_invoice_lines rows, in line order


def rate_key(rate: Decimal) -> str:
    """A VAT rate as the connection's `tax_codes` name it: "19.00"."""
    return format(Decimal(rate).quantize(CENT), "f")


def build_invoice(
    candidate: Candidate,
    customers: dict,
    items: dict,
    settings: dict,
    *,
    document: str = "invoice",
) -> tuple[dict | None, str | None]:
    """The QBO Invoice body, or the one sentence that says why it cannot be pushed. A credit note
    (`document="credit note"`) is mapped the same way: its CreditMemo is this body reshaped
    (credit_memos.py)."""
    invoice = candidate.invoice
    number = invoice["invoice_number"]
    if invoice["status"] == "cancelled":
        return None, f"the {document} was cancelled before it reached QuickBooks"
    if len(number) > DOC_NUMBER_MAX:
        return None, f"{document} number {number} is longer than QBO's {DOC_NUMBER_MAX} characters"
    customer = customers.get(invoice["customer_id"])
    if customer is None or customer["qbo_state"] != "active":
        return None, f"customer {invoice['customer_id']} is not synced to QuickBooks yet"
    if not candidate.lines:
        return None, f"the {document} has no lines"
    tax_codes = {str(k): str(v) for k, v in (settings.get("tax_codes") or {}).items()}
    default_item = settings.get("default_item_id")
    lines = []
    net = Decimal("0")
    for line in candidate.lines:
        rate = rate_key(line["vat_rate"])
        code = tax_codes.get(rate)
        if code is None:
            return (
                None,
                f"no QuickBooks tax code is mapped for VAT {rate} % (line {line['line_no']})",
            )
        mapped = items.get(line["item_id"]) if line["item_id"] is not None else None
        if mapped is not None:
            item_ref = mapped["qbo_id"]
        elif line["item_id"] is None and default_item:
            item_ref = str(default_item)
        elif line["item_id"] is None:
            return None, (
                f"line {line['line_no']} has no item and no default QuickBooks item is set "
                "(the connection's default_item_id)"
            )
        else:
            return None, f"item of line {line['line_no']} is not synced to QuickBooks yet"
        amount = Decimal(line["net_amount"]).quantize(CENT)
        net += amount
        lines.append(
            {
                "LineNum": line["line_no"],
                "Amount": amount,
                "Description": line["description"][:4000],
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": item_ref},
                    "Qty": Decimal(line["quantity"]).normalize(),
                    "UnitPrice": Decimal(line["unit_price"]).normalize(),
                    "TaxCodeRef": {"value": code},
                },
            }
        )
    if net != Decimal(invoice["net_total"]).quantize(CENT):
        return (
            None,
            f"lines add up to {net} but the {document}'s net total is {invoice['net_total']}",
        )
    if Decimal(invoice["net_total"]) + Decimal(invoice["tax_total"]) != Decimal(
        invoice["gross_total"]
    ):
        return None, "net total plus VAT is not the gross total"
    body = {
        "DocNumber": number,
        "TxnDate": invoice["issue_date"].isoformat(),
        "DueDate": invoice["due_date"].isoformat(),
        "CustomerRef": {"value": customer["qbo_id"]},
        "Line": lines,
        # our VAT as computed on our invoice: QBO's TotalAmt is then our gross total
        "TxnTaxDetail": {"TotalTax": Decimal(invoice["tax_total"]).quantize(CENT)},
        "PrivateNote": f"invoice-pipelines sales invoice {invoice['id']}",
    }
    return body, None


def same_invoice(record: dict, invoice: dict, customer_qbo_id: str) -> bool:
    """An existing QBO invoice with our DocNumber is ours when customer and total agree."""
    if str((record.get("CustomerRef") or {}).get("value")) != str(customer_qbo_id):
        return False
    total = Decimal(str(record.get("TotalAmt", "0")))
    tax = Decimal(str((record.get("TxnTaxDetail") or {}).get("TotalTax", "0") or "0"))
    # QBO's total includes the tax it computed; a company without tax computation has net only
    return total == Decimal(invoice["gross_total"]) or (
        tax == 0 and total == Decimal(invoice["net_total"])
    )


def rows_with_memo_mappings(
    organization_id: int, fields: tuple[str, ...], invoice_local_id, memo_local_id
) -> Select:
    """The organization's push queue rows (queue_id, action, request_id) with the sales ledger's
    `fields` of their invoices and the QuickBooks ids of two mappings, each joined outer: the
    invoice's (`invoice_qbo_id`, `invoice_state`; `invoice_local_id`: which invoice, e.g. the one a
    credit note corrects) and the credit memo's (`memo_qbo_id`; `memo_local_id`). The caller adds
    its conditions and order."""
    q = qbo_push_queue.c
    invoice_map = qbo_mappings.alias("invoice_map")
    memo_map = qbo_mappings.alias("memo_map")

    def mapped(mapping, entity: str, local_id):
        return and_(
            mapping.c.organization_id == organization_id,
            mapping.c.entity == entity,
            mapping.c.local_id == local_id,
        )

    source = sales_ledger.joined_to(qbo_push_queue, q.sales_invoice_id, *fields)
    return (
        select(
            q.id.label("queue_id"),
            q.action,
            q.request_id,
            *sales_ledger.fields(*fields),
            invoice_map.c.qbo_id.label("invoice_qbo_id"),
            invoice_map.c.qbo_state.label("invoice_state"),
            memo_map.c.qbo_id.label("memo_qbo_id"),
        )
        .select_from(
            source.outerjoin(
                invoice_map, mapped(invoice_map, "invoice", invoice_local_id)
            ).outerjoin(memo_map, mapped(memo_map, "credit_memo", memo_local_id))
        )
        .where(q.organization_id == organization_id)
    )
