"""The HTTP receiver the access point forwards received documents to (intake/domain/peppol_http.py), on
SQLite and PostgreSQL, over real HTTP on 127.0.0.1: the access point stand-in forwards official
Peppol examples in SBDH envelopes (and bare); each InstanceIdentifier is registered once, a replay
and two posts of the same message at once make one document; bad input is refused with its
status and records nothing."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from invoice_pipelines.cli import main
from invoice_pipelines.db.tables import incoming_invoices, peppol_received, uploads
from invoice_pipelines.db.tenancy import system_transaction
from invoice_pipelines.intake.domain.peppol_http import bearer_valid, receiver
from invoice_pipelines.resources.files.uploads import LocalUploads
from invoice_pipelines.settings import ConfigError
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, forward_inbound
from invoice_pipelines_tests.conftest import PEPPOL_SAMPLES_DIR
from invoice_pipelines_tests.einvoice.test_sbdh import wrap
from invoice_pipelines_tests.test_make_run import _default_signals

TOKEN = "inbound-secret"


@pytest.fixture(autouse=True)
def _samples():
    if not (PEPPOL_SAMPLES_DIR / "base-example.xml").is_file():
        pytest.skip(f"the official Peppol examples not found ({PEPPOL_SAMPLES_DIR})")


def _participant() -> str:
    return f"9930:DE{uuid.uuid4().int % 10**9:09d}"


def _serve(engine, store, **bounds):
    server = receiver(engine, store, TOKEN, **bounds)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    return server, thread, f"http://{host}:{port}/peppol/inbound"


@pytest.fixture
def inbound(db, tmp_path):
    """(stand-in, receiver url, upload root): the stand-in forwards to our receiver."""
    root = tmp_path / "uploads"
    server, thread, url = _serve(db.engine, LocalUploads(str(root)))
    with AccessPointStandIn() as ap:
        ap.network.inbound_url, ap.network.inbound_token = url, TOKEN
        yield ap, url, root
    server.shutdown()
    server.server_close()
    thread.join()


def _example(receiver_id: str, key: str, name: str = "base-example.xml") -> bytes:
    data = (PEPPOL_SAMPLES_DIR / name).read_bytes()
    return wrap(data, receiver=receiver_id, instance_identifier=key)


def _counts(db, key: str) -> tuple[int, int, int]:
    """(messages with this InstanceIdentifier, uploads, incoming invoices) they name."""
    with system_transaction(db.engine) as conn:
        rows = conn.execute(
            select(peppol_received.c.upload_id, peppol_received.c.incoming_invoice_id).where(
                peppol_received.c.instance_identifier == key
            )
        ).all()
        upload_ids = {r.upload_id for r in rows if r.upload_id is not None}
        document_ids = {r.incoming_invoice_id for r in rows if r.incoming_invoice_id is not None}
        n_uploads = conn.execute(
            select(func.count()).select_from(uploads).where(uploads.c.id.in_(upload_ids))
        ).scalar_one()
        n_documents = conn.execute(
            select(func.count())
            .select_from(incoming_invoices)
            .where(incoming_invoices.c.id.in_(document_ids))
        ).scalar_one()
    return len(rows), n_uploads, n_documents


def _organization_documents(db, org) -> int:
    with system_transaction(db.engine) as conn:
        return conn.execute(
            select(func.count())
            .select_from(incoming_invoices)
            .where(incoming_invoices.c.organization_id == org["id"])
        ).scalar_one()


def test_a_forwarded_document_is_registered_once_and_a_replay_answers_success(db, inbound):
    ap, _url, root = inbound
    org = db.new_organization(peppol_participant=_participant())
    key = str(uuid.uuid4())
    envelope = _example(org["peppol_participant"], key)

    first = ap.forward_inbound(envelope)
    assert first.status == 200, first.text
    assert first.fields["outcome"] == "registered"
    assert (first.fields["instance_identifier"], first.fields["organization"]) == (key, org["slug"])
    assert _counts(db, key) == (1, 1, 1)
    archived = list((root / org["slug"] / ".archive").iterdir())
    assert len(archived) == 1 and archived[0].read_bytes().startswith(b"<?xml")

    again = ap.forward_inbound(envelope)
    assert again.status == 200, again.text
    assert again.fields["outcome"] == "replay"
    assert again.fields["document_id"] == first.fields["document_id"]
    assert _counts(db, key) == (1, 1, 1)
    assert _organization_documents(db, org) == 1
    assert len(list((root / org["slug"] / ".archive").iterdir())) == 1

    # a bare UBL goes to its buyer's electronic address
    scheme, value = org["peppol_participant"].split(":", 1)
    bare = (PEPPOL_SAMPLES_DIR / "vat-category-O.xml").read_bytes()
    stated = b'<cbc:EndpointID schemeID="0192">987654325</cbc:EndpointID>'
    assert stated in bare
    bare = bare.replace(
        stated, f'<cbc:EndpointID schemeID="{scheme}">{value}</cbc:EndpointID>'.encode()
    )
    answer = ap.forward_inbound(bare)
    assert (answer.status, answer.fields["outcome"]) == (200, "registered"), answer.text
    assert answer.fields["instance_identifier"].startswith("sha256:")
    assert ap.forward_inbound(bare).fields["outcome"] == "replay"
    assert _organization_documents(db, org) == 2


def test_two_posts_of_the_same_message_at_once_make_one_document(db, inbound):
    _ap, url, _root = inbound
    org = db.new_organization(peppol_participant=_participant())
    samples = sorted(PEPPOL_SAMPLES_DIR.glob("*.xml"))[:4]
    for round_, sample in enumerate(samples):
        key = str(uuid.uuid4())
        # a document of its own each round: the same bytes again would be a duplicate upload
        envelope = _example(org["peppol_participant"], key, sample.name)
        start = threading.Barrier(2)
        answers = []

        def post(envelope=envelope, start=start, answers=answers):
            start.wait()
            answers.append(forward_inbound(url, envelope, TOKEN))

        posts = [threading.Thread(target=post) for _ in range(2)]
        for thread in posts:
            thread.start()
        for thread in posts:
            thread.join()
        assert [a.status for a in answers] == [200, 200], [a.text for a in answers]
        outcomes = sorted(a.fields["outcome"] for a in answers)
        # the same message once: one answer registered it, the other was told it was a replay
        assert outcomes == ["registered", "replay"], (round_, [a.text for a in answers])
        assert len({a.fields["document_id"] for a in answers}) == 1
        assert _counts(db, key) == (1, 1, 1)
    assert _organization_documents(db, org) == len(samples) == 4


def _post_and_hang_up(url: str, body: bytes) -> None:
    """What an access point whose answer got lost sent: the whole request, then the connection
    closed before anything was read back."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port)) as connection:
        connection.sendall(head + body)


