"""The supplier register in the Dagster UI: the `supplier_register` asset (one partition per
organization) with its checks, and `change_supplier_register_job`, a person's change from the
launchpad (audited, as the `suppliers` command's).

The asset is materialized by hand (Materialize on a partition), by every launchpad change of the
organization's register and by every intake run that registered a supplier under the
first-invoice policy; each materialization lists the register and its latest changes, and its
checks say what a person should look at:

- `suppliers_told_apart` (WARN): no two active suppliers share a name by what a person sees (the
  confusables skeleton); two such are one supplier registered twice or a look-alike.
- `booked_documents_from_registered_suppliers` (WARN): the VALIDATED documents (not exported yet)
  whose seller the register does not agree with (from before the register, or a supplier changed
  since); their bills wait until a person registers or confirms the supplier.
"""

from collections import defaultdict

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetMaterialization,
    Config,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    asset,
    in_process_executor,
    job,
    op,
)
from pydantic import Field
from sqlalchemy import select

from invoice_pipelines.catalog import OWNERS
from invoice_pipelines.core.lifecycle import Status
from invoice_pipelines.core.suppliers import Claim, compare, name_skeleton
from invoice_pipelines.db.tables import incoming_invoices
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.metadata import markdown_table
from invoice_pipelines.resources.database import Database
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    add_supplier,
    change_supplier,
    load_register,
    own_party,
    register_counts,
    supplier_policy,
    supplier_rows,
)
from invoice_pipelines.tenants.partitions import organizations_partitions
from invoice_pipelines.tenants.refusals import organization_or_refuse, refused

SUPPLIER_REGISTER = "supplier_register"
TABLE_ROWS = 50

told_apart_spec = AssetCheckSpec(
    "suppliers_told_apart",
    asset=SUPPLIER_REGISTER,
    description="No two active suppliers of the register share a name by what a person sees "
    "(confusables skeleton). WARN with the pairs: one supplier registered twice, or a look-alike.",
)
registered_spec = AssetCheckSpec(
    "booked_documents_from_registered_suppliers",
    asset=SUPPLIER_REGISTER,
    description="Every VALIDATED document not exported yet comes from a supplier the register "
    "agrees with. WARN with those that do not (their QuickBooks bills wait): register or confirm "
    "the supplier (invoice-pipelines suppliers add / change).",
)


def _iban_shown(iban: str) -> str:
    return f"{iban[:4]} … {iban[-4:]}" if len(iban) > 8 else iban


def register_metadata(conn, organization_id: int) -> dict:
    """What the UI shows of one organization's register: counts, the policy, the suppliers."""
    rows = supplier_rows(conn, organization_id, active_only=True)
    table = markdown_table(
        ["id", "name", "VAT id", "IBANs", "notice address", "QBO vendor", "DATEV", "origin"],
        [
            (
                r["id"],
                r["name"],
                r["vat_id"] or "-",
                ", ".join(_iban_shown(a["iban"]) for a in r["bank_accounts"]) or "-",
                r["notice_email"] or "-",
                r["qbo_vendor_id"] or "-",
                r["datev_creditor_account"] or "-",
                r["origin"],
            )
            for r in rows
        ],
        limit=TABLE_ROWS,
    )
    counts = register_counts(conn, organization_id)
    return {
        **{key.replace(" ", "_"): MetadataValue.int(value) for key, value in counts.items()},
        "policy": MetadataValue.text(supplier_policy(conn, organization_id)),
        "suppliers_table": MetadataValue.md(table),
    }


def _look_alikes(conn, organization_id: int) -> list[tuple]:
    names: dict[str, list] = defaultdict(list)
    for row in supplier_rows(conn, organization_id, active_only=True):
        for name in {row["name"], *row["other_names"]}:
            names[name_skeleton(name)].append((row["id"], name))
    return [
        tuple(found)
        for found in names.values()
        if len({supplier_id for supplier_id, _ in found}) > 1
    ]


def _unregistered(conn, organization_id: int) -> list[tuple]:
    """The VALIDATED documents whose seller the register does not agree with."""
    t = incoming_invoices.c
    register = load_register(conn, organization_id)
    own = own_party(conn, organization_id)
    found = []
    for row in conn.execute(
        select(t.id, t.seller_name, t.seller_vat_id).where(
            t.organization_id == organization_id, t.status == Status.VALIDATED.value
        )
    ):
        comparison = compare(register, Claim(row.seller_name, row.seller_vat_id), own)
        if comparison.supplier is None or not comparison.agrees:
            found.append((row.id, row.seller_name or "-", row.seller_vat_id or "-"))
    return found


def register_checks(conn, organization_id: int) -> list[AssetCheckResult]:
    pairs = _look_alikes(conn, organization_id)
    unregistered = _unregistered(conn, organization_id)
    return [
        AssetCheckResult(
            check_name=told_apart_spec.name,
            asset_key=SUPPLIER_REGISTER,
            passed=not pairs,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "look_alike_groups": len(pairs),
                "groups": MetadataValue.md(
                    markdown_table(
                        ["suppliers (id: name)"],
                        [["; ".join(f"{i}: {n}" for i, n in group)] for group in pairs],
                        limit=TABLE_ROWS,
                    )
                ),
            },
        ),
        AssetCheckResult(
            check_name=registered_spec.name,
            asset_key=SUPPLIER_REGISTER,
            passed=not unregistered,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "documents": len(unregistered),
                "waiting": MetadataValue.md(
                    markdown_table(["document", "seller", "VAT id"], unregistered, limit=TABLE_ROWS)
                ),
            },
        ),
    ]


