"""What `invoice-pipelines suppliers` does: the organization's supplier register from a shell:
list, show (with its history), add, change, confirm, link-vendor, policy and learn-history. Every change
names who makes it and why (`--by`, `--reason`) and is audited (supplier_register.py). Its parser
is intake/commands/cli_suppliers.py's; intake/area.py's table names `run_suppliers_command`, and the
console script imports this module only when the command runs."""

from __future__ import annotations

import argparse
import json
import sys

from invoice_pipelines.area_parts import run_verb
from invoice_pipelines.core.organization import Organization
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.db.tenancy import tenant_transaction as transaction
from invoice_pipelines.intake.domain.figures import (
    SUPPLIER_REGISTER,
    event,
    register_check_events,
    register_figures,
)
from invoice_pipelines.lib.read_only import writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import tell_dagster
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    add_supplier,
    change_supplier,
    checked_name,
    confirm_supplier,
    learn_history,
    set_supplier_policy,
    supplier_history,
    supplier_policy,
    supplier_rows,
)


def run_suppliers_command(args: argparse.Namespace) -> int:
    """The command the table names: its verb's function."""
    return run_verb(args, RUNS)


def _fail(args, exc: Exception) -> int:
    print(f"invoice-pipelines suppliers {args.verb}: {exc}", file=sys.stderr)
    return 2


def _ibans(values: list[str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((v.split(":", 1)[0], v.split(":", 1)[1] if ":" in v else None) for v in values)


def _print(line: str) -> None:
    print(terminal_text(line))


def _in_organization(args, work, *, write: bool = False):
    """Run `work(conn, organization_id)` in the organization's transaction; a RegisterError or
    an unknown organization is one line and exit 2."""
    engine = args.resources.database
    if write:
        writable(args.organization)  # an offboarded one: one sentence (cli.py), before any work
    try:
        org = args.organization
        with transaction(engine, org.id, write=write) as conn:
            done = work(conn, org.id)
    except (RegisterError, UnknownOrganization) as exc:
        return _fail(args, exc), None
    if write:
        _tell_dagster(engine, org, f"suppliers {args.verb} by {getattr(args, 'by', None)}")
    return 0, done


def _tell_dagster(engine, org: Organization, by: str) -> None:
    """The register as `supplier_register` shows it, reported to the UI after a change, with
    its two checks evaluated on it (figures.py: the rule of the register's runs' checks)."""
    with transaction(engine, org.id) as conn:
        events = [event(SUPPLIER_REGISTER, org, register_figures(conn, org.id), by)]
        events += register_check_events(conn, org)
    tell_dagster(events)


def run_list(args) -> int:
    code, rows = _in_organization(args, lambda conn, org: supplier_rows(conn, org))
    if code:
        return code
    if not rows:
        print("the supplier register is empty")
    elif not args.json:
        _print(_LIST_LINE.format("id", "v", "name", "VAT id", "IBANs", "vendor", "confirmed"))
    for row in rows:
        if args.json:
            _print(json.dumps(row, default=str, ensure_ascii=False))
            continue
        ibans = ", ".join(a["iban"] for a in row["bank_accounts"]) or "-"
        confirmed = (
            f"by {row['confirmed_by']}"
            if row["confirmed_at"] is not None
            else f"NO (registered by its first invoice: suppliers confirm --id {row['id']})"
        )
        _print(
            _LIST_LINE.format(
                row["id"],
                row["version"],
                row["name"][:36],
                row["vat_id"] or "-",
                ibans[:48],
                row["qbo_vendor_id"] or "-",
                confirmed + ("" if row["active"] else "  (retired)"),
            )
        )
    return 0


_LIST_LINE = "{:>6} {:>3}  {:<36} {:<16} {:<48} {:<8} {}"


def run_show(args) -> int:
    def work(conn, org):
        found = [r for r in supplier_rows(conn, org) if r["id"] == args.id]
        return found and {**found[0], "history": supplier_history(conn, org, args.id)}

    code, supplier = _in_organization(args, work)
    if code:
        return code
    if not supplier:
        return _fail(args, f"no supplier {args.id} in {args.org}")
    for line in json.dumps(supplier, default=str, indent=2, ensure_ascii=False).split("\n"):
        _print(line)
    return 0


def run_add(args) -> int:
    def work(conn, org):
        supplier_id = add_supplier(
            conn,
            org,
            name=args.name,
            vat_id=args.vat_id,
            tax_number=args.tax_number,
            ibans=_ibans(args.iban),
            notice_email=args.notice_email,
            qbo_vendor_id=args.qbo_vendor,
            datev_creditor_account=args.datev_account,
            changed_by=args.by,
            reason=args.reason,
            despite_lookalike=args.despite_lookalike,
        )
        # the name as the register holds it (NFC, blanks collapsed), never as typed: what is
        # shown is what is stored
        return supplier_id, checked_name(args.name)

    code, added = _in_organization(args, work, write=True)
    if not code:
        _print(json.dumps({"id": added[0], "registered": added[1]}, ensure_ascii=False))
    return code


def _change(args, change) -> int:
    return _changed(
        args,
        lambda conn, org: change_supplier(
            conn,
            org,
            args.id,
            change,
            changed_by=args.by,
            reason=args.reason,
            expected_version=getattr(args, "version", None),
        ),
    )


def _changed(args, work) -> int:
    """Run a change of supplier `args.id` and print the supplier's values after it."""
    code, after = _in_organization(args, work, write=True)
    if not code:
        _print(json.dumps({"id": args.id, **after}, default=str, ensure_ascii=False))
    return code


def run_change(args) -> int:
    return _change(
        args,
        Change(
            name=args.name,
            vat_id=args.vat_id,
            tax_number=args.tax_number,
            notice_email=args.notice_email,
            qbo_vendor_id=args.qbo_vendor,
            datev_creditor_account=args.datev_account,
            add_names=tuple(args.add_name),
            add_ibans=_ibans(args.iban),
            remove_ibans=tuple(args.remove_iban),
            active=False if args.retire else None,
            clear=tuple(args.clear),
        ),
    )


def run_confirm(args) -> int:
    return _changed(
        args,
        lambda conn, org: confirm_supplier(
            conn,
            org,
            args.id,
            changed_by=args.by,
            reason=args.reason,
            expected_version=args.version,
            despite_lookalike=args.despite_lookalike,
        ),
    )


def run_link_vendor(args) -> int:
    return _change(args, Change(qbo_vendor_id=args.vendor))


def run_policy(args) -> int:
    def work(conn, org):
        if not args.set:
            return supplier_policy(conn, org)
        return set_supplier_policy(conn, org, args.set, changed_by=args.by, reason=args.reason)

    code, policy = _in_organization(args, work, write=bool(args.set))
    if not code:
        print(json.dumps({"supplier_policy": policy}))
    return code


def run_learn_history(args) -> int:
    code, registered = _in_organization(
        args,
        lambda conn, org: learn_history(conn, org, changed_by=args.by, reason=args.reason),
        write=True,
    )
    if not code:
        _print(
            json.dumps(
                {"registered": registered.registered, "skipped": registered.skipped},
                ensure_ascii=False,
            )
        )
    return code


RUNS = {
    "list": run_list,
    "show": run_show,
    "add": run_add,
    "change": run_change,
    "confirm": run_confirm,
    "link-vendor": run_link_vendor,
    "policy": run_policy,
    "learn-history": run_learn_history,
}
