"""The pure parts of the client: fault bodies become typed errors, the limiter keeps QBO's limits."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from invoice_pipelines.quickbooks.domain.client import decode_json, encode_json, request_id
from invoice_pipelines.quickbooks.domain.errors import (
    AuthenticationFailed,
    BusinessValidation,
    DuplicateDocNumber,
    DuplicateName,
    ObjectNotFound,
    QboError,
    ServerError,
    StaleObject,
    Throttled,
    error_from_response,
    fault_from_dict,
)
from invoice_pipelines.quickbooks.domain.limits import QboLimits, RealmLimiter


def _json_fault(code: str, message: str, detail: str = "") -> str:
    error = {"Message": message, "Detail": detail, "code": code, "element": ""}
    return json.dumps(
        {"Fault": {"Error": [error], "type": "ValidationFault"}, "time": "2026-11-23T01:00:00Z"}
    )


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("5010", StaleObject),
        ("6240", DuplicateName),
        ("6140", DuplicateDocNumber),
        ("610", ObjectNotFound),
        ("6000", BusinessValidation),
    ],
)
def test_json_faults_become_typed_errors_with_their_code(code, expected):
    error = error_from_response(400, "application/json", _json_fault(code, "Some Error", "why"))
    assert isinstance(error, expected)
    assert error.code == code
    assert code in str(error) and "why" in str(error)


def test_the_lower_case_401_body_is_an_authentication_error():
    body = (
        '{"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message='
        'AuthenticationFailed; errorCode=003200; statusCode=401","detail":"Token expired: xyz",'
        '"code":"3200","element":null}],"type":"AUTHENTICATION"},"time":1700000000000}'
    )
    error = error_from_response(401, "application/json", body)
    assert isinstance(error, AuthenticationFailed)
    assert error.code == "3200"


def test_an_xml_throttle_is_a_throttle_even_when_json_was_asked_for():
    body = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="2026-11-23T01:00:00Z">'
        '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
        "errorCode=003001; statusCode=429</Message><Detail>Request throttled</Detail></Error>"
        "</Fault></IntuitResponse>"
    )
    error = error_from_response(429, "application/xml", body, retry_after=7)
    assert isinstance(error, Throttled)
    assert error.temporary and error.retry_after == 7


def test_an_xml_duplicate_name_keeps_its_code():
    body = (
        '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3"><Fault type="ValidationFault">'
        '<Error code="6240"><Message>Duplicate Name Exists Error</Message><Detail>The name '
        "supplied already exists. : Another customer is already using this name.</Detail></Error>"
        "</Fault></IntuitResponse>"
    )
    assert isinstance(error_from_response(400, "text/xml", body), DuplicateName)


def test_a_duplicate_doc_number_names_the_existing_invoice():
    error = error_from_response(
        400,
        "application/json",
        _json_fault(
            "6140",
            "Duplicate Document Number Error",
            "Duplicate Document Number Error : You must specify a different number. "
            "This number has already been used. DocNumber=RE-1 is assigned to TxnType=Invoice "
            "with TxnId=42",
        ),
    )
    assert isinstance(error, DuplicateDocNumber)
    assert error.existing_id == "42"


def test_a_5xx_with_an_html_body_is_a_temporary_server_error():
    error = error_from_response(503, "text/html", "<html><body>Service Unavailable</body></html>")
    assert isinstance(error, ServerError) and error.temporary


def test_an_unknown_code_is_still_an_error_with_its_code_and_not_retried():
    error = error_from_response(400, "application/json", _json_fault("2020", "Required param"))
    assert type(error) is QboError and error.code == "2020" and not error.temporary


def test_a_batch_item_fault_is_read_like_a_response_fault():
    item = {"bId": "7", "Fault": {"Error": [{"Message": "Stale", "code": "5010"}], "type": "x"}}
    assert isinstance(fault_from_dict(item), StaleObject)
    assert fault_from_dict({"bId": "8", "Invoice": {"Id": "1"}}) is None


def test_amounts_travel_as_exact_decimals_never_floats():
    body = encode_json({"Amount": Decimal("0.10"), "Qty": Decimal("3"), "Name": "x"})
    assert body == b'{"Amount":0.10,"Qty":3,"Name":"x"}'
    assert decode_json(b'{"TotalAmt": 1234567890.13}')["TotalAmt"] == Decimal("1234567890.13")


def test_request_ids_are_deterministic_per_version_and_fit_the_batch_limit():
    first = request_id("batch", "ip-1-si-5-create")
    assert first == request_id("batch", "ip-1-si-5-create")
    assert first != request_id("batch", "ip-1-si-6-create")
    assert len(first) == 36


class FakeClock:
    """Time that only moves when someone sleeps: the limiter's decisions, without waiting."""

    scale = 1.0

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(seconds, 0)


def _admitted_in_windows(limiter: RealmLimiter, clock: FakeClock, n: int, cost: int, batch: bool):
    moments = []
    for _ in range(n):
        limiter.release(limiter.acquire(cost, batch=batch))
        moments.append((clock.t, cost))
    return moments


def _max_in_window(moments, width: float) -> int:
    best = 0
    for start, _ in moments:
        best = max(best, sum(c for t, c in moments if start <= t < start + width))
    return best


def test_the_limiter_keeps_500_per_minute_counting_batch_items():
    clock = FakeClock()
    limiter = RealmLimiter(QboLimits(headroom=1.0), clock)
    moments = _admitted_in_windows(limiter, clock, 100, 30, True)
    assert _max_in_window(moments, 60) <= 500
    # and it does not hold back more than needed: 100 batches of 30 in about 6 minutes
    assert clock.t < 6 * 60 + 60


def test_the_limiter_keeps_10_per_second_and_40_batches_per_minute():
    clock = FakeClock()
    limiter = RealmLimiter(QboLimits(headroom=1.0), clock)
    singles = _admitted_in_windows(limiter, clock, 200, 1, False)
    assert max(sum(1 for t, _ in singles if s <= t < s + 1) for s, _ in singles) <= 10
    clock2 = FakeClock()
    batches = _admitted_in_windows(
        RealmLimiter(QboLimits(headroom=1.0), clock2), clock2, 90, 1, True
    )
    assert max(sum(1 for t, _ in batches if s <= t < s + 60) for s, _ in batches) <= 40


def test_a_request_in_flight_counts_however_long_it_takes_and_a_window_after_its_answer():
    clock = FakeClock()
    limiter = RealmLimiter(QboLimits(headroom=1.0), clock)
    slow = limiter.acquire(500, batch=True)
    clock.t = 300.0  # its answer takes five minutes: QBO may have counted it only now
    assert limiter._wait_needed(clock.now(), 1, False) > 0
    limiter.release(slow)
    answered = clock.t
    limiter.release(limiter.acquire(1))
    assert clock.t >= answered + 60
