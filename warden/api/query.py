"""The query API under /api: stored requests, statistics and feedback.

Reading needs a role that may read (admin, operator, viewer), feedback one that may operate
(admin, operator). A key that is not an admin and has a team sees only its team's records: the
team filter is forced (asking for another team is a 403), and another team's request is
answered as unknown (404)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from warden.access.roles import Principal
from warden.api.admin import authorize
from warden.api.ranges import MAX_BUCKET_S, integer, number, range_seconds, timestamp
from warden.api.responses import JSON, error_response
from warden.errors import InvalidRequest, NotFound, PermissionDenied, WardenError
from warden.observe.resources import Sample
from warden.runtime import RuntimeHolder
from warden.store.base import MAX_PAGE, RequestDetail, RequestFilter, StatsQuery, Store

T = TypeVar("T")
_FILTERS = {"model": "model", "deployment": "deployment", "key": "key_id", "team": "team",
            "user": "end_user", "session": "session_id", "status": "status", "q": "text",
            "request_id": "client_request_id"}


def request_filter(params: Any, who: Principal | None = None) -> RequestFilter:
    """The filter described by query parameters (``tag`` may repeat, as key:value; ``range``,
    15m ... 30d, stands for a ``since`` that long before ``until`` or now), limited to the team
    of ``who`` when its reading is limited to one."""
    tags: dict[str, str] = {}
    for tag in params.getlist("tag"):
        key, sep, value = tag.partition(":")
        if not sep or not key:
            raise InvalidRequest(f"'tag' must be key:value; got {tag!r}", param="tag")
        tags[key.lower()] = value
    fields = {attr: params.get(name) for name, attr in _FILTERS.items() if params.get(name)}
    if who is not None and who.team_scope is not None:
        scope = who.team_scope
        if fields.get("team", scope) != scope:
            raise PermissionDenied(
                f"The key '{who.name}' ({who.id}) reads only the records of team '{scope}'; "
                f"leave out team= or ask for team={scope}.", param="team", code="team_not_allowed")
        fields["team"] = scope
    since, until = timestamp(params, "since"), timestamp(params, "until")
    if since is None and params.get("range"):  # the last 15m ... 30d, by the gateway's clock
        since = (time.time() if until is None else until) - range_seconds(params.get("range"))[1]
    return RequestFilter(since=since, until=until, tags=tags, **fields)


class QueryApi:
    def __init__(self, holder: RuntimeHolder, store: Store,
                 resources: Callable[[], list[Sample]]) -> None:
        self._holder = holder
        self._store = store
        self._resources = resources

    def routes(self) -> list[Route]:
        return [
            Route("/api/requests", self.requests, methods=["GET"]),
            Route("/api/requests/{request_id}", self.request, methods=["GET"]),
            Route("/api/stats", self.stats, methods=["GET"]),
            Route("/api/feedback", self.feedback, methods=["POST"]),
            Route("/api/resources", self.resources, methods=["GET"]),
        ]

    async def resources(self, request: Request) -> Response:
        try:
            authorize(self._holder, request, "read")
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": [dataclasses.asdict(s) for s in self._resources()]})

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def requests(self, request: Request) -> Response:
        try:
            who = authorize(self._holder, request, "read")
            where = request_filter(request.query_params, who)
            limit = integer(request.query_params, "limit", 50, 1, MAX_PAGE)
            cursor = request.query_params.get("cursor") or None
            page = await self._run(lambda: self._store.query(where, cursor, limit))
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": [dataclasses.asdict(r) for r in page.records],
                     "next_cursor": page.next_cursor})

    async def request(self, request: Request) -> Response:
        rid = request.path_params["request_id"]
        try:
            detail = await self._detail(authorize(self._holder, request, "read"), rid)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"record": dataclasses.asdict(detail.record),
                     "payload": dataclasses.asdict(detail.payload) if detail.payload else None,
                     "feedback": [dataclasses.asdict(f) for f in detail.feedback]})

    async def _detail(self, who: Principal, rid: str) -> RequestDetail:
        """A stored request that ``who`` may read, by its record id or, when no record has that
        id, by the ``x-request-id`` its client sent; NotFound for another team's, as for one
        that does not exist; Conflict when the client sent that id with several requests."""
        detail = await self._run(lambda: self._store.get(rid))
        if detail is None:
            where = RequestFilter(client_request_id=rid, team=who.team_scope)
            found = (await self._run(lambda: self._store.query(where, limit=2))).records
            if len(found) > 1:
                raise InvalidRequest(
                    f"Several stored requests were sent with x-request-id '{rid}': "
                    f"GET /api/requests?request_id={rid} lists them; read one by its own id "
                    "(request_id, returned in the x-warden-record-id header).",
                    param="request_id", code="request_id_ambiguous", status=409)
            if found:
                detail = await self._run(lambda: self._store.get(found[0].request_id))
        if detail is None or who.team_scope not in (None, detail.record.team):
            raise NotFound(f"No stored request has id '{rid}' (it may not be written yet, "
                           "or retention removed it).", code="request_not_found")
        return detail

    async def stats(self, request: Request) -> Response:
        try:
            who = authorize(self._holder, request, "read")
            params = request.query_params
            group = params.get("group_by") or None
            bucket = number(params, "bucket", 1.0, MAX_BUCKET_S, "a number of seconds")
            query = StatsQuery(bucket_s=bucket or 60.0,
                               group_by=group,  # type: ignore[arg-type]  # validated by StatsQuery
                               where=request_filter(params, who))
            rows = await self._run(lambda: self._store.stats(query))
        except WardenError as exc:
            return error_response(exc)
        return JSON({"data": [dataclasses.asdict(r) for r in rows]})

    async def feedback(self, request: Request) -> Response:
        try:
            who = authorize(self._holder, request, "operate")
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError:
                raise InvalidRequest("The body must be JSON: {request_id, score, label, comment}."
                                     ) from None
            if not isinstance(body, dict) or not isinstance(body.get("request_id"), str):
                raise InvalidRequest("'request_id' is required.", param="request_id")
            score = body.get("score")
            if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
                raise InvalidRequest("'score' must be a number.", param="score")
            for name in ("label", "comment", "source"):
                if body.get(name) is not None and not isinstance(body[name], str):
                    raise InvalidRequest(f"'{name}' must be a string.", param=name)
            rid = body["request_id"]
            if who.team_scope is not None:
                rid = (await self._detail(who, rid)).record.request_id

            def add() -> int:
                return self._store.add_feedback(rid, score=score, label=body.get("label"),
                                                comment=body.get("comment"),
                                                source=str(body.get("source") or "api"))

            try:
                fid = await self._run(add)
            except NotFound:
                # A client's x-request-id names its record too, when it sent it only once.
                rid = (await self._detail(who, rid)).record.request_id
                fid = await self._run(add)
        except WardenError as exc:
            return error_response(exc)
        return JSON({"id": fid, "request_id": rid}, status_code=201)
