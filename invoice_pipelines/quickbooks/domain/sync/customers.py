"""Customers, both ways: last modified wins, every conflict logged, ties held for a person.

The baseline of each mapped customer is what both sides looked like when they last agreed: QBO's
SyncToken and a fingerprint of our synced fields. A side changed when it differs from its
baseline; only when *both* changed is it a conflict. Then the later change wins (QBO's
LastUpdatedTime, normalized to UTC, against our updated_at) unless the two are within the skew
tolerance: that is a tie, recorded as `manual_review` and held (neither pushed nor pulled) until
someone resolves it (`invoice-pipelines qbo-conflicts` / `qbo-resolve`). Every conflict, decided
or held, is a `sync_conflicts` row with both versions.

QBO never hard-deletes customers: deactivation is `Active=false` on either side and travels like
any other field; a deactivated record is never reactivated by the sync on its own. A new customer
whose DisplayName already exists in QBO (6240) is linked to that customer when it is the same
party (same e-mail or VAT id), otherwise it is held as a conflict.

Our VAT id (BT-48) goes to QBO's tax registration field, `PrimaryTaxIdentifier` ("Tax Reg. No",
minor version 4), where the company's edition has it: UK, Canada, Australia, India (CompanyInfo
.Country, read once per run and only when a customer to write has a VAT id). It travels one way:
QBO answers it masked (all but the last five characters are X), so it is never pulled back.

The customer's Peppol participant id (`customers.peppol_participant`, e.g. 0208:0123456749)
travels both ways as one line of QBO's `Notes` (the customer's free-form note, in every edition):
`Peppol: 0208:0123456749`. QBO's Customer has no field for it, and its custom fields need QBO
Advanced and the GraphQL definitions API; a line in the note is what a person sees and can edit on
the customer's page. Only that line is ours: the rest of the note is kept as QBO has it (the
mapping's details keep the note QBO had at the baseline, and a write goes with that baseline's
SyncToken, so a note changed in QBO meanwhile is a stale write, read again). A line naming an id
the Peppol rules refuse is not taken (ours stays, the sync's errors say why); a line removed in
QBO clears ours only where the baseline's note had one.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select, update

from invoice_pipelines.core.organization import Organization
from invoice_pipelines.db.tables import customers, sync_conflicts
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.einvoice.peppol_ids import ParticipantIdError, parse_participant
from invoice_pipelines.quickbooks.domain.client import (
    MAX_BATCH,
    QboClient,
    parse_qbo_time,
    quote,
    request_id,
)
from invoice_pipelines.quickbooks.domain.errors import QboError, StaleObject
from invoice_pipelines.quickbooks.domain.names import qbo_display_name
from invoice_pipelines.quickbooks.domain.sync.common import (
    SyncCounts,
    TwoWaySync,
    create_batch,
    fingerprint,
    held_local_ids,
    held_qbo_ids,
    mappings_by_local_id,
    save_mapping,
)

DEFAULT_SKEW = timedelta(seconds=2)
FIELDS = ("name", "email", "phone", "street", "postal_code", "city", "country", "active")
# the QBO editions whose Customer has PrimaryTaxIdentifier (Intuit's Customer reference: locales
# GB, CA, AU, IN); CompanyInfo.Country names the edition ("UK" accepted for GB)
TAX_ID_REGIONS = frozenset({"GB", "UK", "CA", "AU", "IN"})
TAX_ID_FIELD = "PrimaryTaxIdentifier"
# the line of QBO's Customer.Notes that carries the Peppol participant id
PEPPOL_NOTE = "Peppol:"
_PEPPOL_LINE = re.compile(r"^\s*peppol\s*:\s*(.*?)\s*$", re.IGNORECASE)


def normalized_vat_id(value: object) -> str:
    """A VAT id as written to QBO and compared: without blanks, upper case."""
    return "".join(str(value or "").split()).upper()


def local_fields(row: dict) -> dict:
    fields = {name: row.get(name) for name in FIELDS}
    vat_id = normalized_vat_id(row.get("vat_id"))
    if vat_id:
        # only when set, so the baseline of a customer without one stays what it was
        fields["vat_id"] = vat_id
    if row.get("peppol_participant"):
        fields["peppol_participant"] = row["peppol_participant"]  # the same, for the same reason
    return fields


def note_participant(notes: object) -> str | None:
    """The text of the Peppol line of a QBO customer's note (`Peppol: <id>`), or None without
    one (the first such line counts)."""
    for line in str(notes or "").splitlines():
        found = _PEPPOL_LINE.match(line)
        if found:
            return found.group(1)
    return None


def with_participant(notes: object, participant: str | None) -> str:
    """QBO's note with its Peppol line saying `participant` (in the first Peppol line's place, or
    appended), or without any Peppol line when `participant` is None; every other line as it
    was."""
    lines = str(notes or "").splitlines()
    ours = f"{PEPPOL_NOTE} {participant}" if participant else None
    kept: list[str] = []
    for line in lines:
        if _PEPPOL_LINE.match(line):
            if ours is not None:
                kept.append(ours)
                ours = None
            continue
        kept.append(line)
    if ours is not None:
        kept.append(ours)
    return "\n".join(kept)


def to_qbo(
    fields: dict, *, tax_ids: bool = False, update: bool = False, notes: str | None = None
) -> dict:
    """Our customer as QBO's Customer; `tax_ids` when the company's edition has PrimaryTaxIdentifier
    (an update then also clears it when our VAT id was removed); `notes` the note to write, where
    its Peppol line changes (a new customer's is its Peppol line alone)."""
    body: dict = {
        "DisplayName": qbo_display_name(fields["name"]),
        "CompanyName": qbo_display_name(fields["name"]),
        "Active": bool(fields["active"]),
        "BillAddr": {
            "Line1": fields.get("street") or "",
            "PostalCode": fields.get("postal_code") or "",
            "City": fields.get("city") or "",
            "Country": fields.get("country") or "",
        },
    }
    if fields.get("email"):
        body["PrimaryEmailAddr"] = {"Address": fields["email"]}
    if fields.get("phone"):
        body["PrimaryPhone"] = {"FreeFormNumber": fields["phone"]}
    if tax_ids and (fields.get("vat_id") or update):
        body[TAX_ID_FIELD] = fields.get("vat_id") or ""
    if notes is None and not update and fields.get("peppol_participant"):
        notes = with_participant("", fields["peppol_participant"])
    if notes is not None:
        body["Notes"] = notes
    return body


def notes_details(record: dict) -> dict:
    """What a customer's mapping keeps of QBO's record beside the baseline: its note."""
    return {"notes": record.get("Notes") or ""}


def from_qbo(record: dict, current: dict | None = None) -> dict:
    address = record.get("BillAddr") or {}
    country = str(address.get("Country") or "").strip().upper()
    return {
        "name": str(record.get("DisplayName") or "")[:255],
        "email": (record.get("PrimaryEmailAddr") or {}).get("Address") or None,
        "phone": (record.get("PrimaryPhone") or {}).get("FreeFormNumber") or None,
        "street": address.get("Line1") or None,
        "postal_code": address.get("PostalCode") or None,
        "city": address.get("City") or None,
        "country": country if len(country) == 2 else ((current or {}).get("country") or "DE"),
        "active": bool(record.get("Active", True)),
    }


def same_vat_id(ours: object, theirs: object) -> bool:
    """Our VAT id against QBO's tax id, which QBO answers masked (XXXXXX56789): the characters QBO
    shows must match ours, and the lengths agree."""
    mine, shown = normalized_vat_id(ours), normalized_vat_id(theirs)
    if not mine or not shown:
        return False
    if not shown.startswith("X") or mine.startswith("X"):
        return mine == shown
    visible = shown.lstrip("X")
    return len(mine) == len(shown) and bool(visible) and mine.endswith(visible)


def _same_party(local: dict, record: dict) -> bool:
    email = (record.get("PrimaryEmailAddr") or {}).get("Address")
    if local.get("email") and email and local["email"].casefold() == email.casefold():
        return True
    return same_vat_id(
        local.get("vat_id"), record.get(TAX_ID_FIELD) or record.get("BusinessNumber")
    )


class CustomerSync(TwoWaySync):
    ENTITY = "customer"
    QBO_ENTITY = "Customer"
    TABLE = customers

    def __init__(
        self,
        engine: Engine,
        organization_id: int,
        client: QboClient,
        *,
        skew: timedelta | None = None,
        progress=None,
    ) -> None:
        super().__init__(engine, organization_id, client, progress)
        configured = (client.connection_settings or {}).get("skew_seconds")
        self.skew = skew or (
            timedelta(seconds=float(configured)) if configured is not None else DEFAULT_SKEW
        )
        self._tax_ids: bool | None = None  # does the company's edition have PrimaryTaxIdentifier
        # QBO's note at the SyncToken a push of this run goes with, by our customer's id, where
        # it is newer than the mapping's (a conflict our side won, a stale write read again)
        self._qbo_notes: dict[int, str] = {}

    def writes_tax_ids(self, rows: list[dict], *, update: bool = False) -> bool:
        """Whether these customers' VAT ids go to QBO: the company's edition has the field. Asked
        of QBO (CompanyInfo) once per run, and only for an update (which may clear one) or when
        one of them has a VAT id."""
        if self._tax_ids is None:
            if not update and not any(normalized_vat_id(r.get("vat_id")) for r in rows):
                return False
            try:
                info = self.client.get("CompanyInfo", self.client.realm_id)
            except QboError as exc:
                self.counts.errors.append(f"VAT ids not written: company info unreadable ({exc})")
                self._tax_ids = False
                return False
            country = info.get("Country") or (info.get("CompanyAddr") or {}).get("Country")
            self._tax_ids = str(country or "").strip().upper() in TAX_ID_REGIONS
        return self._tax_ids

    def _map(self, conn, local_id: int, record: dict, local_fingerprint: str) -> None:
        """The mapping's baseline moved to QBO's `record`, its note kept beside it."""
        save_mapping(
            conn,
            self.organization_id,
            "customer",
            local_id,
            record,
            local_fingerprint=local_fingerprint,
            details=notes_details(record),
        )

    def _qbo_participant(
        self, record: dict, current: dict | None, mapping: dict | None
    ) -> tuple[bool, str | None]:
        """Whether QBO's version sets our customer's participant id, and to what: its note's
        Peppol line checked as the Peppol rules check it; no line clears ours only where the
        baseline's note had one (a customer mapped before the line was written keeps its id)."""
        text = note_participant(record.get("Notes"))
        if text is None:
            before = ((mapping or {}).get("details") or {}).get("notes")
            return (True, None) if note_participant(before) is not None else (False, None)
        try:
            return True, str(parse_participant(text))
        except ParticipantIdError as exc:
            who = (current or {}).get("customer_number") or f"QBO customer {record['Id']}"
            self.counts.errors.append(
                f"customer {who}: QBO's note names the Peppol participant {text!r}, which is "
                f"refused ({exc}); not taken"
            )
            return False, None

    def _apply_qbo(
        self,
        conn,
        local_id: int | None,
        record: dict,
        current: dict | None,
        mapping: dict | None = None,
    ) -> int:
        values = from_qbo(record, current)
        changed, participant = self._qbo_participant(record, current, mapping)
        if changed:
            values["peppol_participant"] = participant
        if local_id is None:
            local_id = conn.execute(
                insert(customers)
                .values(
                    organization_id=self.organization_id,
                    customer_number=f"QBO-{record['Id']}",
                    **values,
                )
                .returning(customers.c.id)
            ).scalar_one()
        else:
            conn.execute(update(customers).where(customers.c.id == local_id).values(**values))
        merged = {**(current or {}), **values}
        # the baseline is the customer as QBO has it: where its note lacks the id we keep (a
        # line refused, none written yet), ours differs from it and is pushed, the line written
        as_in_qbo = {**merged, "peppol_participant": participant if changed else None}
        self._map(conn, local_id, record, fingerprint(local_fields(as_in_qbo)))
        self.counts.pulled += 1
        return local_id

    # -- pull ---------------------------------------------------------------------------------

    def _apply_records(self, conn, records: list[dict]) -> list[tuple[dict, dict]]:
        """Apply QBO's versions; returns the customers whose newer local version must be pushed."""
        pushes: list[tuple[dict, dict]] = []
        local = self._local_rows(conn)
        by_local = mappings_by_local_id(conn, self.organization_id, "customer")
        by_qbo = {m["qbo_id"]: m for m in by_local.values()}
        held = held_qbo_ids(conn, self.organization_id, "customer")
        unmapped_by_name = {
            qbo_display_name(row["name"]).casefold(): row
            for cid, row in local.items()
            if cid not in by_local
        }
        for record in records:
            qbo_id = str(record["Id"])
            if qbo_id in held:
                self.counts.held += 1
                continue
            mapping = by_qbo.get(qbo_id)
            if mapping is None:
                twin = unmapped_by_name.pop(str(record.get("DisplayName", "")).casefold(), None)
                if twin is not None and (not twin.get("email") or _same_party(twin, record)):
                    # the participant id at the link: ours where we have one (QBO's note gets
                    # it: the baseline is QBO's), else the one QBO's note names, taken now
                    changed, theirs = self._qbo_participant(record, twin, None)
                    theirs = theirs if changed else None
                    if theirs and not twin.get("peppol_participant"):
                        conn.execute(
                            update(customers)
                            .where(customers.c.id == twin["id"])
                            .values(peppol_participant=theirs)
                        )
                        twin = {**twin, "peppol_participant": theirs}
                    self._map(
                        conn,
                        twin["id"],
                        record,
                        fingerprint(local_fields({**twin, "peppol_participant": theirs})),
                    )
                    self.counts.linked += 1
                else:
                    self._apply_qbo(conn, None, record, None)
                continue
            if str(record.get("SyncToken")) == mapping["sync_token"]:
                self.counts.unchanged += 1  # our own write coming back
                continue
            row = local.get(mapping["local_id"])
            if row is None:
                continue
            if fingerprint(local_fields(row)) == mapping["local_fingerprint"]:
                self._apply_qbo(conn, row["id"], record, row, mapping)
                continue
            decision = self._decide(conn, row, record)
            if decision == "qbo_won":
                self._apply_qbo(conn, row["id"], record, row, mapping)
            elif decision == "local_won":
                self._qbo_notes[row["id"]] = record.get("Notes") or ""
                pushes.append((row, record))
        return pushes

    def _decide(self, conn, row: dict, record: dict) -> str:
        """Both sides changed: the later wins; within the skew tolerance a person decides."""
        qbo_time = parse_qbo_time((record.get("MetaData") or {}).get("LastUpdatedTime"))
        local_time = row["updated_at"]
        if qbo_time is None or abs(qbo_time - local_time) <= self.skew:
            decision = "manual_review"
            reason = (
                "changed on both sides within the clock-skew tolerance "
                f"({self.skew.total_seconds():g} s): QBO {qbo_time}, ours {local_time}"
            )
            self.counts.held += 1
        elif qbo_time > local_time:
            decision, reason = (
                "qbo_won",
                f"changed on both sides; QBO's change ({qbo_time}) is later",
            )
        else:
            decision, reason = "local_won", f"changed on both sides; ours ({local_time}) is later"
        self._record_conflict(
            conn,
            row,
            record,
            decision=decision,
            reason=reason,
            local_version=local_fields(row) | {"updated_at": local_time},
        )
        self.counts.conflicts += 1
        return decision

    # -- push ---------------------------------------------------------------------------------

    def _push_update(self, row: dict, sync_token: str, *, retried: bool = False) -> None:
        mapping_fp = fingerprint(local_fields(row))
        with tenant_transaction(self.engine, self.organization_id) as conn:
            mapping = mappings_by_local_id(conn, self.organization_id, "customer")[row["id"]]
        try:
            record = self.client.sparse_update(
                "Customer",
                mapping["qbo_id"],
                sync_token,
                to_qbo(
                    local_fields(row),
                    tax_ids=self.writes_tax_ids([row], update=True),
                    update=True,
                    notes=self._notes_to_write(row, mapping),
                ),
                requestid=request_id(
                    "customer", self.organization_id, row["id"], mapping_fp, sync_token
                ),
            )
        except StaleObject:
            # QBO changed in between: read it again and decide again, once
            current = self.client.get("Customer", mapping["qbo_id"])
            if retried:
                self._failed(row, "QBO kept changing the customer while we updated it")
                return
            with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
                decision = self._decide(conn, row, current)
                if decision == "qbo_won":
                    self._apply_qbo(conn, row["id"], current, row, mapping)
            if decision == "local_won":
                self._qbo_notes[row["id"]] = current.get("Notes") or ""
                self._push_update(row, str(current["SyncToken"]), retried=True)
            return
        except QboError as exc:
            self._failed(row, str(exc))
            return
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            self._map(conn, row["id"], record, mapping_fp)
        self._qbo_notes.pop(row["id"], None)
        self.counts.pushed += 1

    def _notes_to_write(self, row: dict, mapping: dict) -> str | None:
        """QBO's note with our Peppol line, where that changes it (else None: the note is not
        sent). The note is QBO's at the SyncToken the write goes with: read in this run, or kept
        in the mapping; a mapping from before the line was written has none, and the customer is
        read once when there is a line to write."""
        participant = row.get("peppol_participant") or None
        if row["id"] in self._qbo_notes:
            before: str | None = self._qbo_notes[row["id"]]
        else:
            before = (mapping.get("details") or {}).get("notes")
        if before is None:
            if participant is None:
                return None
            before = self.client.get("Customer", mapping["qbo_id"]).get("Notes") or ""
        wanted = with_participant(before, participant)
        return None if wanted == before else wanted

    def _failed(self, row: dict, message: str) -> None:
        self.counts.failed += 1
        self.counts.errors.append(f"customer {row['customer_number']}: {message}")

    def push(self) -> None:
        with tenant_transaction(self.engine, self.organization_id) as conn:
            local = self._local_rows(conn)
            by_local = mappings_by_local_id(conn, self.organization_id, "customer")
            held = held_local_ids(conn, self.organization_id, "customer")
        new = [
            r for cid, r in local.items() if cid not in by_local and cid not in held and r["active"]
        ]
        changed = [
            r
            for cid, r in local.items()
            if cid in by_local
            and cid not in held
            and fingerprint(local_fields(r)) != by_local[cid]["local_fingerprint"]
        ]
        for start in range(0, len(new), MAX_BATCH):
            self._create_batch(new[start : start + MAX_BATCH])
        for row in changed:
            self._push_update(row, by_local[row["id"]]["sync_token"])

    def _create_batch(self, rows: list[dict]) -> None:
        fps = {r["id"]: fingerprint(local_fields(r)) for r in rows}
        tax_ids = self.writes_tax_ids(rows)
        duplicates = create_batch(
            self,
            "customer",
            "Customer",
            rows,
            lambda r: to_qbo(local_fields(r), tax_ids=tax_ids),
            fps,
            details_of=notes_details,
        )
        for row in duplicates:
            self._link_duplicate(row, fps[row["id"]])

    def _link_duplicate(self, row: dict, fp: str) -> None:
        found = self.client.query_all(
            "Customer", f"DisplayName = {quote(qbo_display_name(row['name']))}", order_by=""
        )
        with tenant_transaction(self.engine, self.organization_id, write=True) as conn:
            taken = {
                m["qbo_id"]
                for m in mappings_by_local_id(conn, self.organization_id, "customer").values()
            }
            match = next(
                (r for r in found if str(r["Id"]) not in taken and _same_party(row, r)), None
            )
            if match is not None:
                self._map(conn, row["id"], match, fp)
                self._record_conflict(
                    conn,
                    row,
                    match,
                    decision="linked",
                    reason=f"DisplayName {row['name']!r} exists in QBO with the same e-mail or VAT "
                    "id: linked to it",
                    local_version=local_fields(row),
                )
                self.counts.linked += 1
                return
            self._record_conflict(
                conn,
                row,
                found[0] if found else None,
                decision="manual_review",
                reason=f"DisplayName {row['name']!r} is used in QBO by another party "
                "(different e-mail and VAT id)",
                local_version=local_fields(row),
            )
            self.counts.conflicts += 1
            self.counts.held += 1


def sync_customers(
    engine: Engine, organization: Organization, client: QboClient, **kwargs
) -> SyncCounts:
    return CustomerSync(engine, organization.id, client, **kwargs).run()


def resolve_conflict(
    engine: Engine,
    organization_id: int,
    conflict_id: int,
    *,
    keep: str,
    resolved_by: str,
    client: QboClient | None = None,
) -> dict:
    """Close an open conflict: `keep` "local" pushes our version, "qbo" takes QBO's (for customers
    this needs `client`); for other entities it only records the person's decision."""
    if keep not in ("local", "qbo"):
        raise ValueError("keep must be 'local' or 'qbo'")
    with tenant_transaction(engine, organization_id) as conn:
        conflict = (
            conn.execute(
                select(sync_conflicts).where(
                    sync_conflicts.c.organization_id == organization_id,
                    sync_conflicts.c.id == conflict_id,
                )
            )
            .mappings()
            .first()
        )
    if conflict is None:
        raise LookupError(f"no conflict {conflict_id} in this organization")
    if conflict["status"] != "open":
        raise ValueError(f"conflict {conflict_id} is already resolved")
    if conflict["entity"] == "customer" and client is not None:
        # a both-sides edit of a linked customer; a DisplayName clash (no mapping) is resolved by
        # renaming one of the two, after which the next sync creates ours
        with tenant_transaction(engine, organization_id) as conn:
            mapped = mappings_by_local_id(conn, organization_id, "customer").get(
                conflict["local_id"]
            )
            row = (
                conn.execute(select(customers).where(customers.c.id == conflict["local_id"]))
                .mappings()
                .first()
            )
        if mapped is not None and row is not None:
            row = dict(row)
            sync = CustomerSync(engine, organization_id, client)
            current = client.get("Customer", mapped["qbo_id"])
            _close(engine, organization_id, conflict_id, keep, resolved_by)
            if keep == "qbo":
                with tenant_transaction(engine, organization_id, write=True) as conn:
                    sync._apply_qbo(conn, row["id"], current, row, mapped)
            else:
                sync._qbo_notes[row["id"]] = current.get("Notes") or ""
                sync._push_update(row, str(current["SyncToken"]))
            return {"conflict": conflict_id, "kept": keep, **sync.counts.as_dict()}
    _close(engine, organization_id, conflict_id, keep, resolved_by)
    return {"conflict": conflict_id, "kept": keep}


def _close(engine: Engine, organization_id: int, conflict_id: int, keep: str, by: str) -> None:
    with tenant_transaction(engine, organization_id, write=True) as conn:
        conn.execute(
            update(sync_conflicts)
            .where(sync_conflicts.c.id == conflict_id)
            .values(
                status="resolved",
                decision="kept_local" if keep == "local" else "kept_qbo",
                resolved_by=by,
                resolved_at=datetime.now(UTC),
            )
        )
