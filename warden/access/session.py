"""Dashboard sessions: the signed cookie that stands for an API key after a login at /ui/login.

The cookie holds who logged in (a subject: ``admin``, ``config:<key name>`` or
``store:<key id>``), a fingerprint of the key's token and when the session ends, signed with
HMAC-SHA256; never the key. The gateway resolves the subject again on every request, so a key
that is revoked, removed from the config or given a new token ends its sessions at once. The
fingerprint is a hash of the token's SHA-256, so it tells nothing about the token.

    value = base64url(JSON {"sub", "fp", "exp"}) "." base64url(HMAC-SHA256(secret, payload))
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import orjson

COOKIE = "warden_session"
SESSION_S = 12 * 3600.0


@dataclass(frozen=True, slots=True)
class Claim:
    """What a valid session cookie says."""

    subject: str
    fingerprint: str
    expires_at: float


def fingerprint(digest: bytes) -> str:
    """The fingerprint of a token, from its SHA-256 ``digest``."""
    return hashlib.sha256(b"warden-session\x00" + digest).hexdigest()[:24]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks session cookie values with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()

    def issue(self, subject: str, fp: str, expires_at: float) -> str:
        payload = orjson.dumps({"sub": subject, "fp": fp, "exp": round(expires_at)})
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def verify(self, value: str, now: float) -> Claim | None:
        """The claim of a cookie value signed by this secret and not expired; None otherwise."""
        encoded, dot, mac = value.partition(".")
        if not dot:
            return None
        try:
            payload, signature = _unb64(encoded), _unb64(mac)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(signature, self._mac(payload)):
            return None
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        sub, fp, exp = data.get("sub"), data.get("fp"), data.get("exp")
        if not (isinstance(sub, str) and isinstance(fp, str) and isinstance(exp, int | float)):
            return None
        if exp <= now:
            return None
        return Claim(sub, fp, float(exp))


class SessionSecrets:
    """The signer of the configured ``ui.session_secret``, or of a random secret made once per
    process when none is set (sessions then end when the process does). One per gateway."""

    def __init__(self) -> None:
        self._fallback = SessionSigner(secrets.token_bytes(32))
        self._signers: dict[str, SessionSigner] = {}

    def signer(self, secret: str | None) -> SessionSigner:
        if secret is None:
            return self._fallback
        found = self._signers.get(secret)
        if found is None:
            self._signers = {secret: SessionSigner(secret.encode())}  # a reload may change it
            found = self._signers[secret]
        return found