@asset(
    name=SUPPLIER_REGISTER,
    partitions_def=organizations_partitions,
    group_name="intake",
    kinds={"sql"},
    owners=OWNERS,
    check_specs=[told_apart_spec, registered_spec],
    description="The organization's supplier register: the suppliers a person confirmed (or the "
    "organization's first-invoice policy registered) with their full VAT id, names, IBANs, "
    "notice address, QuickBooks vendor and DATEV creditor account. The intake compares every "
    "document's seller with it; QuickBooks bills and supplier notices follow it. Changed only by "
    "a person (change_supplier_register_job, `invoice-pipelines suppliers`, a confirmed review) "
    "or the first-invoice policy, every change audited.",
)
def supplier_register(context: AssetExecutionContext, database: Database):
    engine = database.get_engine()
    org = organization_or_refuse(engine, context.partition_key)
    with tenant_transaction(engine, org["id"]) as conn:
        metadata = register_metadata(conn, org["id"])
        checks = register_checks(conn, org["id"])
    yield MaterializeResult(metadata=metadata)
    yield from checks


def register_materialization(engine, organization: dict) -> AssetMaterialization:
    """The register's materialization after a run changed it (the launchpad job, the intake)."""
    with tenant_transaction(engine, organization["id"]) as conn:
        metadata = register_metadata(conn, organization["id"])
    return AssetMaterialization(
        asset_key=SUPPLIER_REGISTER, partition=organization["slug"], metadata=metadata
    )


class SupplierChangeConfig(Config):
    organization: str = Field(description="Organization slug or id.")
    supplier_id: int | None = Field(
        default=None, description="The supplier to change; none: register a new one."
    )
    name: str = Field(default="", description="Its name (required for a new supplier).")
    add_names: list[str] = Field(default_factory=list, description="Other names it goes by.")
    vat_id: str = Field(default="", description="Its VAT id, in full.")
    tax_number: str = Field(default="", description="Its tax number (Steuernummer).")
    add_ibans: list[str] = Field(
        default_factory=list, description="IBANs to add, each IBAN or IBAN:BIC."
    )
    remove_ibans: list[str] = Field(default_factory=list, description="IBANs to remove.")
    notice_email: str = Field(default="", description="Where its rejection notices go.")
    qbo_vendor_id: str = Field(default="", description="Its QuickBooks vendor's Id.")
    datev_creditor_account: int | None = Field(default=None, description="DATEV creditor.")
    active: bool | None = Field(default=None, description="false: the supplier is retired.")
    expected_version: int | None = Field(
        default=None, description="The supplier's version you looked at (changes only)."
    )
    changed_by: str = Field(description="Who makes the change (audited).")
    reason: str = Field(description="Why (audited).")


def _pairs(values: list[str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((v.split(":", 1)[0], v.split(":", 1)[1] if ":" in v else None) for v in values)


@op(
    description="A person registers a supplier or changes one (names, VAT id, IBANs, notice "
    "address, QuickBooks vendor, DATEV creditor account); every change is audited with who and "
    "why, and the register's asset shows the result."
)
def change_supplier_register(
    context: OpExecutionContext, config: SupplierChangeConfig, database: Database
):
    engine = database.get_engine()
    org = organization_or_refuse(engine, config.organization)
    try:
        with tenant_transaction(engine, org["id"], write=True) as conn:
            if config.supplier_id is None:
                supplier_id = add_supplier(
                    conn,
                    org["id"],
                    name=config.name,
                    vat_id=config.vat_id or None,
                    tax_number=config.tax_number or None,
                    ibans=_pairs(config.add_ibans),
                    notice_email=config.notice_email or None,
                    qbo_vendor_id=config.qbo_vendor_id or None,
                    datev_creditor_account=config.datev_creditor_account,
                    changed_by=config.changed_by,
                    reason=config.reason,
                )
            else:
                supplier_id = config.supplier_id
                change_supplier(
                    conn,
                    org["id"],
                    supplier_id,
                    Change(
                        name=config.name or None,
                        vat_id=config.vat_id or None,
                        tax_number=config.tax_number or None,
                        notice_email=config.notice_email or None,
                        qbo_vendor_id=config.qbo_vendor_id or None,
                        datev_creditor_account=config.datev_creditor_account,
                        add_names=tuple(config.add_names),
                        add_ibans=_pairs(config.add_ibans),
                        remove_ibans=tuple(config.remove_ibans),
                        active=config.active,
                    ),
                    changed_by=config.changed_by,
                    reason=config.reason,
                    expected_version=config.expected_version,
                )
    except RegisterError as exc:
        raise refused(str(exc)) from None
    context.log.info(f"supplier {supplier_id} of {org['slug']}: changed by {config.changed_by}")
    context.log_event(register_materialization(engine, org))


@job(
    executor_def=in_process_executor,
    description="The supplier register: register a supplier or change one (config: organization, "
    "supplier_id or none for a new one, the values, changed_by, reason); audited.",
)
def change_supplier_register_job():
    change_supplier_register()
