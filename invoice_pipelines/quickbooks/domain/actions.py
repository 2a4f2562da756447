"""QuickBooks requests as actions its ops and commands call: `connect` an organization to a
company (`qbo-connect`), `resolve` a held sync conflict (`qbo-resolve`, qbo_resolve_conflict_job)
and `push_chosen` supplier invoices as bills now (qbo_push_bills_job). Each raises `Refused` with
one sentence for a request a person can correct."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Engine

from invoice_pipelines.db.tenancy import Organization
from invoice_pipelines.lib.read_only import Refused
from invoice_pipelines.quickbooks.domain.errors import BadRealmId, NotConnected
from invoice_pipelines.quickbooks.domain.sync.bills import describe_documents, push_bills
from invoice_pipelines.quickbooks.domain.sync.common import QboSettings, RealmBusy, realm_lease
from invoice_pipelines.quickbooks.domain.sync.customers import resolve_conflict
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

KEEP = ("local", "qbo")  # which side of a conflict stays


def resolve(
    engine: Engine, settings: QboSettings, org: Organization, conflict_id: int, *, keep: str,
    by: str,
) -> dict:  # fmt: skip
    """Resolve conflict `conflict_id` of `org` keeping the `keep` side ("local" or "qbo"); the
    record syncs again afterwards. Refused: another `keep`, no such conflict, or an organization
    not connected to QuickBooks."""
    if keep not in KEEP:
        raise Refused([f"keep must be 'local' or 'qbo', not {keep!r}"])
    try:
        with settings.client(engine, org.id) as client:
            return resolve_conflict(
                engine, org.id, conflict_id, keep=keep, resolved_by=by, client=client
            )
    except (LookupError, ValueError, NotConnected) as exc:
        raise Refused([str(exc)]) from None


def tax_codes(text: str) -> dict[str, str]:
    """`19=TAX,7=TAX7`: QuickBooks' tax code of each VAT rate, by the rate with two decimals.
    Refused: a rate that is no number."""
    codes = {}
    for pair in filter(None, text.split(",")):
        rate, _, code = pair.partition("=")
        try:
            codes[f"{Decimal(rate.strip()):.2f}"] = code.strip()
        except InvalidOperation:
            raise Refused([f"the tax code's rate {rate.strip()!r} is not a number"]) from None
    return codes


def connect(
    engine: Engine, system: Engine, org: Organization, *, realm_id: str, client_id: str,
    client_secret: str, refresh_token: str, codes: dict[str, str], income_account: str | None,
    by: str,
) -> dict:  # fmt: skip
    """Connect `org` to QuickBooks company `realm_id` (its tokens sealed with the token key);
    what the command prints. A switch to another company archives the old one's links and says
    what to import next. Refused: a realm id QuickBooks does not give; RealmInUse and LockBusy
    (another organization has the company, a sync holds the organization) are raised as they are."""
    try:
        switched = save_connection(
            engine, org.id, system=system, realm_id=realm_id, client_id=client_id,
            client_secret=client_secret, refresh_token=refresh_token,
            cipher=token_cipher(system=system),
            settings={"tax_codes": codes, "income_account_id": income_account}, by=by,
        )  # fmt: skip
    except BadRealmId as exc:
        raise Refused([str(exc)]) from None
    said: dict = {"organization": org.slug, "realm_id": realm_id, "connected": True}
    if switched is not None:
        said["company_switch"] = {
            "archived": switched,
            "next": f"invoice-pipelines qbo-import --org {org.slug}",
        }
    return said


def push_chosen(
    engine: Engine, settings: QboSettings, org: Organization, document_ids: list[int], *,
    run_id: str, **options: Any,
) -> dict:  # fmt: skip
    """Push the chosen incoming invoices of `org` as bills now (or delete the bills of FAILED
    ones), with the bill push's exactly-once machinery under the realm's lease held for `run_id`;
    the counts and where each document stands. `options`: push_bills' (retry_failed,
    read_upload, write_letter). Refused: no document named, an organization not connected, the
    realm leased to another run."""
    if not document_ids:
        raise Refused(["Name at least one incoming invoice id (document_ids)."])
    try:
        with realm_lease(engine, org.id, run_id), settings.client(engine, org.id) as client:
            counts = push_bills(engine, org, client, documents=list(document_ids), **options)
    except (NotConnected, RealmBusy) as exc:
        raise Refused([str(exc)]) from None
    where = describe_documents(engine, org.id, document_ids)
    return {**counts.as_dict(), "documents": {str(k): v for k, v in where.items()}}
