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
from invoice_pipelines.core.text import terminal_text
from invoice_pipelines.db.tenancy import UnknownOrganization
from invoice_pipelines.db.tenancy import tenant_transaction as transaction
from invoice_pipelines.intake.domain import supplier_actions as actions
from invoice_pipelines.intake.domain.supplier_actions import NewSupplier, RegisterParts, Who
from invoice_pipelines.lib.read_only import Refused, writable
from invoice_pipelines.resources.dagster_instance.dagster_ui import Terminal
from invoice_pipelines.supplier_register import (
    Change,
    RegisterError,
    checked_name,
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


def _reading(args, work):
    """`work(conn, organization_id)` in the organization's read transaction: (0, what it gave),
    or (2, None) with a RegisterError or an unknown organization said in one line."""
    try:
        with transaction(args.resources.database, args.organization.id) as conn:
            return 0, work(conn, args.organization.id)
    except (RegisterError, UnknownOrganization) as exc:
        return _fail(args, exc), None


def _changing(args, action, *request, **options):
    """A change of the register by its action (intake/domain/actions.py): (0, what it gave), or
    (2, None) with its refusal said in one line."""
    writable(args.organization)  # an offboarded one: one sentence (cli.py), as every command's
    parts = RegisterParts(args.resources.database, Terminal())
    try:
        return 0, action(parts, args.organization, *request, **options)
    except Refused as exc:
        return _fail(args, exc), None


def _who(args) -> Who:
    return Who(args.by, args.reason, f"suppliers {args.verb} by {args.by}")


def run_list(args) -> int:
    code, rows = _reading(args, supplier_rows)
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
    def work(conn, organization_id: int):
        found = [r for r in supplier_rows(conn, organization_id) if r["id"] == args.id]
        return found and {**found[0], "history": supplier_history(conn, organization_id, args.id)}

    code, supplier = _reading(args, work)
    if code:
        return code
    if not supplier:
        return _fail(args, f"no supplier {args.id} in {args.org}")
    for line in json.dumps(supplier, default=str, indent=2, ensure_ascii=False).split("\n"):
        _print(line)
    return 0


def run_add(args) -> int:
    new = NewSupplier(
        name=args.name,
        vat_id=args.vat_id,
        tax_number=args.tax_number,
        ibans=_ibans(args.iban),
        notice_email=args.notice_email,
        qbo_vendor_id=args.qbo_vendor,
        datev_creditor_account=args.datev_account,
        despite_lookalike=args.despite_lookalike,
    )
    code, supplier_id = _changing(args, actions.register, new, _who(args))
    if not code:
        # the name as the register holds it (NFC, blanks collapsed), never as typed: what is
        # shown is what is stored
        _print(
            json.dumps(
                {"id": supplier_id, "registered": checked_name(args.name)}, ensure_ascii=False
            )
        )
    return code


def _change(args, change: Change) -> int:
    version = getattr(args, "version", None)
    code, after = _changing(
        args, actions.change, args.id, change, _who(args), expected_version=version
    )
    return code or _print_supplier(args, after)


def _print_supplier(args, after: dict) -> int:
    """The supplier's values after a change of it."""
    _print(json.dumps({"id": args.id, **after}, default=str, ensure_ascii=False))
    return 0


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
    code, after = _changing(
        args,
        actions.confirm,
        args.id,
        _who(args),
        expected_version=args.version,
        despite_lookalike=args.despite_lookalike,
    )
    return code or _print_supplier(args, after)


def run_link_vendor(args) -> int:
    return _change(args, Change(qbo_vendor_id=args.vendor))


def run_policy(args) -> int:
    if not args.set:
        code, policy = 0, supplier_policy(args.organization)  # the value cli.py found
    else:
        code, policy = _changing(
            args,
            actions.in_register,
            lambda conn, organization_id: set_supplier_policy(
                conn, organization_id, args.set, changed_by=args.by, reason=args.reason
            ),
            told_as=_who(args).told_as,
        )
    if not code:
        print(json.dumps({"supplier_policy": policy}))
    return code


def run_learn_history(args) -> int:
    code, registered = _changing(
        args,
        actions.in_register,
        lambda conn, _: learn_history(
            conn, args.organization, changed_by=args.by, reason=args.reason
        ),
        told_as=_who(args).told_as,
    )
    if not code:
        counts = {"registered": registered.registered, "skipped": registered.skipped}
        _print(json.dumps(counts, ensure_ascii=False))
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
