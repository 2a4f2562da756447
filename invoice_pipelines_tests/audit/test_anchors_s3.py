"""The chain heads anchored in an S3 archive store (moto in server mode on loopback, the suite's
S3 stand-in): each head is an object under Object Lock in COMPLIANCE mode, never replaced nor
deleted; `audit-verify` over an S3 export store anchors there and names an emptied seal table from
those heads; a bucket without Object Lock is named, nothing anchored without the lock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete

from invoice_pipelines.audit.domain.anchors import LOCK_MODE, Head, S3Anchors
from invoice_pipelines.audit.domain.seal_keys import keyring_from
from invoice_pipelines.audit.domain.verify import verify_archive
from invoice_pipelines.db.tables import audit_seals
from invoice_pipelines.db.tenancy import find_organization
from invoice_pipelines.resources.files.s3_objects import S3Files
from invoice_pipelines_tests.audit.year_of_history import seed_year
from invoice_pipelines_tests.resources.test_s3 import s3_endpoint  # noqa: F401 (the fixture)

pytest.importorskip("moto", reason="moto[server] is a dev dependency")

LATER = datetime.now(UTC) + timedelta(hours=1)
KEYRING = keyring_from("44" * 32, "s3-k1")


@pytest.fixture
def store(s3_endpoint, monkeypatch):  # noqa: F811
    def make(object_lock: bool = True) -> S3Files:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
        name = f"ip-{uuid.uuid4().hex[:12]}"
        files = S3Files(name, "exports", s3_endpoint)
        files._client().create_bucket(
            Bucket=name,
            CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
            **({"ObjectLockEnabledForBucket": True} if object_lock else {}),
        )
        return files

    return make


def test_a_head_is_an_object_under_compliance_lock_never_replaced(store):
    files = store()
    anchors = S3Anchors(files)
    head = Head(3, 5, "a" * 64, "k1", datetime.now(UTC))
    where = anchors.put(head)
    key = files.object_key(f"_audit_anchors/3/{head.name()}")
    assert where == f"s3://{files.bucket}/{key}"

    s3 = files._client()
    stored = s3.head_object(Bucket=files.bucket, Key=key)
    assert stored["ObjectLockMode"] == LOCK_MODE == "COMPLIANCE"
    assert stored["ObjectLockRetainUntilDate"] > datetime.now(UTC) + timedelta(days=3650)
    with pytest.raises(Exception, match="PreconditionFailed"):
        anchors.put(head)  # written again: refused by the store
    version = s3.list_object_versions(Bucket=files.bucket)["Versions"][0]["VersionId"]
    with pytest.raises(Exception, match="AccessDenied"):
        s3.delete_object(Bucket=files.bucket, Key=key, VersionId=version)
    assert [(a.position, a.chain_hash) for a in anchors.heads(3)] == [(5, "a" * 64)]


def test_audit_verify_anchors_in_s3_and_names_an_emptied_seal_table(db, tmp_path, store):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    stores = {**history.stores, "export_store": store()}

    first = verify_archive(db.engine, stores, org, now=LATER, keyring=KEYRING)

    assert first.passed and first.chain.anchored.startswith("s3://")
    assert S3Anchors(stores["export_store"]).heads(org.id)[-1].position == first.chain.head_position
    with db.owner_engine.begin() as conn:
        conn.execute(delete(audit_seals).where(audit_seals.c.organization_id == org.id))
    emptied = verify_archive(db.engine, stores, org, now=LATER, keyring=KEYRING)
    assert not emptied.passed
    assert any(p.startswith("audit seals emptied") for p in emptied.chain.problems)


def test_a_bucket_without_object_lock_is_named(db, tmp_path, store):
    history = seed_year(db, tmp_path / "stores")
    org = find_organization(db.engine, history.org["id"])
    stores = {**history.stores, "export_store": store(object_lock=False)}

    report = verify_archive(db.engine, stores, org, now=LATER, keyring=KEYRING)

    assert not report.passed and report.chain.newly_sealed > 0  # sealed, not anchored
    assert any(
        p.startswith(
            f"the chain's head (position {report.chain.head_position}) could not be anchored"
        )
        and "ObjectLockConfiguration" in p
        for p in report.chain.problems
    ), report.chain.problems
    assert S3Anchors(stores["export_store"]).heads(org.id) == []
