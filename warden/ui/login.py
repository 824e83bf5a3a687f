"""Logging in to the dashboard: ``GET /ui/login`` (the form), ``POST /ui/login`` and ``POST
/ui/logout``.

``POST /ui/login`` takes ``key`` (and ``next``, the page to go back to) as a form or as JSON.
A key whose role may read (admin, operator, viewer; from the config or the store) gets the
session cookie (``warden.access.session``: HttpOnly, SameSite=Strict, Path=/, Secure over
HTTPS, for ``ui.session_hours``). The form answers 303 to ``next``; JSON answers 200 with
``{"next", "name", "role"}``. A wrong key is a 401 and an ``app`` key a 403, in the page for
the form and as an OpenAI error object for JSON; so is a login or a logout whose ``Origin``
names another site (a script that sends none may log in).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from warden.access.session import COOKIE, SessionSecrets, fingerprint
from warden.api.responses import JSON, error_response
from warden.api.session import has_session, require_same_origin
from warden.errors import InvalidRequest, PermissionDenied, WardenError
from warden.runtime import RuntimeHolder
from warden.ui.html import SECURITY_HEADERS, document, template
from warden.ui.pages import Pages

MAX_BODY = 16 * 1024


def safe_next(raw: str | None) -> str:
    """Where to go after logging in: a dashboard page of this host, else the overview."""
    if raw and raw.startswith("/ui") and not raw.startswith("/ui/login") \
            and "\\" not in raw and "//" not in raw:
        return raw
    return "/ui/overview"


def login_page(next_page: str, error: str | None = None, notice: str | None = None) -> str:
    shown = (f'<p class="login-error" data-testid="login-error" role="alert">'
             f"{html.escape(error)}</p>") if error else ""
    if notice:
        shown += f'<p class="notice" data-testid="login-info">{html.escape(notice)}</p>'
    body = template("login").substitute(next=html.escape(next_page), message=shown)
    return document("Log in", body, "login", data={"page": "login"})


class Login:
    def __init__(self, holder: RuntimeHolder, secrets: SessionSecrets, pages: Pages,
                 clock: Callable[[], float] = time.time) -> None:
        self._holder = holder
        self._secrets = secrets
        self._pages = pages
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/ui/login", self.form, methods=["GET"]),
                Route("/ui/login", self.login, methods=["POST"]),
                Route("/ui/logout", self.logout, methods=["POST"])]

    async def form(self, request: Request) -> Response:
        next_page = safe_next(request.query_params.get("next"))
        if self._pages.caller(request) is not None:
            return RedirectResponse(next_page, status_code=303)
        notice = "Your session has ended: log in again." if has_session(request) else None
        return HTMLResponse(login_page(next_page, notice=notice), headers=SECURITY_HEADERS)

    async def login(self, request: Request) -> Response:
        as_json = request.headers.get("content-type", "").startswith("application/json")
        next_page = "/ui/overview"
        try:
            # Another site may not log a visitor in (to a session of its choosing).
            require_same_origin(request, self._holder.current.config.server, unnamed_ok=True)
            key, next_page = await self._fields(request, as_json)
            auth = self._holder.current.authenticate
            if not auth.has_admin and auth.open:
                raise PermissionDenied(
                    "No key can log in: this gateway has no admin key and no other keys. Set "
                    "WARDEN_ADMIN_KEY (or admin_key in warden.yaml) and restart.")
            subject, hashed, who = auth.login(key)
            if not who.may("read"):
                raise PermissionDenied(
                    f"The key '{who.name}' has role {who.role}, which may only call the models "
                    "under /v1: log in with an admin, operator or viewer key.",
                    code="role_not_allowed")
        except WardenError as exc:
            if as_json:
                return error_response(exc)
            return HTMLResponse(login_page(next_page, error=exc.message), status_code=exc.status,
                                headers=SECURITY_HEADERS)
        ui = self._holder.current.config.ui
        seconds = ui.session_hours * 3600
        cookie = self._secrets.signer(ui.session_secret).issue(
            subject, fingerprint(hashed), self._clock() + seconds)
        response: Response = (JSON({"next": next_page, "name": who.name, "role": who.role})
                              if as_json else RedirectResponse(next_page, status_code=303))
        response.set_cookie(COOKIE, cookie, max_age=round(seconds), expires=round(seconds), path="/",
                            secure=request.url.scheme == "https", httponly=True,
                            samesite="strict")
        return response

    async def _fields(self, request: Request, as_json: bool) -> tuple[str, str]:
        """The key and the next page of a login; InvalidRequest without a key."""
        raw = await request.body()
        if len(raw) > MAX_BODY:
            raise InvalidRequest("The login body is too large.")
        if as_json:
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidRequest('The body must be JSON: {"key": "..."}.') from None
            if not isinstance(body, dict):
                raise InvalidRequest('The body must be JSON: {"key": "..."}.')
            key, next_raw = body.get("key"), body.get("next")
        else:
            form = parse_qs(raw.decode("utf-8", "replace"))
            key = form["key"][0] if form.get("key") else None
            next_raw = form["next"][0] if form.get("next") else None
        next_page = safe_next(next_raw if isinstance(next_raw, str) else None)
        if not isinstance(key, str) or not key.strip():
            raise InvalidRequest("Enter an API key (an admin, operator or viewer key).",
                                 param="key")
        return key.strip(), next_page

    async def logout(self, request: Request) -> Response:
        try:
            # Another site may not end a visitor's session either.
            require_same_origin(request, self._holder.current.config.server, unnamed_ok=True)
        except WardenError as exc:
            return error_response(exc)
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(COOKIE, path="/", secure=request.url.scheme == "https",
                               httponly=True, samesite="strict")
        return response
