"""A customer's own early-payment discount steps (Skonto, issue 40): `customers.skonto`.

NULL follows the organization's `settings["skonto"]`; a list of steps (possibly empty: no
discount for this customer) overrides it. The documents state them and the payment pull settles
by them (`core.skonto.customer_terms`). Set through `set_customer_skonto` (the `customer-skonto`
command), which refuses steps that cannot be in one sentence and records the change in the audit
log.
"""

from __future__ import annotations

from sqlalchemy import Engine, update

from invoice_pipelines.core.skonto import steps_from_text
from invoice_pipelines.db.audit_log import record_audit_entries
from invoice_pipelines.db.tables import customers
from invoice_pipelines.db.tenancy import tenant_transaction

DEFAULT = "default"


class UnknownCustomer(ValueError):
    """No customer of that number in the organization."""


def set_customer_skonto(
    engine: Engine, organization_id: int, customer_number: str, steps: str, *, requested_by: str
) -> list | None:
    """Give a customer its own discount steps ("10:2,20:1", "none") or return it to the
    organization's default ("default"). Returns what is stored (None: the default). SkontoError
    for steps that cannot be, UnknownCustomer for a number the organization does not have."""
    value = None if steps.strip().lower() == DEFAULT else steps_from_text(steps)
    with tenant_transaction(engine, organization_id, write=True) as conn:
        found = conn.execute(
            update(customers)
            .where(
                customers.c.organization_id == organization_id,
                customers.c.customer_number == customer_number,
            )
            .values(skonto=value)
            .returning(customers.c.id)
        ).scalar()
        if found is None:
            raise UnknownCustomer(f"there is no customer {customer_number!r} in this organization")
        details = {"customer_number": customer_number, "skonto": value}
        record_audit_entries(
            conn, organization_id, requested_by, "customer.skonto", "customer", [found], details
        )
    return value
