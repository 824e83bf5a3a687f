"""Fast JSON responses and the one renderer of errors."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

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


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = WardenError("Internal error in the gateway; it has been logged. Try again.", status=500)
    return error_response(err)
