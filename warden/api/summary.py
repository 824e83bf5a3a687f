"""``GET /api/summary``: totals of a time range, whole or per group (the dashboard's tiles,
breakdowns and spend tables). Reading needs a role that may read; a key that reads only its
team's records gets only those (``warden.api.query.request_filter``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.api.admin import authorize
from warden.api.query import request_filter
from warden.api.ranges import window
from warden.api.responses import JSON, error_response
from warden.errors import InvalidRequest, WardenError
from warden.runtime import RuntimeHolder
from warden.store.base import GROUP_BY, GroupBy, Store


def flag(params: Mapping[str, str], name: str, default: bool) -> bool:
    """A true/false query parameter."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise InvalidRequest(f"'{name}' must be true or false; got {raw!r}", param=name)


def group_by(raw: str | None) -> GroupBy | None:
    if not raw:
        return None
    if raw not in GROUP_BY:
        raise InvalidRequest(f"group_by must be one of {', '.join(GROUP_BY)}; got {raw!r}",
                             param="group_by")
    return raw  # type: ignore[return-value]  # checked against GROUP_BY just above


class SummaryApi:
    def __init__(self, holder: RuntimeHolder, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self._holder = holder
        self._store = store
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/api/summary", self.summary, methods=["GET"])]

    async def summary(self, request: Request) -> Response:
        """Query: ``range`` (15m ... 30d, default 1h) or ``since``/``until``; ``group_by``
        (model, deployment, key_id, team, provider); ``percentiles`` (default true); and the
        filters of /api/requests."""
        try:
            who = authorize(self._holder, request, "read")
            params = request.query_params
            since, until = window(params, self._clock())
            where = dataclasses.replace(request_filter(params, who), since=since, until=until)
            group = group_by(params.get("group_by"))
            percentiles = flag(params, "percentiles", True)
            rows = await asyncio.to_thread(self._store.summary, where, group, percentiles)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"since": since, "until": until,
                     "data": [dataclasses.asdict(row) for row in rows]})
