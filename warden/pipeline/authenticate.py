"""Authenticate: find who sends a request from its ``Authorization: Bearer ...`` token.

A token is the admin key, a key listed in the config, or a key kept in the store (through the
keyring, from memory). Tokens are compared by their SHA-256, never kept in clear here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from warden.access.keyring import Keyring
from warden.access.roles import ADMIN, Principal
from warden.access.session import fingerprint
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


def principal_of(key: ClientKey) -> Principal:
    """A key of the config as a Principal; its name is its id."""
    return Principal(id=key.name, name=key.name, role=key.role, team=key.team,
                     models=None if key.models is None else tuple(key.models),
                     tags=dict(key.tags), payloads=key.payloads, guard=key.guard)


class Authenticate:
    """With any client key (in the config or the store), every /v1 request must carry a key
    whose role may call models; without any, /v1 is open."""

    def __init__(self, keys: list[ClientKey], admin_key: str | None,
                 keyring: Keyring | None = None) -> None:
        self._keys = {digest(k.key): principal_of(k) for k in keys}
        self._admin = digest(admin_key) if admin_key else None
        self._keyring = keyring

    @property
    def open(self) -> bool:
        """True while no client key exists at all: /v1 needs no key then."""
        return not self._keys and not (self._keyring is not None and self._keyring.has_keys)

    @property
    def has_admin(self) -> bool:
        return self._admin is not None

    def resolve(self, headers: Mapping[str, str]) -> Principal:
        """The holder of the request's token; AuthenticationFailed (401) when there is none,
        or it is unknown or revoked."""
        token = bearer(headers.get("authorization"))
        if token is None:
            raise AuthenticationFailed("Missing API key: send it as 'Authorization: Bearer <key>'.")
        hashed = digest(token)
        if self._admin is not None and hmac.compare_digest(hashed, self._admin):
            return ADMIN
        found = self._keys.get(hashed)
        if found is None and self._keyring is not None:
            found = self._keyring.resolve(hashed)
        if found is None:
            raise AuthenticationFailed("Invalid API key: check the key, or ask an admin for one.")
        return found

    def login(self, token: str) -> tuple[str, bytes, Principal]:
        """The dashboard session subject (``admin``, ``config:<name>``, ``store:<id>``), the
        SHA-256 and the holder of ``token``; AuthenticationFailed (401) when it is unknown or
        revoked."""
        hashed = digest(token)
        if self._admin is not None and hmac.compare_digest(hashed, self._admin):
            return "admin", hashed, ADMIN
        found = self._keys.get(hashed)
        if found is not None:
            return f"config:{found.id}", hashed, found
        stored = self._keyring.resolve(hashed) if self._keyring is not None else None
        if stored is not None:
            return f"store:{stored.id}", hashed, stored
        raise AuthenticationFailed("Invalid API key: check the key, or ask an admin for one.")

    def session(self, subject: str, fp: str) -> Principal | None:
        """The holder of a dashboard session's key while its token still has the fingerprint
        ``fp`` (``warden.access.session``); None when the key is gone or has a new token.
        AuthenticationFailed (401) when it was revoked."""
        kind, _, name = subject.partition(":")
        found: list[tuple[bytes, Principal]] = []
        if kind == "admin" and self._admin is not None:
            found = [(self._admin, ADMIN)]
        elif kind == "config":
            found = [(hashed, who) for hashed, who in self._keys.items() if who.id == name]
        elif kind == "store" and self._keyring is not None:
            stored = self._keyring.lookup(name)
            found = [stored] if stored is not None else []
        for hashed, who in found:
            if hmac.compare_digest(fingerprint(hashed), fp):
                return who
        return None

    def identify(self, headers: Mapping[str, str]) -> Principal | None:
        """The caller of a /v1 route: None while /v1 is open, else a key allowed to call models
        (PermissionDenied, 403, for a role that may not)."""
        if self.open:
            return None
        found = self.resolve(headers)
        found.require("call_models")
        return found

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if not self.open:
            ctx.key = self.resolve(ctx.headers)
            ctx.key.require("call_models")  # after setting it: the refusal's record names the key
        await call_next(ctx)
