"""The actions of the changes a person makes to an organization's supplier register: `register`
a new supplier, `change` one, `confirm` one its first invoice registered, and `in_register`,
which each of them (and the commands' other changes: the policy, learning the history) is. Each
takes the work's parts (`RegisterParts`: the runtime engine and the `report` of whoever asked),
the `Organization` and the request; it makes the change in the organization's write
transaction, audited by supplier_register.py, tells the UI the register as it is now (figures.py
`register_events`), and returns what the register gave, or raises `Refused` with the register's
sentence. The launchpad's ops (intake/jobs.py) and `invoice-pipelines suppliers`
(intake/commands/supplier_commands.py) are adapters over them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tenancy import UnknownOrganization, tenant_transaction
from invoice_pipelines.intake.domain.figures import register_events
from invoice_pipelines.lib.read_only import Refused, writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import Report
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    add_supplier,
    change_supplier,
    confirm_supplier,
)

Done = TypeVar("Done")


@dataclass(frozen=True)
class RegisterParts:
    """What a change of the register works with: the runtime engine, whoever asked."""

    engine: Engine
    report: Report


@dataclass(frozen=True)
class Who:
    """Who makes a change and why (both audited with it), and what the UI says changed it."""

    by: str
    reason: str
    told_as: str  # e.g. "suppliers add by anna", "change_supplier_register_job by anna"


@dataclass(frozen=True)
class NewSupplier:
    """A supplier a person registers: its name and what else they know of it (supplier_register.py
    `add_supplier`'s values, by their names)."""

    name: str
    vat_id: str | None = None
    tax_number: str | None = None
    ibans: Sequence[tuple[str, str | None]] = ()
    notice_email: str | None = None
    qbo_vendor_id: str | None = None
    datev_creditor_account: int | None = None
    despite_lookalike: bool = False


def in_register(
    parts: RegisterParts,
    org: Organization,
    work: Callable[[Connection, int], Done],
    *,
    told_as: str,
) -> Done:
    """`work(conn, organization_id)` in the organization's write transaction: what it gave. An
    offboarded organization, a change the register refuses, an organization gone: `Refused`,
    nothing written. Then the register as it is now, told as `told_as`."""
    writable(org)
    try:
        with tenant_transaction(parts.engine, org, write=True) as conn:
            done = work(conn, org.id)
    except (RegisterError, UnknownOrganization) as exc:
        raise Refused([str(exc)]) from None
    parts.report.changed(register_events(parts.engine, org, told_as))
    return done


def register(parts: RegisterParts, org: Organization, new: NewSupplier, who: Who) -> int:
    """Register a new supplier a person vouches for; its id."""
    return in_register(
        parts,
        org,
        lambda conn, organization_id: add_supplier(
            conn, organization_id, **asdict(new), changed_by=who.by, reason=who.reason
        ),
        told_as=who.told_as,
    )


def change(
    parts: RegisterParts,
    org: Organization,
    supplier_id: int,
    values: Change,
    who: Who,
    *,
    expected_version: int | None = None,
) -> dict:
    """Change one supplier (refused if it changed since `expected_version`); its values after."""
    return in_register(
        parts,
        org,
        lambda conn, organization_id: change_supplier(
            conn,
            organization_id,
            supplier_id,
            values,
            changed_by=who.by,
            reason=who.reason,
            expected_version=expected_version,
        ),
        told_as=who.told_as,
    )


def confirm(
    parts: RegisterParts,
    org: Organization,
    supplier_id: int,
    who: Who,
    *,
    expected_version: int | None,
    despite_lookalike: bool = False,
) -> dict:
    """A person vouches for a supplier its first invoice registered; its values after."""
    return in_register(
        parts,
        org,
        lambda conn, organization_id: confirm_supplier(
            conn,
            organization_id,
            supplier_id,
            changed_by=who.by,
            reason=who.reason,
            expected_version=expected_version,
            despite_lookalike=despite_lookalike,
        ),
        told_as=who.told_as,
    )
