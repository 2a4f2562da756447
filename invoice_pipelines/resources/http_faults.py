"""What a failed HTTP request to an outside service tells about the request itself, for the
clients that must never send a thing twice (text messages, Peppol) and those that only say why
they failed (Vision OCR)."""

from __future__ import annotations

import requests
from urllib3.exceptions import NewConnectionError


def never_connected(exc: BaseException) -> bool:
    """No connection was made (refused, no such host, no route, connect timeout): the request
    never left, so trying again cannot do its work twice."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if not isinstance(exc, requests.ConnectionError):
        return False
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)  # urllib3's MaxRetryError wraps the cause
    return isinstance(reason, NewConnectionError)