def test_a_message_whose_answer_was_lost_is_a_replay_when_it_comes_again(db, inbound):
    """The access point hangs up before our answer: the message is recorded all the same, and
    the access point, which never heard so, sends it again and is told it arrived."""
    ap, url, root = inbound
    org = db.new_organization(peppol_participant=_participant())
    key = str(uuid.uuid4())
    envelope = _example(org["peppol_participant"], key, "Allowance-example.xml")
    _post_and_hang_up(url, envelope)
    _until(lambda: _counts(db, key) == (1, 1, 1), "the message was not recorded")
    again = ap.forward_inbound(envelope)
    assert (again.status, again.fields["outcome"]) == (200, "replay"), again.text
    assert _counts(db, key) == (1, 1, 1)
    assert _organization_documents(db, org) == 1
    assert len(list((root / org["slug"] / ".archive").iterdir())) == 1


def _until(condition, what: str):
    """Wait for `condition()` to be true: a bound for a broken receiver, not a measurement."""
    deadline = time.monotonic() + 60
    while not (found := condition()):
        assert time.monotonic() < deadline, what
        time.sleep(0.05)
    return found


def _waiting_inserts(conn) -> list:
    """The backends whose INSERT INTO peppol_received waits on a lock. Inside a transaction
    PostgreSQL answers pg_stat_activity from a snapshot taken at its first read, so each look
    drops it first: a first look before the INSERT waited would otherwise be the answer for good
    (under load the test waited 60 s for what had long happened)."""
    conn.exec_driver_sql("SELECT pg_stat_clear_snapshot()")
    return conn.exec_driver_sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock' "
        "AND query ILIKE 'INSERT INTO peppol_received%%'"
    ).all()


