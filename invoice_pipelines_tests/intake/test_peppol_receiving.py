"""Receiving over Peppol (intake/domain/peppol_inbound.py) on SQLite and PostgreSQL: the official Peppol
examples, each in an SBDH envelope addressed to an organization's participant id, become that
organization's uploads and leave the intake VALIDATED, judged by CEN's and OpenPEPPOL's rules; a
replay of an InstanceIdentifier registers nothing; a receiver no organization has is kept and
routed once one has it; a broken envelope is refused with one sentence and leaves no trace."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import (
    incoming_invoices,
    organizations,
    peppol_received,
    processing_errors,
    uploads,
)
from invoice_pipelines.db.tenancy import find_organization, system_transaction, tenant_transaction
from invoice_pipelines.einvoice import verdict
from invoice_pipelines.intake.domain.parse import ParseOutcome, parse_document
from invoice_pipelines.intake.domain.peppol_inbound import (
    DUPLICATE,
    REGISTERED,
    REPLAY,
    UNKNOWN_RECEIVER,
    ReceiveRefused,
    receive_peppol,
    seller_address,
)
from invoice_pipelines.intake.domain.pipeline import process_documents
from invoice_pipelines.intake.domain.uploads import ScanState, scan_uploads
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines_tests.conftest import PEPPOL_RULES_DIR, PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.einvoice.test_sbdh import wrap
from invoice_pipelines_tests.intake.peppol_examples import example

SAMPLES = sorted(PEPPOL_SAMPLES_DIR.glob("*.xml")) if PEPPOL_SAMPLES_DIR.is_dir() else []


@pytest.fixture(autouse=True)
def _peppol_rules():
    if not (PEPPOL_RULES_DIR / "PEPPOL-EN16931-UBL.xsl").is_file() or not SAMPLES:
        pytest.skip(f"Peppol rules or samples not found beside the repo ({PEPPOL_RULES_DIR})")


class InProcessParser:
    def parse_many(self, items: list[tuple[bytes, str]]) -> list[ParseOutcome]:
        return [parse_document(data, filename) for data, filename in items]


def _participant() -> str:
    """A participant id no other test's organization has (9930: a German VAT number)."""
    return f"9930:DE{uuid.uuid4().int % 10**9:09d}"


def _organization(db) -> dict:
    return db.new_organization(peppol_participant=_participant())


def _store(tmp_path: Path) -> LocalUploads:
    return LocalUploads(str(tmp_path / "uploads"))


def _documents(db, org) -> list[dict]:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return [
            dict(row)
            for row in conn.execute(
                select(incoming_invoices)
                .where(incoming_invoices.c.organization_id == org["id"])
                .order_by(incoming_invoices.c.id)
            ).mappings()
        ]


def _count(db, table, **where) -> int:
    with system_transaction(db.engine) as conn:
        query = select(func.count()).select_from(table)
        for name, value in where.items():
            query = query.where(table.c[name] == value)
        return conn.execute(query).scalar_one()


