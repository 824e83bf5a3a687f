"""The live overview: ``GET /api/live?range=1h`` (server-sent events) and ``GET
/api/overview?range=1h`` (one snapshot), and the hub behind them.

The hub computes the snapshot of a (range, team) once per tick (``interval_s``, 1 s) while
anyone follows it, in a worker thread, and every client that follows it gets the same bytes:
a hundred open dashboards cost what one does. A stream sends the latest snapshot at once, then
each new one (``event: overview``), or ``event: error`` with an OpenAI error object when the
store fails (the stream goes on, and the next snapshot replaces the error). It checks the
caller's key again before every event, so a revoked key or an ended session stops it, and it
ends after ``STREAM_S`` seconds anyway (the page reconnects at once): an open dashboard never
holds up a graceful shutdown for longer. In the background the hub keeps the long ranges' hour
blocks warm (``Overview.warm``), from the start and then every ``WARM_EVERY_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from warden.api.admin import authorize
from warden.api.ranges import range_seconds
from warden.api.responses import error_response
from warden.errors import WardenError
from warden.runtime import RuntimeHolder

log = logging.getLogger("warden.ui")

STREAM_S = 15.0
WARM_EVERY_S = 60.0
Build = Callable[[str, str | None], dict[str, Any]]
Event = tuple[bytes, bytes]  # (event name, JSON data)


@dataclass
class _Channel:
    """One (range, team): its latest event, and who follows it."""

    event: Event | None = None
    at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    followers: int = 0
    ticker: asyncio.Task[None] | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LiveHub:
    """Shared overview snapshots; see the module docstring. One per gateway."""

    def __init__(self, build: Build, warm: Callable[[], None], interval_s: float = 1.0,
                 warm_every_s: float = WARM_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._warm = warm
        self.interval_s = interval_s
        self.warm_every_s = warm_every_s
        self._clock = clock
        self._channels: dict[tuple[str, str | None], _Channel] = {}
        self._warmer: asyncio.Task[None] | None = None
        self._working: set[asyncio.Future[Any]] = set()  # computations in worker threads
        self.builds = 0  # snapshots computed, for tests and curiosity
        self.warmups = 0  # warm-ups that ended, with or without an error
        self.last_warm_s: float | None = None  # how long the last one took

    async def start(self) -> None:
        self._warmer = asyncio.get_running_loop().create_task(self._warm_forever())

    async def close(self, wait_s: float = 10.0) -> None:
        """Stop ticking and warming; wait (up to ``wait_s``) for the computations that run in
        threads, so that none reads the store after it is closed."""
        tasks = [t for t in (self._warmer, *(c.ticker for c in self._channels.values())) if t]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._working:
            await asyncio.wait(self._working, timeout=wait_s)

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` in a worker thread; a cancelled caller leaves it to finish (``close``
        waits for it)."""
        work = asyncio.get_running_loop().run_in_executor(None, fn, *args)
        self._working.add(work)
        work.add_done_callback(self._finished)
        return await asyncio.shield(work)

    def _finished(self, work: asyncio.Future[Any]) -> None:
        self._working.discard(work)
        if not work.cancelled():
            work.exception()  # seen: the caller handles it, or had gone (a closing gateway)

    async def latest(self, range_name: str, team: str | None) -> Event:
        """The snapshot of (range, team), at most one tick old."""
        return await self._refresh(self._channel(range_name, team), range_name, team)

    async def follow(self, range_name: str, team: str | None) -> AsyncGenerator[Event, None]:
        """The latest snapshot of (range, team) at once, then each new one."""
        channel = self._channel(range_name, team)
        channel.followers += 1
        try:
            if channel.ticker is None or channel.ticker.done():
                channel.ticker = asyncio.get_running_loop().create_task(
                    self._tick(channel, range_name, team))
            event = await self._refresh(channel, range_name, team)
            while True:
                changed = channel.changed  # set when the snapshot after this one is out
                yield event
                await changed.wait()
                event = channel.event or event
        finally:
            channel.followers -= 1

    def _channel(self, range_name: str, team: str | None) -> _Channel:
        return self._channels.setdefault((range_name, team), _Channel())

    async def _refresh(self, channel: _Channel, range_name: str, team: str | None,
                       force: bool = False) -> Event:
        """The channel's snapshot, computed now unless it is younger than a tick (one
        computation at a time: the clients that ask meanwhile wait for it)."""
        async with channel.lock:
            if not force and channel.event is not None \
                    and self._clock() - channel.at < self.interval_s:
                return channel.event
            began = self._clock()
            # A failure is logged when it begins, not every second while it lasts.
            first_failure = channel.event is None or channel.event[0] != b"error"
            try:
                snapshot = await self._in_thread(self._build, range_name, team)
                event = (b"overview", orjson.dumps(snapshot))
            except WardenError as exc:
                if first_failure:
                    log.warning("the live overview (%s) cannot be computed: %s", range_name,
                                exc.message)
                event = (b"error", orjson.dumps(exc.to_body()))
            except Exception:  # a bug must not stop the stream; it is logged
                if first_failure:
                    log.exception("the live overview (%s) failed", range_name)
                error = WardenError("The overview could not be computed: the gateway logged "
                                    "why. It is tried again every second.")
                event = (b"error", orjson.dumps(error.to_body()))
            if event[0] == b"overview" and not first_failure:
                log.info("the live overview (%s) is computed again", range_name)
            self.builds += 1
            channel.event, channel.at = event, began
            changed, channel.changed = channel.changed, asyncio.Event()
            changed.set()
            return event

    async def _tick(self, channel: _Channel, range_name: str, team: str | None) -> None:
        while channel.followers > 0:
            await asyncio.sleep(max(0.05, channel.at + self.interval_s - self._clock()))
            if channel.followers > 0:
                await self._refresh(channel, range_name, team, force=True)
        channel.ticker = None

    async def _warm_forever(self) -> None:
        while True:
            began = time.monotonic()
            try:
                await self._in_thread(self._warm)
            except WardenError as exc:
                log.warning("could not warm the dashboard's statistics: %s", exc.message)
            except Exception:  # keep warming later; never kill the gateway for it
                log.exception("warming the dashboard's statistics failed")
            else:
                log.debug("dashboard statistics warmed in %.2f s", time.monotonic() - began)
            self.warmups += 1
            self.last_warm_s = time.monotonic() - began
            await asyncio.sleep(self.warm_every_s)

    def collect(self) -> Iterable[Metric]:
        """Prometheus: the warm-ups so far and the last one's duration (the first after a start
        reads every record of the long ranges; the dashboard's first views wait for it)."""
        yield CounterMetricFamily("warden_dashboard_warmups", "Warm-ups of the dashboard's "
                                  "statistics that ended, since start.", value=self.warmups)
        if self.last_warm_s is not None:
            yield GaugeMetricFamily("warden_dashboard_last_warmup_seconds",
                                    "How long the last warm-up of the dashboard's statistics "
                                    "took.", value=self.last_warm_s)