def test_a_connection_lost_between_archive_and_record_answers_503_and_the_resend_records_once(
    pg_database, tmp_path
):
    """The database connection of the receiver dies after the document is archived and before
    the message is recorded (PostgreSQL ends the backend while its INSERT waits on a lock): 503,
    the archived file is named by no row, and the access point's resend writes the same file and
    records the message once."""
    db = pg_database
    root = tmp_path / "uploads"
    server, thread, url = _serve(db.engine, LocalUploads(str(root)))
    org = db.new_organization(peppol_participant=_participant())
    key = str(uuid.uuid4())
    envelope = _example(org["peppol_participant"], key, "vat-category-Z.xml")
    answers = []
    try:
        with db.owner_engine.connect() as blocker:
            blocker.exec_driver_sql("BEGIN")
            # reads go on, the receiver's INSERT waits
            blocker.exec_driver_sql("LOCK TABLE peppol_received IN SHARE MODE")
            post = threading.Thread(
                target=lambda: answers.append(forward_inbound(url, envelope, TOKEN))
            )
            post.start()
            archive = root / org["slug"] / ".archive"
            _until(lambda: archive.is_dir() and list(archive.iterdir()), "nothing archived")
            [(waiting,)] = _until(
                lambda: _waiting_inserts(blocker), "the receiver's INSERT is not waiting"
            )
            blocker.exec_driver_sql(f"SELECT pg_terminate_backend({int(waiting)})")
            post.join()
            blocker.exec_driver_sql("ROLLBACK")
        [lost] = answers
        assert lost.status == 503 and "send it again later" in lost.text, lost.text
        assert _counts(db, key) == (0, 0, 0)
        assert len(list(archive.iterdir())) == 1  # archived, named by no row

        again = forward_inbound(url, envelope, TOKEN)
        assert (again.status, again.fields["outcome"]) == (200, "registered"), again.text
        assert _counts(db, key) == (1, 1, 1)
        assert _organization_documents(db, org) == 1
        assert len(list(archive.iterdir())) == 1
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_bad_input_is_refused_with_its_status_and_records_nothing(db, tmp_path):
    root = tmp_path / "uploads"
    server, thread, url = _serve(db.engine, LocalUploads(str(root)), max_body_bytes=64 * 1024)
    try:
        org = db.new_organization(peppol_participant=_participant())
        key = str(uuid.uuid4())
        envelope = _example(org["peppol_participant"], key)

        def post(body: bytes, **options):
            return forward_inbound(url, body, TOKEN, **options)

        wrong = post(envelope, headers={"Authorization": "Bearer not-it"})
        assert (wrong.status, wrong.fields) == (401, None)
        assert post(envelope, headers={}).status == 401
        assert post(envelope, headers={"Authorization": TOKEN}).status == 401  # no scheme
        assert post(b"<not xml", headers={"Authorization": "Basic eDp5"}).status == 401

        not_xml = post(b"%PDF-1.7 not a Peppol message")
        assert not_xml.status == 400 and "not a Peppol document" in not_xml.text, not_xml.text
        assert post(b"").status == 400
        order = b'<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2"/>'
        assert post(order).status == 400
        no_document = envelope[: envelope.index(b"<Invoice")] + b"</StandardBusinessDocument>"
        assert post(no_document).status == 400

        big = post(envelope + b" " * (64 * 1024))
        assert big.status == 413 and "larger than 65536 bytes" in big.text

        elsewhere = forward_inbound(url.replace("/peppol/inbound", "/as4"), envelope, TOKEN)
        assert elsewhere.status == 404 and elsewhere.fields is None

        assert _counts(db, key) == (0, 0, 0)
        assert _organization_documents(db, org) == 0
        assert not (root / org["slug"]).exists()

        # an unknown receiver: 404, the message kept (held) once however often it comes
        stranger = str(uuid.uuid4())
        for _ in range(2):
            unknown = post(_example(_participant(), stranger))
            assert unknown.status == 404 and unknown.fields["outcome"] == "unknown_receiver"
        assert _counts(db, stranger) == (1, 0, 0)

        # the accepted one after all that
        assert post(envelope).fields["outcome"] == "registered"
        assert _counts(db, key) == (1, 1, 1)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_an_upload_store_that_fails_answers_503_and_the_resend_is_registered(db, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the upload folder should be")
    server, thread, url = _serve(db.engine, LocalUploads(str(blocked)))
    org = db.new_organization(peppol_participant=_participant())
    key = str(uuid.uuid4())
    envelope = _example(org["peppol_participant"], key)
    try:
        failed = forward_inbound(url, envelope, TOKEN)
        assert failed.status == 503 and "send it again later" in failed.text
        assert _counts(db, key) == (0, 0, 0)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    blocked.unlink()
    server, thread, url = _serve(db.engine, LocalUploads(str(blocked)))
    try:
        assert forward_inbound(url, envelope, TOKEN).fields["outcome"] == "registered"
        assert _counts(db, key) == (1, 1, 1)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_the_receiver_needs_a_token(db, tmp_path, monkeypatch, capsys):
    store = LocalUploads(str(tmp_path))
    for token in ("", "  "):
        with pytest.raises(ConfigError, match="INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN"):
            receiver(db.engine, store, token)
    monkeypatch.setenv("INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN", " ")
    assert main(["peppol", "listen", "--port", "0"]) == 2
    assert "INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN is empty or blank" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("values", "valid"),
    [
        ([f"Bearer {TOKEN}"], True),
        ([f"bearer {TOKEN}"], True),
        ([], False),
        ([f"Bearer {TOKEN}", f"Bearer {TOKEN}"], False),
        ([f"Bearer {TOKEN}x"], False),
        ([TOKEN], False),
        (["Bearer "], False),
        (["Bearer tökén"], False),
    ],
)
def test_bearer_tokens(values, valid):
    assert bearer_valid(values, TOKEN) is valid


