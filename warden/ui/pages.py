"""The dashboard's pages under /ui, and its static files under /ui/static.

Every page needs a dashboard session (``warden.ui.login``): without one, or with one that has
ended, the browser is sent to ``/ui/login?next=<the page>`` (303). Admins see every page;
operators and viewers all but the keys page, which answers them 403 with a page that says so.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from warden.access.roles import Principal
from warden.api.ranges import RANGES
from warden.api.session import has_session, session_caller
from warden.errors import AuthenticationFailed
from warden.runtime import RuntimeHolder
from warden.ui.html import SECURITY_HEADERS, Page, page, range_select

STATIC_DIR = Path(__file__).parent / "static"

OVERVIEW = Page("overview", "Overview", "overview", "overview", charts=True)
REQUESTS = Page("requests", "Requests", "requests", "requests")
TRACE = Page("requests", "Request", "trace", "trace")
MODELS = Page("models", "Models and deployments", "models", "models")
GUARDRAILS = Page("guardrails", "Guardrails", "guardrails", "guardrails", charts=True)
COSTS = Page("costs", "Costs", "costs", "costs", charts=True)
KEYS = Page("keys", "API keys", "keys", "keys")
FORBIDDEN = Page(None, "Not allowed", "forbidden", "static")
MISSING = Page(None, "Not found", "missing", "static")


class Static(StaticFiles):
    """The dashboard's assets; browsers check them again on every use (``no-cache``: an
    upgraded gateway's scripts are never mixed with old ones), which costs a 304."""

    def file_response(self, full_path: Any, stat_result: Any, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = "no-cache"
        response.headers["x-content-type-options"] = "nosniff"
        return response


def login_redirect(request: Request) -> Response:
    """303 to the login page, which comes back here afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/login?next={quote(here, safe='')}", status_code=303)


def _range(request: Request, default: str) -> str:
    name = request.query_params.get("range") or default
    return name if name in RANGES else default


class Pages:
    """The page routes; each answers the HTML shell of one page (its script does the rest)."""

    def __init__(self, holder: RuntimeHolder) -> None:
        self._holder = holder

    def routes(self) -> list[BaseRoute]:
        return [
            Mount("/ui/static", app=Static(directory=STATIC_DIR), name="ui-static"),
            Route("/ui", self.overview, methods=["GET"]),
            Route("/ui/overview", self.overview, methods=["GET"]),
            Route("/ui/requests", self.requests, methods=["GET"]),
            Route("/ui/requests/{request_id}", self.trace, methods=["GET"]),
            Route("/ui/models", self.models, methods=["GET"]),
            Route("/ui/guardrails", self.guardrails, methods=["GET"]),
            Route("/ui/costs", self.costs, methods=["GET"]),
            Route("/ui/keys", self.keys, methods=["GET"]),
            Route("/ui/{rest:path}", self.missing, methods=["GET"]),
        ]

    def caller(self, request: Request) -> Principal | None:
        """Who the request's dashboard session belongs to; None without a valid one."""
        if not has_session(request):
            return None
        try:
            return session_caller(self._holder, request)
        except AuthenticationFailed:
            return None

    def _render(self, request: Request, spec: Page, values: Mapping[str, str] | None = None,
                data: Mapping[str, str] | None = None, status: int = 200) -> Response:
        who = self.caller(request)
        if who is None:
            return login_redirect(request)
        if spec is KEYS and not who.may("administer"):
            spec, values, data, status = FORBIDDEN, {"what": "API keys"}, None, 403
        return HTMLResponse(page(spec, who, values, data), status_code=status,
                            headers=SECURITY_HEADERS)

    async def overview(self, request: Request) -> Response:
        return self._render(request, OVERVIEW,
                            {"range_select": range_select("range", _range(request, "1h"))})

    async def requests(self, request: Request) -> Response:
        return self._render(request, REQUESTS, {
            "range_select": range_select("filter-range", _range(request, "24h"), "Time")})

    async def trace(self, request: Request) -> Response:
        rid = request.path_params["request_id"]
        return self._render(request, TRACE, {"request_id": html.escape(rid)},
                            {"request-id": rid})

    async def models(self, request: Request) -> Response:
        return self._render(request, MODELS,
                            {"range_select": range_select("range", _range(request, "1h"))})

    async def guardrails(self, request: Request) -> Response:
        return self._render(request, GUARDRAILS,
                            {"range_select": range_select("range", _range(request, "24h"))})

    async def costs(self, request: Request) -> Response:
        return self._render(request, COSTS,
                            {"range_select": range_select("range", _range(request, "30d"))})

    async def keys(self, request: Request) -> Response:
        return self._render(request, KEYS)

    async def missing(self, request: Request) -> Response:
        if request.url.path == "/ui/":
            return await self.overview(request)
        return self._render(request, MISSING, {"path": html.escape(request.url.path)},
                            status=404)