def _message(db, key: str) -> dict:
    with system_transaction(db.engine) as conn:
        return dict(
            conn.execute(
                select(peppol_received).where(peppol_received.c.instance_identifier == key)
            )
            .mappings()
            .one()
        )


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_an_official_example_received_over_peppol_ends_validated(db, tmp_path, path: Path):
    org, store = _organization(db), _store(tmp_path)
    key, data = str(uuid.uuid4()), example(path)
    # sent by its seller (test_peppol_sender.py: by anyone else, it waits for a person)
    envelope = wrap(
        data,
        receiver=org["peppol_participant"],
        sender=seller_address(data),
        instance_identifier=key,
    )

    received = receive_peppol(db.engine, store, envelope)

    assert received.outcome == REGISTERED, received.message
    assert (received.organization, received.instance_identifier) == (org["slug"], key)
    [document] = _documents(db, org)
    assert document["id"] == received.document_id and document["status"] == "UPLOADED"
    message = _message(db, key)
    assert (message["state"], message["envelope"]) == ("registered", "sbdh")
    assert (message["organization_id"], message["incoming_invoice_id"]) == (
        org["id"],
        document["id"],
    )
    assert message["receiver"] == org["peppol_participant"]
    assert message["country"] == "SE" and message["held_document"] is None

    # the upload sensor dispatches it as it does a dropped file; the drop zone holds nothing
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    assert [b.document_ids for b in scan.batches] == [[document["id"]]]
    assert scan.registered == 0 and scan.waiting == 0 and scan.errors == []

    organization = find_organization(db.engine, org["slug"])
    process_documents(
        db.engine, store, organization, [document["id"]], parser=InProcessParser(), ocr=None
    )
    [document] = _documents(db, org)
    assert document["status"] == "VALIDATED", document
    assert document["einvoice_class"] == "valid_einvoice"
    judged = document["raw_json"]["verdict"]
    assert judged["sources"]["peppol"] == verdict.CHECKED
    assert judged["sources"]["en16931"] == verdict.CHECKED
    assert judged["cius_rules"] == []
    with tenant_transaction(db.engine, org["id"]) as conn:
        errors = conn.execute(
            select(processing_errors.c.stage, processing_errors.c.rule_id).where(
                processing_errors.c.incoming_invoice_id == document["id"],
                processing_errors.c.severity == "error",
            )
        ).all()
    assert errors == []


def test_an_official_example_as_published_waits_for_its_made_up_bank_details(db, tmp_path):
    """base-example.xml as OpenPEPPOL publishes it asks to be paid to `IBAN32423940` at BIC
    `BIC324098`: valid by every official rule, and held for a person (IP-PAY-02: no BIC; its
    account is not written as an IBAN, which EN 16931 allows outside SEPA) and for nothing else."""
    org, store = _organization(db), _store(tmp_path)
    data = (PEPPOL_SAMPLES_DIR / "base-example.xml").read_bytes()
    envelope = wrap(data, receiver=org["peppol_participant"], sender=seller_address(data))
    received = receive_peppol(db.engine, store, envelope)
    organization = find_organization(db.engine, org["slug"])
    process_documents(
        db.engine, store, organization, [received.document_id], parser=InProcessParser(), ocr=None
    )
    [document] = _documents(db, org)
    assert document["status"] == "NEEDS_REVIEW"
    assert document["einvoice_class"] == "valid_einvoice"
    with tenant_transaction(db.engine, org["id"]) as conn:
        rules = conn.execute(
            select(processing_errors.c.rule_id).where(
                processing_errors.c.incoming_invoice_id == document["id"],
                processing_errors.c.resolved_at.is_(None),
            )
        ).scalars()
        assert sorted(set(rules)) == ["IP-PAY-02"]


def test_a_replay_of_an_instance_identifier_creates_nothing(db, tmp_path):
    org, store = _organization(db), _store(tmp_path)
    key = str(uuid.uuid4())
    envelope = wrap(
        example(PEPPOL_SAMPLES_DIR / "base-example.xml"),
        receiver=f"iso6523-actorid-upis::{org['peppol_participant'].lower()}",
        instance_identifier=key,
    )
    first = receive_peppol(db.engine, store, envelope)
    again = receive_peppol(db.engine, store, envelope)

    assert first.outcome == REGISTERED
    assert again.outcome == REPLAY
    assert (again.message_id, again.document_id, again.organization) == (
        first.message_id,
        first.document_id,
        org["slug"],
    )
    assert "received before" in again.message and "nothing new" in again.message
    assert len(_documents(db, org)) == 1
    assert _count(db, uploads, organization_id=org["id"]) == 1
    assert _count(db, peppol_received, instance_identifier=key) == 1
    # the archive holds the one original, the drop zone nothing
    folder = tmp_path / "uploads" / org["slug"]
    assert [p.name for p in folder.iterdir()] == [".archive"]
    assert len(list((folder / ".archive").iterdir())) == 1


