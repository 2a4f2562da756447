"""`invoice-pipelines suppliers`: the organization's supplier register from a shell: list, show
(with its history), add, change, link-vendor, policy and learn-history. Every change names who
makes it and why (`--by`, `--reason`) and is audited (supplier_register.py)."""

from __future__ import annotations

import json
import sys

from invoice_pipelines.cli_args import positive_int

VERBS = "list, show, add, change, link-vendor, policy, learn-history"


def add_supplier_commands(sub, no_verb) -> None:
    """The `suppliers` parser; `no_verb` answers `suppliers` alone (intake/cli.py's)."""
    suppliers = sub.add_parser("suppliers")
    suppliers.set_defaults(func=no_verb, parser=suppliers)
    verbs = suppliers.add_subparsers(dest="verb", required=True)

    p = verbs.add_parser("list", help="the register: suppliers with VAT id, IBANs, vendor")
    _org(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run_list)

    p = verbs.add_parser("show", help="one supplier with every change (who, why, before, after)")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.set_defaults(func=run_show)

    p = verbs.add_parser("add", help="register a supplier a person confirmed")
    _org(p)
    p.add_argument("--name", required=True)
    _values(p)
    _who(p)
    p.set_defaults(func=run_add)

    p = verbs.add_parser("change", help="change a supplier (audited)")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.add_argument("--name", help="its name")
    p.add_argument("--add-name", action="append", default=[], help="another name it goes by")
    _values(p)
    p.add_argument("--remove-iban", action="append", default=[], metavar="IBAN")
    p.add_argument(
        "--clear",
        action="append",
        default=[],
        metavar="FIELD",
        help="vat_id, tax_number, notice_email, qbo_vendor_id or datev_creditor_account",
    )
    p.add_argument("--retire", action="store_true", help="the supplier is no longer one")
    p.add_argument("--version", type=positive_int, help="the version you looked at (show)")
    _who(p)
    p.set_defaults(func=run_change)

    p = verbs.add_parser("link-vendor", help="book a supplier's bills to a QuickBooks vendor")
    _org(p)
    p.add_argument("--id", required=True, type=positive_int, help="supplier id")
    p.add_argument("--vendor", required=True, help="the QuickBooks vendor's Id")
    _who(p)
    p.set_defaults(func=run_link_vendor)

    p = verbs.add_parser("policy", help="show or set how a new supplier is registered")
    _org(p)
    p.add_argument(
        "--set",
        choices=("review", "first_invoice"),
        help="review: a person confirms every new supplier; first_invoice: a new supplier's "
        "first accepted invoice registers it",
    )
    p.set_defaults(func=run_policy)

    p = verbs.add_parser(
        "learn-history",
        help="register the suppliers of documents accepted before the register (a person's act)",
    )
    _org(p)
    _who(p)
    p.set_defaults(func=run_learn_history)


def _org(p) -> None:
    p.add_argument("--org", required=True, help="organization slug or id")


def _who(p) -> None:
    p.add_argument("--by", required=True, help="who makes the change (audited)")
    p.add_argument("--reason", required=True, help="why (audited)")


def _values(p) -> None:
    p.add_argument("--vat-id", help="its VAT id, in full")
    p.add_argument("--tax-number", help="its tax number (Steuernummer)")
    p.add_argument(
        "--iban", action="append", default=[], metavar="IBAN[:BIC]", help="repeat for more"
    )
    p.add_argument("--notice-email", help="where its rejection notices go")
    p.add_argument("--qbo-vendor", help="its QuickBooks vendor's Id")
    p.add_argument("--datev-account", type=positive_int, help="its DATEV creditor account")


def _fail(args, exc: Exception) -> int:
    print(f"invoice-pipelines suppliers {args.verb}: {exc}", file=sys.stderr)
    return 2


def _ibans(values: list[str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((v.split(":", 1)[0], v.split(":", 1)[1] if ":" in v else None) for v in values)


def _print(line: str) -> None:
    from invoice_pipelines.core.text import terminal_text

    print(terminal_text(line))


def _in_organization(args, work, *, write: bool = False):
    """Run `work(conn, organization_id)` in the organization's transaction; a RegisterError or
    an unknown organization is one line and exit 2."""
    from invoice_pipelines.db.tenancy import UnknownOrganization, resolve_organization
    from invoice_pipelines.db.tenancy import tenant_transaction as transaction
    from invoice_pipelines.supplier_register import RegisterError

    engine = args.resources.database
    try:
        org = resolve_organization(engine, args.org)
        with transaction(engine, org["id"], write=write) as conn:
            return 0, work(conn, org["id"])
    except (RegisterError, UnknownOrganization) as exc:
        return _fail(args, exc), None


def run_list(args) -> int:
    from invoice_pipelines.supplier_register import supplier_rows

    code, rows = _in_organization(args, lambda conn, org: supplier_rows(conn, org))
    if code:
        return code
    if not rows:
        print("the supplier register is empty")
    for row in rows:
        if args.json:
            _print(json.dumps(row, default=str, ensure_ascii=False))
            continue
        ibans = ", ".join(a["iban"] for a in row["bank_accounts"]) or "-"
        _print(
            f"{row['id']:>6}  {row['name'][:36]:<36} {row['vat_id'] or '-':<16} {ibans[:48]:<48} "
            f"vendor {row['qbo_vendor_id'] or '-'}  {row['origin']}"
            + ("" if row["active"] else "  (retired)")
        )
    return 0


def run_show(args) -> int:
    from invoice_pipelines.supplier_register import supplier_history, supplier_rows

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
    from invoice_pipelines.supplier_register import add_supplier

    code, supplier_id = _in_organization(
        args,
        lambda conn, org: add_supplier(
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
        ),
        write=True,
    )
    if not code:
        print(json.dumps({"id": supplier_id, "registered": args.name}, ensure_ascii=False))
    return code


def _change(args, change) -> int:
    from invoice_pipelines.supplier_register import change_supplier

    code, after = _in_organization(
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
        write=True,
    )
    if not code:
        _print(json.dumps({"id": args.id, **after}, default=str, ensure_ascii=False))
    return code


def run_change(args) -> int:
    from invoice_pipelines.supplier_register import Change

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


def run_link_vendor(args) -> int:
    from invoice_pipelines.supplier_register import Change

    return _change(args, Change(qbo_vendor_id=args.vendor))


def run_policy(args) -> int:
    from invoice_pipelines.supplier_register import set_supplier_policy, supplier_policy

    def work(conn, org):
        return set_supplier_policy(conn, org, args.set) if args.set else supplier_policy(conn, org)

    code, policy = _in_organization(args, work, write=bool(args.set))
    if not code:
        print(json.dumps({"supplier_policy": policy}))
    return code


def run_learn_history(args) -> int:
    from invoice_pipelines.supplier_register import learn_history

    code, registered = _in_organization(
        args,
        lambda conn, org: learn_history(conn, org, changed_by=args.by, reason=args.reason),
        write=True,
    )
    if not code:
        print(json.dumps({"registered": registered}))
    return code
