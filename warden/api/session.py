"""Dashboard sessions over HTTP: the middleware that checks the session cookie, and who a
request with that cookie comes from.

``SessionCookies`` verifies the ``warden_session`` cookie (its signature and expiry) of /api
and /ui requests that carry no ``Authorization`` header, and leaves what it found in the ASGI
scope: the Claim, or None for a cookie that is forged, tampered with or expired.
``session_caller`` turns that into the key's holder, resolved again on every request (a revoked
key loses access at once), and refuses a change (POST, DELETE, ...) whose ``Origin`` (or
``Referer``) is not this host (``require_same_origin``): a cookie is sent by the browser
whatever page asks, so that is what keeps another site from acting with it (CSRF; the cookie is
SameSite=Strict too).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.requests import Request, cookie_parser
from starlette.types import ASGIApp, Receive, Scope, Send

from warden.access.roles import Principal
from warden.access.session import COOKIE, Claim, SessionSecrets
from warden.config import Server
from warden.errors import AuthenticationFailed, PermissionDenied
from warden.runtime import RuntimeHolder

SCOPE_KEY = "warden.session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PREFIXES = ("/api/", "/ui")


class SessionCookies:
    """ASGI middleware: the verified session Claim of /api and /ui requests (see the module
    docstring). Requests with an ``Authorization`` header, and /v1, are left alone."""

    def __init__(self, app: ASGIApp, holder: RuntimeHolder, secrets: SessionSecrets,
                 clock: Callable[[], float] = time.time) -> None:
        self.app = app
        self._holder = holder
        self._secrets = secrets
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(_PREFIXES):
            value = _cookie(scope)
            if value is not None:
                signer = self._secrets.signer(self._holder.current.config.ui.session_secret)
                scope[SCOPE_KEY] = signer.verify(value, self._clock())
        await self.app(scope, receive, send)


def _cookie(scope: Scope) -> str | None:
    found: str | None = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            return None  # a key sent as a header wins over any cookie
        if name == b"cookie":
            found = cookie_parser(value.decode("latin-1")).get(COOKIE) or found
    return found


def has_session(request: Request) -> bool:
    """Whether the request is to be judged by its session cookie (it has one, and no
    ``Authorization`` header)."""
    return SCOPE_KEY in request.scope


def session_caller(holder: RuntimeHolder, request: Request) -> Principal:
    """The holder of the key of the request's dashboard session. AuthenticationFailed (401)
    when the cookie is not valid, has expired, or its key is gone, revoked or has a new token;
    PermissionDenied (403) for a change that does not come from this host's own pages."""
    claim: Claim | None = request.scope.get(SCOPE_KEY)
    if claim is None:
        raise AuthenticationFailed(
            "Your dashboard session has ended (or its cookie is not valid): log in again at "
            "/ui/login.", code="session_expired")
    who = holder.current.authenticate.session(claim.subject, claim.fingerprint)
    if who is None:
        raise AuthenticationFailed(
            "The key of this dashboard session no longer exists or has a new token: log in "
            "again at /ui/login.", code="session_key_gone")
    if request.method not in SAFE_METHODS:
        require_same_origin(request, holder.current.config.server)
    return who


def require_same_origin(request: Request, server: Server, unnamed_ok: bool = False) -> None:
    """Refuse (403) a request whose ``Origin`` (or, without one, ``Referer``) names another host
    than the gateway's own; and one that names none, unless ``unnamed_ok`` (a login from a
    script: browsers always name it).

    The gateway's own: the ``Host`` the request was sent to (a browser sets it, a page cannot),
    an origin listed in ``server.public_origins``, and ``X-Forwarded-Host`` only when the
    request comes from an address in ``server.trusted_proxies``: anyone else can send that
    header with any value."""
    headers = request.headers
    origin = headers.get("origin")
    source = origin if origin and origin != "null" else headers.get("referer")
    if source and _is_own(source, request, server):
        return
    if unnamed_ok and not origin and not source:
        return
    raise PermissionDenied(
        f"Refused: a change made with a dashboard session cookie must come from the dashboard's "
        f"own pages, and this request's Origin ({origin or 'none'}) is not this host "
        f"({headers.get('host') or 'unknown'}). Scripts and other sites send the key as "
        "'Authorization: Bearer <key>' instead; behind a proxy that changes the host, list the "
        "dashboard's address in server.public_origins.", code="cross_site_request")


def _is_own(source: str, request: Request, server: Server) -> bool:
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    netloc = parts.netloc.lower()
    if not netloc:
        return False
    if f"{parts.scheme.lower()}://{netloc}" in {o.rstrip("/").lower() for o in server.public_origins}:
        return True
    hosts = {request.headers.get("host", "").strip().lower()}
    forwarded = request.headers.get("x-forwarded-host")
    if forwarded and _from_trusted_proxy(request, server):
        hosts |= {h.strip().lower() for h in forwarded.split(",")}
    return netloc in hosts - {""}


def _from_trusted_proxy(request: Request, server: Server) -> bool:
    if not server.trusted_proxies or request.client is None:
        return False
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False)
               for net in server.trusted_proxies)
