"""The guard findings API: ``GET /api/findings`` (counts per time bucket, scanner, type,
action and direction) and ``GET /api/findings/requests`` (the newest requests with a finding of
some actions: blocked, redacted). Reading needs a role that may read; a key that reads only its
team's records gets only those."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.api.admin import authorize
from warden.api.query import request_filter
from warden.api.ranges import MAX_BUCKET_S, integer, number, window
from warden.api.responses import JSON, error_response
from warden.errors import InvalidRequest, WardenError
from warden.runtime import RuntimeHolder
from warden.store.base import RequestFilter, Store

ACTIONS = ("block", "redact", "pseudonymize", "flag")
MAX_BUCKETS = 2000


def default_bucket(seconds: float) -> float:
    """About a hundred buckets over ``seconds``, of a round size."""
    for size in (15, 60, 300, 900, 3600, 6 * 3600, 86400):
        if seconds / size <= 120:
            return float(size)
    return 86400.0


class FindingsApi:
    def __init__(self, holder: RuntimeHolder, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self._holder = holder
        self._store = store
        self._clock = clock

    def routes(self) -> list[Route]:
        return [Route("/api/findings", self.counts, methods=["GET"]),
                Route("/api/findings/requests", self.requests, methods=["GET"])]

    def _where(self, request: Request, default: str) -> tuple[RequestFilter, float, float]:
        who = authorize(self._holder, request, "read")
        since, until = window(request.query_params, self._clock(), default)
        where = request_filter(request.query_params, who)
        return dataclasses.replace(where, since=since, until=until, text=None), since, until

    async def counts(self, request: Request) -> Response:
        """Query: ``range`` (default 1h) or ``since``/``until``; ``bucket`` (seconds; by default about a
        hundred buckets); and the filters of /api/requests but ``q``."""
        try:
            where, since, until = self._where(request, "1h")
            bucket = number(request.query_params, "bucket", 1.0, MAX_BUCKET_S,
                            "a number of seconds") or default_bucket(until - since)
            if (until - since) / bucket > MAX_BUCKETS:
                raise InvalidRequest(f"at most {MAX_BUCKETS} buckets: make bucket larger",
                                     param="bucket")
            rows = await asyncio.to_thread(self._store.finding_counts, where, bucket)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"since": since, "until": until, "bucket_s": bucket,
                     "data": [dataclasses.asdict(row) for row in rows]})

    async def requests(self, request: Request) -> Response:
        """Query: ``action`` (repeatable: block, redact, pseudonymize, flag; default block);
        ``range`` (default 24h) or ``since``/``until``; ``limit`` (1 to 200, default 20); and
        the filters of /api/requests but ``q``."""
        try:
            where, _, _ = self._where(request, "24h")
            actions = request.query_params.getlist("action") or ["block"]
            unknown = [a for a in actions if a not in ACTIONS]
            if unknown:
                raise InvalidRequest(f"action must be one of {', '.join(ACTIONS)}; got "
                                     f"{unknown[0]!r}", param="action")
            limit = integer(request.query_params, "limit", 20, 1, 200)
            found = await asyncio.to_thread(self._store.flagged, where, actions, limit)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": [dataclasses.asdict(r) for r in found]})
