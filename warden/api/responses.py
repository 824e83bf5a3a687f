"""Fast JSON responses and the one renderer of errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from warden.api.tracing import client_request_id, request_id
from warden.errors import WardenError

log = logging.getLogger("warden.api")


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(exc: WardenError, headers: Mapping[str, str] | None = None) -> JSON:
    """The OpenAI error object for ``exc``, with Retry-After where it applies."""
    out = dict(headers or {})
    if exc.retry_after is not None or exc.status in (429, 503):
        out["retry-after"] = str(max(1, round(exc.retry_after or 1)))
    return JSON(exc.to_body(), status_code=exc.status, headers=out)


async def handle_warden_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WardenError)
    return error_response(exc)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    if status == 404:
        err = WardenError(f"Unknown path {request.url.path}; see /v1/models for the API.",
                          status=404)
        err.type = "not_found_error"
    elif status == 405:
        err = WardenError(f"Method {request.method} is not allowed on {request.url.path}.",
                          status=405)
        err.type = "invalid_request_error"
    else:
        err = WardenError(str(detail), status=status)
        err.type = "invalid_request_error" if status < 500 else "server_error"
    return error_response(err)


def internal_error(rid: str) -> WardenError:
    """The 500 of an unexpected exception: what to do, and the id the log line carries."""
    return WardenError(f"Internal error in the gateway; it has been logged with request id "
                       f"{rid}. Try again, and quote the id if it persists.", status=500,
                       code="internal_error")


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    """Any exception no handler caught: a 500 OpenAI error object under the request's id (the
    client's ``x-request-id`` when it sent a sane one), and the traceback logged with it."""
    rid = client_request_id(request.headers) or request_id()
    log.error("unhandled error in request %s (%s %s)", rid, request.method, request.url.path,
              exc_info=exc)
    return error_response(internal_error(rid), {"x-request-id": rid})
