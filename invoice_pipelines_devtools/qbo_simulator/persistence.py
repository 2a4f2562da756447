"""Optional persistence of the simulator's state to one JSON file in a data directory, so the demo's
companies, records (attachments' files too, base64) and tokens survive a restart. Written atomically (temporary file, rename).
Requestid replies and the request log are not kept."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from invoice_pipelines_devtools.qbo_simulator import wire
from invoice_pipelines_devtools.qbo_simulator.auth import AccessToken, App, Grant, RefreshToken
from invoice_pipelines_devtools.qbo_simulator.company import (
    NAME_FIELDS,
    Company,
    Settings,
)
from invoice_pipelines_devtools.qbo_simulator.records import Record, Tombstone

FILE = "qbo-simulator.json"
VERSION = 1


def save(sim, data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    # each part is serialized while its lock is held: requests change these dicts in place
    companies: list[bytes] = []
    for company in list(sim.companies.values()):
        with company.lock:
            companies.append(
                wire.dumps(
                    {
                        "realm_id": company.realm_id,
                        "name": company.name,
                        "tz_offset": company.tz_offset,
                        "currency": company.currency,
                        "country": company.country,
                        "settings": dict(company.settings.__dict__),
                        "next_ids": dict(company.next_ids),
                        "next_doc_number": company.next_doc_number,
                        "records": {
                            entity: [
                                {"data": r.data, "created": r.created, "updated": r.updated}
                                for r in records.values()
                            ]
                            for entity, records in company.records.items()
                        },
                        "tombstones": [t.__dict__ for t in company.tombstones],
                        "file_secret": company.file_secret,
                        "files": {
                            attachable_id: base64.b64encode(content).decode("ascii")
                            for attachable_id, content in company.files.items()
                        },
                    }
                )
            )
    tokens = sim.tokens
    with tokens.lock:
        grants: list[Grant] = []
        index: dict[int, int] = {}

        def grant_no(grant: Grant) -> int:
            if id(grant) not in index:
                index[id(grant)] = len(grants)
                grants.append(grant)
            return index[id(grant)]

        refresh = [
            {
                "value": t.value,
                "grant": grant_no(t.grant),
                "issued": t.issued,
                "superseded": t.superseded,
            }
            for t in tokens.refresh_tokens.values()
        ]
        access = [
            {"value": t.value, "grant": grant_no(t.grant), "expires": t.expires}
            for t in tokens.access_tokens.values()
        ]
        rest = wire.dumps(
            {
                "apps": [a.__dict__ for a in tokens.apps.values()],
                "grants": [g.__dict__ for g in grants],
                "refresh_tokens": refresh,
                "access_tokens": access,
            }
        )
    head = b'{"version":%d,"companies":[' % VERSION
    state = head + b",".join(companies) + b"]," + rest[1:]
    path = data_dir / FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(state)
    os.replace(temporary, path)
    return path


def load(sim, data_dir: Path) -> bool:
    path = data_dir / FILE
    if not path.exists():
        return False
    state = wire.loads(path.read_bytes())
    if state.get("version") != VERSION:
        raise ValueError(f"{path} was written by another simulator version")
    for saved in state["companies"]:
        company = Company(
            saved["realm_id"],
            sim.clock.now,
            name=saved["name"],
            tz_offset=saved["tz_offset"],
            currency=saved["currency"],
            country=saved["country"],
            settings=Settings(**saved["settings"]),
        )
        # a state saved before an entity existed (CreditMemo) starts that entity at 1
        company.next_ids.update({k: int(v) for k, v in saved["next_ids"].items()})
        company.next_doc_number = int(saved["next_doc_number"])
        for entity, records in saved["records"].items():
            company.records[entity] = {}
            for item in records:
                record = Record(
                    entity, item["data"], float(item["created"]), float(item["updated"])
                )
                company.records[entity][record.id] = record
        for index in company.names.values():
            index.clear()
        for entity in NAME_FIELDS:
            for record in company.records[entity].values():
                company._index_name(record)
        for form, index in company.doc_numbers.items():
            index.clear()
            for record in company.records[form].values():
                company._index_doc_number(record)
        # a company saved before the payables existed gets the accounts a new one has (its
        # terms are there already: the state had none to replace them)
        company.add_missing_accounts(sim.clock.now())
        # a state saved before attachments existed has no files and keeps the new key
        company.file_secret = saved.get("file_secret") or company.file_secret
        company.files = {k: base64.b64decode(v) for k, v in (saved.get("files") or {}).items()}
        company.tombstones = [
            Tombstone(t["entity"], t["id"], float(t["deleted"])) for t in saved["tombstones"]
        ]
        sim.attach(company)
    tokens = sim.tokens
    for app in state["apps"]:
        tokens.apps[app["client_id"]] = App(**app)
    grants = [
        Grant(g["client_id"], g["realm_id"], float(g["started"]), g["revoked"])
        for g in state["grants"]
    ]
    for t in state["refresh_tokens"]:
        tokens.refresh_tokens[t["value"]] = RefreshToken(
            t["value"],
            grants[t["grant"]],
            float(t["issued"]),
            None if t["superseded"] is None else float(t["superseded"]),
        )
    for t in state["access_tokens"]:
        tokens.access_tokens[t["value"]] = AccessToken(
            t["value"], grants[t["grant"]], float(t["expires"])
        )
    return True
