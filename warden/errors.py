"""Every error Warden raises to a client carries its HTTP status and OpenAI error type.

    WardenError                      base: status, type, code, param, message
    ├── InvalidRequest        400    invalid_request_error  (malformed body, bad parameter)
    │   └── ContentBlocked    400    content_blocked: a guard policy refused the prompt or answer
    ├── AuthenticationFailed  401    authentication_error
    ├── PermissionDenied      403    permission_error
    ├── NotFound              404    not_found_error         (unknown model, unknown route)
    ├── RateLimited           429    rate_limit_error        (carries retry_after seconds)
    ├── UpstreamError         502    upstream_error          (bad gateway: the provider failed)
    │   ├── UpstreamStatus    5xx/4xx the provider answered with an error status
    │   └── UpstreamBadResponse 502 upstream_bad_response: it answered, but not in a usable shape
    ├── Unavailable           503    service_unavailable     (no healthy deployment, breaker open, draining)
    └── UpstreamTimeout       504    timeout_error

One handler in ``warden.api.errors`` renders them as ``{"error": {...}}``. Messages say what to
do next.
"""

from __future__ import annotations

from typing import Any


class WardenError(Exception):
    """Base class: an error with an HTTP status and an OpenAI-style error object."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.retry_after = retry_after

    def to_body(self) -> dict[str, Any]:
        """The OpenAI wire form of this error."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    @property
    def retryable(self) -> bool:
        """True when another attempt (same or another deployment) may succeed."""
        return self.status == 429 or self.status >= 500


class ConfigError(Exception):
    """The configuration is invalid; the message names the key path and how to fix it."""


class InvalidRequest(WardenError):
    status = 400
    type = "invalid_request_error"


class ContentBlocked(InvalidRequest):
    """A guard policy refused the prompt or withheld the answer. The message never repeats what
    was found: the record (by request id) tells an administrator."""

    code = "content_blocked"


class AuthenticationFailed(WardenError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(WardenError):
    status = 403
    type = "permission_error"


class NotFound(WardenError):
    status = 404
    type = "not_found_error"


class RateLimited(WardenError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class UpstreamError(WardenError):
    """The provider could not be reached, broke the connection, or sent something unusable."""

    status = 502
    type = "upstream_error"


class UpstreamStatus(UpstreamError):
    """The provider answered with an error status; the client sees a mapped status."""

    def __init__(self, message: str, *, upstream_status: int, body: Any = None,
                 retry_after: float | None = None) -> None:
        # The client's own mistakes and rate limits keep their status; an overloaded upstream
        # (503, Anthropic's 529) is a 503 and a timeout a 504; anything else is a bad gateway,
        # including an upstream 401/403, which means the deployment's own key is wrong.
        mapped = upstream_status if upstream_status in (400, 404, 413, 422, 429) else 502
        if upstream_status in (503, 529):
            mapped = 503
        elif upstream_status == 504:
            mapped = 504
        super().__init__(message, status=mapped, retry_after=retry_after)
        self.upstream_status = upstream_status
        self.upstream_body = body
        if mapped == 429:
            self.type = "rate_limit_error"
        elif mapped < 500:
            self.type = "invalid_request_error"

    @property
    def retryable(self) -> bool:
        return self.upstream_status in (408, 409, 429) or self.upstream_status >= 500


class UpstreamBadResponse(UpstreamError):
    """The provider answered something Warden cannot use: not JSON, or fields of the wrong type.

    Retryable like any 502: a deployment that answers garbage is failing, so its breaker counts
    it and, before the first streamed byte, the request moves on to another deployment."""

    type = "upstream_bad_response"
    code = "upstream_bad_response"


class Unavailable(WardenError):
    status = 503
    type = "service_unavailable"


class UpstreamTimeout(WardenError):
    status = 504
    type = "timeout_error"
