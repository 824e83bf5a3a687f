"""Authenticate: find the client key behind ``Authorization: Bearer ...``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from warden.config import ClientKey
from warden.errors import AuthenticationFailed
from warden.pipeline.context import RequestContext
from warden.pipeline.stage import Next


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Authenticate:
    """With client keys configured, every request must carry one of them (or the admin key)."""

    def __init__(self, keys: list[ClientKey], admin_key: str | None) -> None:
        self._keys = {digest(k.key): k for k in keys}
        self._admin = digest(admin_key) if admin_key else None
        self.open = not keys

    def identify(self, headers: Mapping[str, str]) -> ClientKey | None:
        """The client key of a request (None when keys are not required, or for the admin)."""
        if self.open:
            return None
        token = bearer(headers.get("authorization"))
        if token is None:
            raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'.")
        hashed = digest(token)
        key = self._keys.get(hashed)
        if key is None and not (self._admin and hmac.compare_digest(hashed, self._admin)):
            raise AuthenticationFailed("Invalid API key: check the key, or ask an admin for one.")
        return key

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        ctx.key = self.identify(ctx.headers)
        await call_next(ctx)