def test_the_same_document_under_a_new_instance_identifier_is_a_duplicate_upload(db, tmp_path):
    org, store = _organization(db), _store(tmp_path)
    data = example(PEPPOL_SAMPLES_DIR / "Vat-category-S.xml")
    first = receive_peppol(db.engine, store, wrap(data, receiver=org["peppol_participant"]))
    second = receive_peppol(db.engine, store, wrap(data, receiver=org["peppol_participant"]))
    assert (first.outcome, second.outcome) == (REGISTERED, DUPLICATE)
    assert second.document_id == first.document_id
    assert len(_documents(db, org)) == 1
    assert _count(db, uploads, organization_id=org["id"], status="duplicate") == 1


def test_an_unknown_receiver_is_kept_and_routed_once_an_organization_has_the_id(db, tmp_path):
    store, nobody = _store(tmp_path), _participant()
    key = str(uuid.uuid4())
    envelope = wrap(
        example(PEPPOL_SAMPLES_DIR / "base-example.xml"),
        receiver=nobody,
        instance_identifier=key,
    )
    held = receive_peppol(db.engine, store, envelope)
    assert held.outcome == UNKNOWN_RECEIVER
    assert held.organization is None and held.document_id is None
    assert f"no organization has the Peppol participant id {nobody}" in held.message
    message = _message(db, key)
    assert (message["state"], message["organization_id"]) == ("unknown_receiver", None)
    assert message["held_document"] and b"Snippet1" in message["held_document"]
    assert nobody in message["error"]

    # still nobody's: received again, still kept, still one row
    assert receive_peppol(db.engine, store, envelope).outcome == UNKNOWN_RECEIVER
    assert _count(db, peppol_received, instance_identifier=key) == 1

    org = db.new_organization()
    with system_transaction(db.engine, write=True) as conn:
        conn.execute(
            update(organizations)
            .where(organizations.c.id == org["id"])
            .values(peppol_participant=nobody)
        )
    routed = receive_peppol(db.engine, store, envelope)
    assert routed.outcome == REGISTERED and routed.organization == org["slug"]
    assert routed.message_id == held.message_id
    message = _message(db, key)
    assert (message["state"], message["organization_id"]) == ("registered", org["id"])
    assert message["held_document"] is None and message["error"] is None
    assert [d["id"] for d in _documents(db, org)] == [routed.document_id]
    assert receive_peppol(db.engine, store, envelope).outcome == REPLAY


