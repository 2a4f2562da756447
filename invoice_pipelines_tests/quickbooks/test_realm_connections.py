"""A QuickBooks company is one organization's: connecting a second organization to a company
another one is connected to is refused, saying which; a reconnect of the same organization, and
a connect after the other's connection was revoked, go through. Two connects at once cannot both
pass (one waits for the other's transaction: `Lock.QBO_REALM`).

Before, `save_connection` stored the second connection without a word: the webhook receiver then
routed the company's notifications to one of the two organizations only (a dict by realm), and
each organization counted only its own requests against the company's one QBO limit. Connections
that already share a company (made before the check) each get the company's notifications."""

from __future__ import annotations

import base64
import threading
import uuid

import pytest
from sqlalchemy import select, update

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.errors import RealmInUse
from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher
from invoice_pipelines.quickbooks.domain.webhooks import Notice, request_pulls

CIPHER = token_cipher(base64.urlsafe_b64encode(b"r" * 32).decode())


def new_realm() -> str:
    return f"9130{uuid.uuid4().int % 10**12:012d}"


def connect(db, org: dict, realm: str, refresh: str = "refresh") -> None:
    save_connection(
        db.engine,
        org["id"],
        system=db.system_engine,
        realm_id=realm,
        client_id="client",
        client_secret="secret",
        refresh_token=refresh,
        cipher=CIPHER,
    )


def realm_of(db, org: dict) -> str | None:
    with tenant_transaction(db.engine, org["id"]) as conn:
        return conn.execute(
            select(qbo_connections.c.realm_id).where(qbo_connections.c.organization_id == org["id"])
        ).scalar()


def test_a_company_connected_to_one_organization_is_refused_to_another(db):
    first, second = db.new_organization(), db.new_organization()
    realm = new_realm()
    connect(db, first, realm)
    with pytest.raises(RealmInUse, match=rf"{realm} is already connected to organization "):
        connect(db, second, realm)
    assert realm_of(db, second) is None  # nothing stored for the refused one
    # the organization's own reconnect (new tokens after a new consent) is no conflict
    connect(db, first, realm, refresh="after-a-new-consent")
    assert realm_of(db, first) == realm
    # another company for the second organization is no conflict either
    other = new_realm()
    connect(db, second, other)
    assert realm_of(db, second) == other


def test_the_refusal_names_the_organization_connected(db):
    first, second = db.new_organization(), db.new_organization()
    realm = new_realm()
    connect(db, first, realm)
    with pytest.raises(RealmInUse) as refused:
        connect(db, second, realm)
    assert repr(first["slug"]) in str(refused.value)


def test_after_the_other_connection_is_revoked_the_company_can_be_connected(db):
    first, second = db.new_organization(), db.new_organization()
    realm = new_realm()
    connect(db, first, realm)
    with tenant_transaction(db.engine, first["id"], write=True) as conn:
        conn.execute(
            update(qbo_connections)
            .where(qbo_connections.c.organization_id == first["id"])
            .values(status="revoked")
        )
    connect(db, second, realm)
    assert realm_of(db, second) == realm
    # and now the first cannot take it back while the second holds it
    with pytest.raises(RealmInUse, match=repr(second["slug"])):
        connect(db, first, realm)


def test_two_connects_at_once_to_one_company_store_one(pg_database):
    db = pg_database
    realm = new_realm()
    orgs = [db.new_organization() for _ in range(4)]
    start = threading.Barrier(len(orgs))
    outcomes: dict[int, str] = {}

    def attempt(org: dict) -> None:
        start.wait()
        try:
            connect(db, org, realm)
            outcomes[org["id"]] = "connected"
        except RealmInUse:
            outcomes[org["id"]] = "refused"

    threads = [threading.Thread(target=attempt, args=(org,)) for org in orgs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["connected", "refused", "refused", "refused"]
    holders = [org for org in orgs if realm_of(db, org) == realm]
    assert [outcomes[org["id"]] for org in holders] == ["connected"]


def test_qbo_connect_refuses_with_a_message_and_exit_code_1(sqlite_database, monkeypatch, capsys):
    first, second = sqlite_database.new_organization(), sqlite_database.new_organization()
    realm = new_realm()
    connect(sqlite_database, first, realm)
    monkeypatch.setenv("INVOICE_PIPELINES_DB_URL", sqlite_database.url)
    monkeypatch.setenv(
        "INVOICE_PIPELINES_QBO_TOKEN_KEY", base64.urlsafe_b64encode(b"r" * 32).decode()
    )
    monkeypatch.setenv("QBO_CLIENT_SECRET", "secret")
    monkeypatch.setenv("QBO_REFRESH_TOKEN", "refresh")
    argv = ["qbo-connect", "--org", second["slug"], "--realm", realm, "--client-id", "client"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"already connected to organization {first['slug']!r}" in err
    assert realm_of(sqlite_database, second) is None


def test_organizations_that_already_share_a_company_each_get_its_notifications(db):
    """Connections made before the check: both stay, and a notification asks both to pull."""
    first, second = db.new_organization(), db.new_organization()
    realm = new_realm()
    connect(db, first, realm)
    with tenant_transaction(db.engine, second["id"], write=True) as conn:  # as an old version did
        conn.execute(
            qbo_connections.insert().values(
                organization_id=second["id"],
                realm_id=realm,
                client_id="client",
                client_secret_enc="x",
                refresh_token_enc="x",
                status="active",
                settings={},
            )
        )
    requested = request_pulls(
        db.engine, db.system_engine, [Notice(realm, "customer", "1", "Update")]
    )
    assert set(requested) == {first["id"], second["id"]}