def _sse(event: Event) -> bytes:
    name, data = event
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


class LiveApi:
    """The routes of the live overview."""

    def __init__(self, holder: RuntimeHolder, hub: LiveHub, stream_s: float = STREAM_S) -> None:
        self._holder = holder
        self._hub = hub
        self.stream_s = stream_s

    def routes(self) -> list[Route]:
        return [Route("/api/live", self.live, methods=["GET"]),
                Route("/api/overview", self.overview, methods=["GET"])]

    async def overview(self, request: Request) -> Response:
        """One snapshot as JSON (an error event as its error, with status 503)."""
        try:
            who = authorize(self._holder, request, "read")
            name, _ = range_seconds(request.query_params.get("range"))
            kind, data = await self._hub.latest(name, who.team_scope)
        except WardenError as exc:
            return error_response(exc)
        return Response(data, status_code=200 if kind == b"overview" else 503,
                        media_type="application/json", headers={"cache-control": "no-store"})

    async def live(self, request: Request) -> Response:
        try:
            who = authorize(self._holder, request, "read")
            name, _ = range_seconds(request.query_params.get("range"))
        except WardenError as exc:
            return error_response(exc)

        async def events() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            ends = time.monotonic() + self.stream_s
            async with contextlib.aclosing(self._hub.follow(name, who.team_scope)) as feed:
                async for event in feed:
                    try:  # the key may have been revoked, the session ended
                        authorize(self._holder, request, "read")
                    except WardenError as exc:
                        yield _sse((b"error", orjson.dumps(exc.to_body())))
                        return
                    yield _sse(event)
                    if time.monotonic() >= ends:
                        return

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store",
                                          "x-accel-buffering": "no"})
