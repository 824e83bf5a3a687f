"""Request ids and W3C trace context: accepted from the client, propagated, returned."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,200}$")
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def request_id(headers: Mapping[str, str]) -> str:
    """The client's ``x-request-id`` when it is sane, else a new random id."""
    given = headers.get("x-request-id")
    if given and _REQUEST_ID.match(given):
        return given
    return os.urandom(12).hex()


def traceparent(headers: Mapping[str, str]) -> tuple[str, str | None]:
    """A traceparent for this hop, and the client's span id (the parent) when it sent one.

    The client's trace id and sampled flag are kept; the span id is new: it is the id of this
    request's server span."""
    given = headers.get("traceparent")
    match = _TRACEPARENT.match(given) if given else None
    if match and match.group(2) != "0" * 32 and match.group(3) != "0" * 16:
        return f"00-{match.group(2)}-{os.urandom(8).hex()}-{match.group(4)}", match.group(3)
    return f"00-{os.urandom(16).hex()}-{os.urandom(8).hex()}-01", None
