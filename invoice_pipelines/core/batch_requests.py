"""What a batch request the user must fix raises, and the request of billing's `customer_lines`
kind: its name and the check of its lines. Here, below the areas, because two areas queue it:
billing (the launchpad, `batch-invoice --customers`) and overdue (the fee and interest invoices
of dunning notices, `overdue/domain/fee_invoices.py`), and an area imports no other area."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from invoice_pipelines.core.batch_kinds import KindName
from invoice_pipelines.core.money import MoneyError, to_decimal

# the kind (billing/domain/invoicing_kinds.py builds it for the queue)
CUSTOMER_LINES = KindName.CUSTOMER_LINES


class BatchRequestError(ValueError):
    """A batch request the user must fix (unknown organization, bad date, empty order list...)."""


def _decimal_text(value: object, what: str) -> str:
    try:
        return str(to_decimal(value))
    except MoneyError as exc:
        raise BatchRequestError(f"{what}: {exc}") from exc


def normalize_customer_lines(customers: Sequence[Mapping[str, Any]]) -> list[dict]:
    """Validate a customer-driven request; amounts become decimal strings (exact in JSON)."""
    if not customers:
        raise BatchRequestError("no customers given")
    result = []
    for n, entry in enumerate(customers, start=1):
        where = f"customer entry {n}"
        customer_id = entry.get("customer_id")
        if not isinstance(customer_id, int) or isinstance(customer_id, bool) or customer_id <= 0:
            raise BatchRequestError(f"{where}: customer_id must be a positive integer")
        lines = entry.get("lines") or []
        if not lines:
            raise BatchRequestError(f"{where}: no lines")
        normalized = []
        for m, line in enumerate(lines, start=1):
            at = f"{where}, line {m}"
            item_id = line.get("item_id")
            line_type = line.get("line_type") or ("item" if item_id is not None else "charge")
            if line_type not in ("item", "discount", "charge"):
                raise BatchRequestError(f"{at}: line_type must be item, discount or charge")
            out: dict[str, Any] = {"line_type": line_type, "item_id": item_id}
            if item_id is not None and (not isinstance(item_id, int) or isinstance(item_id, bool)):
                raise BatchRequestError(f"{at}: item_id must be an integer")
            out["quantity"] = _decimal_text(line.get("quantity", 1), f"{at} quantity")
            for key in ("unit_price", "vat_rate"):
                if line.get(key) is not None:
                    out[key] = _decimal_text(line[key], f"{at} {key}")
            for key in ("description", "vat_category"):
                if line.get(key) is not None:
                    out[key] = str(line[key])
            if item_id is None:
                missing = [
                    k
                    for k in ("description", "unit_price", "vat_rate", "vat_category")
                    if k not in out
                ]
                if missing:
                    raise BatchRequestError(
                        f"{at}: a line without item_id needs {', '.join(missing)}"
                    )
            normalized.append(out)
        result.append({"customer_id": customer_id, "lines": normalized})
    return result