def test_held_messages_are_routed_from_their_copies_once_the_organization_has_the_id(
    db, tmp_path, monkeypatch, capsys
):
    """Messages for an id no organization had are kept with their documents; once a person gives
    an organization that id (`peppol participant`), `peppol route` registers them from the copies,
    without the access point sending them again: each once, then read by the intake as any
    received document. A message held for another id stays held."""
    store, awaited, elsewhere = _store(tmp_path), _participant(), _participant()
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    key, other_key = str(uuid.uuid4()), str(uuid.uuid4())
    sample = example(PEPPOL_SAMPLES_DIR / "Allowance-example.xml")
    held = [
        receive_peppol(db.engine, store, wrap(sample, receiver=awaited, instance_identifier=key)),
        receive_peppol(db.engine, store, _bare(awaited)),
        receive_peppol(
            db.engine, store, wrap(sample, receiver=elsewhere, instance_identifier=other_key)
        ),
    ]
    assert [h.outcome for h in held] == [UNKNOWN_RECEIVER] * 3
    org = db.new_organization()
    assert main(["peppol", "route", "--org", org["slug"]]) == 2  # no participant id yet
    assert "has no Peppol participant id" in capsys.readouterr().err

    assert main(["peppol", "participant", "--org", org["slug"], awaited.lower()]) == 0
    said = capsys.readouterr().out
    assert f"note: 2 message(s) received for {awaited.lower()} before are held" in said
    assert f"peppol route --org {org['slug']}" in said
    assert main(["peppol", "route", "--org", org["slug"], "--json"]) == 0
    routed = json.loads(capsys.readouterr().out)
    assert sorted((r["outcome"], r["instance_identifier"]) for r in routed) == sorted(
        [(REGISTERED, key), (REGISTERED, held[1].instance_identifier)]
    )
    assert {r["message_id"] for r in routed} == {held[0].message_id, held[1].message_id}
    message = _message(db, key)
    assert (message["state"], message["organization_id"]) == ("registered", org["id"])
    assert (message["envelope"], message["receiver"], message["held_document"]) == (
        "sbdh",
        awaited,
        None,
    )
    assert _message(db, held[1].instance_identifier)["envelope"] == "bare"
    assert _message(db, other_key)["state"] == UNKNOWN_RECEIVER

    # routed once: again, and the access point's own resend, change nothing
    assert main(["peppol", "route", "--org", org["slug"], "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    resent = receive_peppol(
        db.engine, store, wrap(sample, receiver=awaited, instance_identifier=key)
    )
    assert resent.outcome == REPLAY
    documents = _documents(db, org)
    assert sorted(d["id"] for d in documents) == sorted(r["document_id"] for r in routed)

    # the intake reads them as any received document
    scan = scan_uploads(
        db.engine, store, ScanState(), system=db.system_engine, only_organizations={org["slug"]}
    )
    assert sorted(i for b in scan.batches for i in b.document_ids) == sorted(
        d["id"] for d in documents
    )
    organization = find_organization(db.engine, org["slug"])
    process_documents(
        db.engine, store, organization, [d["id"] for d in documents], parser=InProcessParser(),
        ocr=None,
    )  # fmt: skip
    assert {d["status"] for d in _documents(db, org)} == {"VALIDATED"}


def _bare(buyer: str) -> bytes:
    """An official example as a bare document whose buyer's electronic address (BT-49) is
    `buyer` (the example's own is 0192:987654325)."""
    scheme, value = buyer.split(":", 1)
    data = example(PEPPOL_SAMPLES_DIR / "vat-category-O.xml")
    stated = b'<cbc:EndpointID schemeID="0192">987654325</cbc:EndpointID>'
    assert stated in data
    return data.replace(
        stated, f'<cbc:EndpointID schemeID="{scheme}">{value}</cbc:EndpointID>'.encode()
    )


def test_a_bare_document_goes_to_its_buyer_or_to_org_and_org_may_not_contradict(db, tmp_path):
    store = _store(tmp_path)
    buyer = _organization(db)
    bare = _bare(buyer["peppol_participant"])
    received = receive_peppol(db.engine, store, bare)
    assert received.outcome == REGISTERED and received.organization == buyer["slug"]
    assert received.instance_identifier.startswith("sha256:")
    assert [d["id"] for d in _documents(db, buyer)] == [received.document_id]
    assert _message(db, received.instance_identifier)["envelope"] == "bare"
    assert receive_peppol(db.engine, store, bare).outcome == REPLAY

    # a buyer no organization is: --org says whose it is
    chosen = db.new_organization()
    unaddressed = _bare(_participant())
    assert receive_peppol(db.engine, store, unaddressed).outcome == UNKNOWN_RECEIVER
    routed = receive_peppol(
        db.engine, store, unaddressed, organization=find_organization(db.engine, chosen["slug"])
    )
    assert routed.outcome == REGISTERED and routed.organization == chosen["slug"]

    # --org against the envelope's receiver: refused, nothing recorded
    addressed, other = _organization(db), db.new_organization()
    key = str(uuid.uuid4())
    envelope = wrap(_bare(_participant()), receiver=addressed["peppol_participant"],
                    instance_identifier=key)  # fmt: skip
    with pytest.raises(ReceiveRefused, match=f"the Peppol participant id of {addressed['slug']}"):
        receive_peppol(
            db.engine, store, envelope, organization=find_organization(db.engine, other["slug"])
        )
    assert _documents(db, other) == [] and _documents(db, addressed) == []
    assert _count(db, peppol_received, instance_identifier=key) == 0


def test_a_broken_envelope_is_refused_with_a_clear_error_and_leaves_no_trace(db, tmp_path):
    org, store = _organization(db), _store(tmp_path)
    key = str(uuid.uuid4())
    envelope = wrap(
        example(PEPPOL_SAMPLES_DIR / "base-example.xml"),
        receiver=org["peppol_participant"],
        instance_identifier=key,
    )
    broken = envelope.replace(b"</StandardBusinessDocumentHeader>", b"", 1)
    with pytest.raises(ReceiveRefused, match="not a Peppol document: "):
        receive_peppol(db.engine, store, broken)
    assert _count(db, peppol_received, instance_identifier=key) == 0
    assert _documents(db, org) == []
    assert not (tmp_path / "uploads" / org["slug"]).exists()


def test_the_command_receives_once_and_says_what_it_did(
    sqlite_database, tmp_path, monkeypatch, capsys
):
    db = sqlite_database
    org = _organization(db)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", db.url)
    monkeypatch.setenv("INVOICE_PIPELINES_UPLOAD_DIR", str(tmp_path / "uploads"))
    path = tmp_path / "message.xml"
    key = str(uuid.uuid4())
    sample = example(PEPPOL_SAMPLES_DIR / "base-creditnote-correction.xml")
    path.write_bytes(wrap(sample, receiver=org["peppol_participant"], instance_identifier=key))

    assert main(["peppol", "receive", str(path), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert (said["outcome"], said["organization"]) == ("registered", org["slug"])
    assert main(["peppol", "receive", str(path)]) == 0
    assert capsys.readouterr().out.startswith(f"replay: {key} was received before")
    assert len(_documents(db, org)) == 1

    path.write_bytes(wrap(sample, receiver=_participant()))
    assert main(["peppol", "receive", str(path)]) == 1
    assert "no organization has the Peppol participant id" in capsys.readouterr().out

    path.write_bytes(b"<StandardBusinessDocument xmlns='urn:nothing'/>")
    assert main(["peppol", "receive", str(path)]) == 2
    assert "not a UBL Invoice or CreditNote" in capsys.readouterr().err


def test_the_command_imports_no_dagster_alembic_or_other_areas(db, tmp_path):
    """Run as a person runs it, in a fresh interpreter: `receive` registered the document,
    `route` found nothing held, and neither loaded Dagster, Alembic or an area beside the intake
    (test_cli_lazy.py's check)."""
    from invoice_pipelines_tests.test_cli_lazy import _check_imports, _run_each

    org = _organization(db)
    path = tmp_path / "message.xml"
    sample = example(PEPPOL_SAMPLES_DIR / "vat-category-E.xml")
    path.write_bytes(wrap(sample, receiver=org["peppol_participant"]))
    commands = {
        "peppol receive": (["peppol", "receive", str(path)], {"intake"}, 0),
        "peppol route": (["peppol", "route", "--org", org["slug"]], {"intake"}, 0),
    }
    settings = {
        "INVOICE_PIPELINES_STORAGE": "local",
        "INVOICE_PIPELINES_UPLOAD_DIR": str(tmp_path / "uploads"),
    }
    ran = _run_each([argv for argv, _, _ in commands.values()], db.url, **settings)
    found = dict(zip(commands, ran, strict=True))
    _check_imports(commands, found)
    assert found["peppol receive"][1].startswith("registered: "), found["peppol receive"][1]
    assert f"0 held message(s) for {org['slug']} routed" in found["peppol route"][1]
    assert [d["status"] for d in _documents(db, org)] == ["UPLOADED"]
