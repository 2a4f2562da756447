"""The Peppol transport (`resources/peppol/transport.py`) through real HTTP on 127.0.0.1 against
the access point stand-in (`invoice_pipelines_devtools/standins/peppol.py`): the SMP lookup, and
each send's outcome as the outbox will need it (accepted with the AS4 message id, rejected,
retryable, unknown and never sent twice by us)."""

from __future__ import annotations

import socket

import pytest

from invoice_pipelines.resources.peppol.transport import (
    BILLING_PROCESS,
    CREDIT_NOTE_DOC_TYPE,
    INVOICE_DOC_TYPE,
    Outcome,
    PeppolLookupError,
    PeppolTransport,
    Reach,
    peppol_transport,
)
from invoice_pipelines_devtools.standins.peppol import AccessPointStandIn, Network

SELLER = "9930:DE123456789"
BUYER = "0208:0123456749"  # a valid Belgian enterprise number (97 - 01234567 mod 97 = 49)
STRANGER = "0088:4035811991014"
DOCUMENT = b"<Invoice xmlns='urn:oasis:names:specification:ubl:schema:xsd:Invoice-2'/>"


@pytest.fixture
def ap():
    network = Network(token="secret")
    network.register(BUYER, INVOICE_DOC_TYPE, BILLING_PROCESS)
    with AccessPointStandIn(network=network) as stand_in:
        yield stand_in


def transport(ap, token: str = "secret") -> PeppolTransport:
    return PeppolTransport(base_url=ap.url, token=token, timeout_seconds=10.0)


def send(ap, receiver: str = BUYER, token: str = "secret", **kw):
    t = transport(ap, token)
    return t.send(
        t.session(), sender_id=SELLER, receiver_id=receiver, document=DOCUMENT, country="DE", **kw
    )


def test_lookup_says_whether_the_receiver_takes_the_document_type(ap):
    t = transport(ap)
    session = t.session()
    assert t.lookup(session, BUYER, INVOICE_DOC_TYPE, BILLING_PROCESS) is Reach.ACCEPTS
    # the scheme-prefixed, upper-case form is the same participant
    prefixed = "iso6523-actorid-upis::0208:0123456749".upper()
    assert t.lookup(session, prefixed, INVOICE_DOC_TYPE, BILLING_PROCESS) is Reach.ACCEPTS
    assert t.lookup(session, BUYER, CREDIT_NOTE_DOC_TYPE, BILLING_PROCESS) is (
        Reach.NOT_THIS_DOCUMENT
    )
    assert t.lookup(session, STRANGER, INVOICE_DOC_TYPE, BILLING_PROCESS) is Reach.NOT_ON_PEPPOL


def test_an_accepted_document_has_its_message_id_and_reached_the_receiver_once(ap):
    sending = send(ap)
    assert sending.outcome is Outcome.ACCEPTED, sending.reason
    assert sending.message_id and sending.sbdh_instance_id
    assert sending.as_send_error() is None
    [message] = ap.network.take_messages()
    assert message["message_id"] == sending.message_id
    assert message["document"] == DOCUMENT
    assert message["receiver"] == "iso6523-actorid-upis::0208:0123456749"
    assert message["doc_type_id"] == INVOICE_DOC_TYPE
    assert message["process_id"] == BILLING_PROCESS
    assert message["country"] == "DE"
    assert ap.network.take_messages() == []  # each message once


def test_a_receiver_that_answers_an_as4_error_rejects_for_good(ap):
    ap.network.rejecting[BUYER] = "The incoming Peppol message could not be processed."
    sending = send(ap)
    assert sending.outcome is Outcome.REJECTED
    assert "AS4_ERROR_MESSAGE_RECEIVED" in sending.reason
    assert "could not be processed" in sending.reason
    assert sending.message_id  # the AS4 message the receiver answered
    error = sending.as_send_error()
    assert not error.temporary and not error.unknown


def test_a_receiver_the_smp_does_not_know_is_rejected_and_nothing_goes_out(ap):
    sending = send(ap, receiver=STRANGER)
    assert sending.outcome is Outcome.REJECTED
    assert "no endpoint" in sending.reason
    assert sending.message_id is None
    assert ap.network.take_messages() == []


def test_a_busy_access_point_is_retryable_and_kept_nothing(ap):
    ap.network.unavailable_next = 1
    ap.network.throttle_next = 1
    throttled, unavailable = send(ap), send(ap)
    assert (throttled.outcome, throttled.status) == (Outcome.RETRYABLE, 429)
    assert (unavailable.outcome, unavailable.status) == (Outcome.RETRYABLE, 503)
    assert unavailable.as_send_error().temporary
    assert ap.network.take_messages() == []
    assert send(ap).outcome is Outcome.ACCEPTED  # the next try goes out


def test_an_access_point_that_is_not_listening_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    t = PeppolTransport(base_url=f"http://127.0.0.1:{port}", token="secret")
    sending = t.send(
        t.session(), sender_id=SELLER, receiver_id=BUYER, document=DOCUMENT, country="DE"
    )
    assert sending.outcome is Outcome.RETRYABLE, sending.reason
    with pytest.raises(PeppolLookupError) as raised:
        t.lookup(t.session(), BUYER)
    assert raised.value.temporary


@pytest.mark.parametrize("after", [0, 500, 502])
def test_a_lost_or_failed_answer_after_the_document_was_kept_is_unknown(ap, after):
    ap.network.keep_then_answer.append(after)
    sending = send(ap)
    assert sending.outcome is Outcome.UNKNOWN, sending.reason
    error = sending.as_send_error()
    assert error.unknown and not error.temporary
    # the access point did take it, exactly once: the client did not send it again on its own
    assert len(ap.network.take_messages()) == 1


def test_a_refused_token_rejects_and_names_the_setting(ap):
    sending = send(ap, token="wrong")
    assert (sending.outcome, sending.status) == (Outcome.REJECTED, 403)
    assert "INVOICE_PIPELINES_PEPPOL_AP_TOKEN" in sending.reason
    assert ap.network.take_messages() == []
    t = transport(ap, token="wrong")
    with pytest.raises(PeppolLookupError) as raised:
        t.lookup(t.session(), BUYER)
    assert raised.value.status == 403 and not raised.value.temporary


def test_the_transport_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("INVOICE_PIPELINES_PEPPOL_AP_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("INVOICE_PIPELINES_PEPPOL_AP_TOKEN", "from-env")
    configured = peppol_transport()
    assert (configured.base_url, configured.token) == ("http://127.0.0.1:9", "from-env")
    assert "from-env" not in repr(configured)


def test_an_answer_that_does_not_come_in_time_is_unknown(ap):
    ap.network.latency_seconds = 3.0  # the answer comes later than the client waits
    t = PeppolTransport(base_url=ap.url, token="secret", timeout_seconds=0.3)
    sending = t.send(
        t.session(), sender_id=SELLER, receiver_id=BUYER, document=DOCUMENT, country="DE"
    )
    assert sending.outcome is Outcome.UNKNOWN, sending.reason
    assert "in time" in sending.reason