def test_peppol_listen_serves_in_a_process_of_its_own_until_interrupted(db, tmp_path):
    """The command as a person runs it: it prints its URL, the stand-in forwards to it over
    HTTP, the document is registered once, and Ctrl-C ends it with status 0."""
    org = db.new_organization(peppol_participant=_participant())
    env = {
        **os.environ,
        "INVOICE_PIPELINES_DB_URL": db.url,
        "INVOICE_PIPELINES_STORAGE": "local",
        "INVOICE_PIPELINES_UPLOAD_DIR": str(tmp_path / "uploads"),
        "INVOICE_PIPELINES_PEPPOL_INBOUND_TOKEN": TOKEN,
    }
    script = "from invoice_pipelines.cli import main; raise SystemExit(main())"
    argv = [sys.executable, "-c", script, "peppol", "listen", "--port", "0"]
    process = subprocess.Popen(
        argv,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as in a terminal, whoever started pytest: from a suite started by a shell's `&`
        # the command inherited SIGINT ignored and outlived the SIGINT below
        preexec_fn=_default_signals,
    )
    try:
        url = json.loads(process.stdout.readline())["url"]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/peppol/inbound")
        key = str(uuid.uuid4())
        with AccessPointStandIn() as ap:
            ap.network.inbound_url, ap.network.inbound_token = url, TOKEN
            first = ap.forward_inbound(_example(org["peppol_participant"], key))
            again = ap.forward_inbound(_example(org["peppol_participant"], key))
        assert (first.status, first.fields["outcome"]) == (200, "registered"), first.text
        assert (again.status, again.fields["outcome"]) == (200, "replay"), again.text
        assert _counts(db, key) == (1, 1, 1)
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
