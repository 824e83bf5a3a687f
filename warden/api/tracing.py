"""Request ids and W3C trace context: accepted from the client, propagated, returned.

Every request gets an id of the gateway's own (``request_id``), its record's key, returned in
``x-warden-record-id``. A client's ``x-request-id`` is kept as a label of the request: recorded
in ``client_request_id``, sent upstream and returned as it came."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def request_id() -> str:
    """A new request id: the key of the request's record, unique whatever the client sends."""
    return os.urandom(12).hex()


def client_request_id(headers: Mapping[str, str]) -> str | None:
    """The client's ``x-request-id`` when it is sane (a label of the request, which clients
    may reuse: never a record's key)."""
    given = headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else None


def traceparent(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """A traceparent for this hop, and the client's span id (the parent) when it sent one.

    The client's trace id and sampled flag are kept; the span id is new: it is the id of this
    request's server span."""
    given = headers.get("traceparent")
    match = _TRACEPARENT.match(given) if given else None
    if match and match.group(2) != "0" * 32 and match.group(3) != "0" * 16:
        return f"00-{match.group(2)}-{os.urandom(8).hex()}-{match.group(4)}", match.group(3)
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01", None
