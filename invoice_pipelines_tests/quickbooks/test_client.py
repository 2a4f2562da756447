"""The production client against the simulator over real HTTP: auth, paging, faults, CDC."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from invoice_pipelines.db.tables import qbo_connections
from invoice_pipelines.db.tenancy import tenant_transaction
from invoice_pipelines.quickbooks.domain.client import MAX_BATCH, request_id
from invoice_pipelines.quickbooks.domain.errors import (
    DuplicateName,
    ObjectNotFound,
    QboError,
    StaleObject,
    TokenError,
)
from invoice_pipelines_tests.quickbooks.conftest import TOKEN_KEY


def test_every_call_carries_minorversion_75_and_a_bearer_token(qbo):
    with qbo.client() as client:
        info = client.get("CompanyInfo", "1")
    assert info["Id"] == "1"
    logged = qbo.sim.requests(qbo.realm, limit=5)
    assert logged and all(r["params"].get("minorversion") == "75" for r in logged)


def test_tokens_are_stored_encrypted_and_never_in_a_repr(qbo):
    with qbo.client() as client:
        client.get("CompanyInfo", "1")  # the first call refreshes and stores a new pair
        connection = client.tokens.connection()
    with tenant_transaction(qbo.engine, qbo.org_id) as conn:
        row = (
            conn.execute(
                select(qbo_connections).where(qbo_connections.c.organization_id == qbo.org_id)
            )
            .mappings()
            .one()
        )
    stored = " ".join(str(v) for v in row.values())
    assert connection.refresh_token and connection.refresh_token not in stored
    assert connection.access_token not in stored
    assert qbo.company.client_secret not in stored
    assert connection.refresh_token not in repr(connection)
    assert TOKEN_KEY not in stored


def test_an_expired_access_token_is_refreshed_and_the_rotated_refresh_token_kept(qbo):
    with qbo.client() as client:
        client.get("CompanyInfo", "1")
        first = client.tokens.connection()
        qbo.sim.sim.expire_access_tokens(qbo.realm)
        client.tokens._cached = None
        client.get("CompanyInfo", "1")  # 401 -> refresh -> repeated
        second = client.tokens.connection()
    assert second.token_version == first.token_version + 1
    assert second.refresh_token != first.refresh_token
    # the stored refresh token is the one that works: a new client refreshes with it
    qbo.sim.configure(refresh_grace=0)
    try:
        with qbo.client() as client:
            qbo.sim.sim.expire_access_tokens(qbo.realm)
            client.get("CompanyInfo", "1")
    finally:
        qbo.sim.configure(refresh_grace=86400)


def test_a_refused_refresh_token_is_one_clear_error_and_recorded(qbo):
    qbo.sim.configure(refresh_grace=0)
    try:
        with qbo.client() as client:
            client.get("CompanyInfo", "1")
        # someone with an old copy of the tokens (a restored backup) tries to refresh
        from invoice_pipelines.quickbooks.domain.tokens import save_connection, token_cipher

        save_connection(
            qbo.engine,
            qbo.org_id,
            system=qbo.db.system_engine,
            realm_id=qbo.realm,
            client_id=qbo.company.client_id,
            client_secret=qbo.company.client_secret,
            refresh_token=qbo.company.refresh_token,
            cipher=token_cipher(TOKEN_KEY),
        )
        with qbo.client() as client, pytest.raises(TokenError, match="invalid_grant"):
            client.get("CompanyInfo", "1")
        with tenant_transaction(qbo.engine, qbo.org_id) as conn:
            error = conn.execute(
                select(qbo_connections.c.last_error).where(
                    qbo_connections.c.organization_id == qbo.org_id
                )
            ).scalar_one()
        assert "invalid_grant" in error
    finally:
        qbo.sim.configure(refresh_grace=86400)


def test_query_pages_beyond_1000_records_and_includes_inactive(qbo, simulator):
    for n in range(1205):
        simulator.create_as_user(
            qbo.realm, "Customer", {"DisplayName": f"Kunde {n:04d}", "Active": n % 100 != 0}
        )
    with qbo.client() as client:
        pages = list(client.query_pages("Customer"))
    assert [len(page) for _, page in pages] == [1000, 205]
    names = {r["DisplayName"] for _, page in pages for r in page}
    assert len(names) == 1205 and "Kunde 0100" in names  # inactive ones too


def test_typed_errors_for_stale_sync_token_duplicate_name_and_not_found(qbo):
    with qbo.client() as client:
        created = client.create(
            "Customer", {"DisplayName": "Stale GmbH"}, requestid=request_id("t", qbo.realm, 1)
        )
        client.sparse_update(
            "Customer",
            created["Id"],
            created["SyncToken"],
            {"Notes": "a"},
            requestid="r1-" + qbo.realm,
        )
        with pytest.raises(StaleObject) as stale:
            client.sparse_update(
                "Customer",
                created["Id"],
                created["SyncToken"],
                {"Notes": "b"},
                requestid="r2-" + qbo.realm,
            )
        assert stale.value.code == "5010"
        with pytest.raises(DuplicateName):
            client.create("Customer", {"DisplayName": "Stale GmbH"}, requestid="r3-" + qbo.realm)
        with pytest.raises(ObjectNotFound):
            client.get("Customer", "999999")


def test_429_storm_and_5xx_are_retried_until_they_pass(qbo, simulator):
    simulator.inject(qbo.realm, "429", count=3, xml=True)
    simulator.inject(qbo.realm, "503", count=1)
    simulator.inject(qbo.realm, "500", count=1)
    with qbo.client() as client:
        info = client.get("CompanyInfo", "1")
        assert info["Id"] == "1"
        assert client.stats["throttled"] == 3
        assert client.stats["retries"] == 5


def test_a_create_whose_connection_dropped_after_commit_is_not_duplicated(qbo, simulator):
    simulator.inject(qbo.realm, "drop_after_commit", count=1, path_contains="customer")
    with qbo.client() as client:
        created = client.create(
            "Customer", {"DisplayName": "Einmal AG"}, requestid=request_id("once", qbo.realm)
        )
    names = [r["DisplayName"] for r in simulator.records(qbo.realm, "Customer")]
    assert names.count("Einmal AG") == 1
    assert created["DisplayName"] == "Einmal AG"


def test_a_batch_holds_at_most_30_operations(qbo):
    with qbo.client() as client, pytest.raises(ValueError, match="1..30"):
        client.batch([{"bId": str(i)} for i in range(MAX_BATCH + 1)], requestid="x")


def test_cdc_beyond_1000_changes_shrinks_the_window_and_misses_nothing(qbo, simulator):
    from datetime import timedelta

    with qbo.client() as client:
        client.get("CompanyInfo", "1")
        since = client.server_now() - timedelta(minutes=1)
        for n in range(1100):
            simulator.create_as_user(qbo.realm, "Customer", {"DisplayName": f"CDC {n:04d}"})
            if n % 100 == 0:
                simulator.advance(30)
        changes = client.changes("Customer", since)
    names = {r["DisplayName"] for r in changes.records}
    assert len(names) == 1100 and changes.deletions_known


def test_changes_older_than_30_days_fall_back_to_a_query(qbo, simulator):
    from datetime import timedelta

    with qbo.client() as client:
        client.get("CompanyInfo", "1")
        since = client.server_now()
        simulator.create_as_user(qbo.realm, "Customer", {"DisplayName": "Alt KG"})
        simulator.advance(31 * 86400)
        client.get("CompanyInfo", "1")  # learn the server's time
        assert client.server_now() - since > timedelta(days=30)
        changes = client.changes("Customer", since)
    assert [r["DisplayName"] for r in changes.records] == ["Alt KG"]
    assert not changes.deletions_known


def test_an_error_message_names_the_code_and_never_a_token(qbo):
    with qbo.client() as client:
        try:
            client.get("Customer", "424242")
        except QboError as exc:
            text = str(exc)
        token = client.tokens.connection().access_token
    assert "610" in text and token not in text


def test_two_processes_refreshing_at_once_refresh_once_and_both_go_on(pg_database, simulator):
    """Rotation with no grace: a second refresh with the same refresh token would be refused, so
    both succeeding proves the database lock made the second process use the first one's token."""
    import subprocess
    import sys
    import time
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from invoice_pipelines_tests.quickbooks.conftest import connect

    # PostgreSQL: the deployment where runs on several machines share one database
    qbo = connect(pg_database, simulator)
    with qbo.client() as client:
        client.get("CompanyInfo", "1")
        before = client.tokens.connection().token_version
    qbo.sim.configure(refresh_grace=0)
    try:
        qbo.sim.sim.expire_access_tokens(qbo.realm)
        with tenant_transaction(qbo.engine, qbo.org_id, write=True) as conn:
            conn.execute(
                update(qbo_connections)
                .where(qbo_connections.c.organization_id == qbo.org_id)
                .values(access_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        start = time.time() + 2.0
        args = [qbo.db.url, str(qbo.org_id), qbo.sim.base_url, qbo.sim.token_url, TOKEN_KEY]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "invoice_pipelines_tests.quickbooks.refresh_worker",
                    *args,
                    str(start),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [w.communicate(timeout=60) for w in workers]
    finally:
        qbo.sim.configure(refresh_grace=86400)
    assert [out.strip() for out, _ in outputs] == ["ok", "ok"], outputs
    with qbo.client() as client:
        assert client.tokens.connection().token_version == before + 1


def test_one_sync_at_a_time_per_organization_whoever_started_it(qbo):
    from datetime import timedelta

    from invoice_pipelines.quickbooks.domain.sync.common import RealmBusy, realm_lease

    with realm_lease(qbo.engine, qbo.org_id, "run-a"):
        with pytest.raises(RealmBusy):
            with realm_lease(qbo.engine, qbo.org_id, "run-b", wait=timedelta(0)):
                pass
    with realm_lease(qbo.engine, qbo.org_id, "run-b", wait=timedelta(0)):
        pass  # free again once the first run let go
