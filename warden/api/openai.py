"""The OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from warden.api.responses import JSON, error_response, internal_error
from warden.api.tracing import client_request_id, request_id, traceparent
from warden.errors import InvalidRequest, NotFound, WardenError
from warden.pipeline.context import RequestContext, StreamResult
from warden.providers.base import ApiKind, Completion
from warden.runtime import Runtime, RuntimeHolder

_DONE = b"data: [DONE]\n\n"
log = logging.getLogger("warden.api")


class DisconnectWatch:
    """Cancels the current task when the client disconnects (``gone`` then says so).

    Started where a handler begins to wait on something long; ``stop`` when that ends. In an
    ``except asyncio.CancelledError``, ``absorb`` tells the client's leaving (the cancellation
    undone, True) from any other cancellation (False: re-raise it)."""

    def __init__(self, receive: Receive) -> None:
        self.gone = False
        self._task = asyncio.current_task()
        self._watcher = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        if self._task is not None:
            self._task.cancel()

    def absorb(self) -> bool:
        if not self.gone or self._task is None:
            return False
        self._task.uncancel()
        return True

    def stop(self) -> None:
        self._watcher.cancel()


class SSEResponse(Response):
    """A server-sent-event stream that always runs its cleanup, however the client leaves.

    It sends the events itself instead of using Starlette's StreamingResponse, whose per-stream
    task group cost about a tenth of the streaming CPU: one small task waits for the client's
    disconnect and, if it comes, cancels the stream.
    """

    media_type = "text/event-stream"

    def __init__(self, ctx: RequestContext, result: StreamResult, headers: dict[str, str],
                 on_close: Callable[[bool], None]) -> None:
        super().__init__(None, headers=headers)
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self._events = _sse(ctx, result)
        self._result = result
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watch = DisconnectWatch(receive)
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            async for data in self._events:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not watch.absorb():  # the client left: a normal end for a stream
                raise
        except OSError:
            pass  # the client's connection broke while we wrote: nothing left to send to
        finally:
            watch.stop()
            try:
                await self._events.aclose()  # type: ignore[attr-defined]
                await self._result.aclose()
            finally:
                self._on_close(watch.gone)


def _encode(chunk: dict[str, Any], include_usage: bool) -> bytes | None:
    if not include_usage and "usage" in chunk:
        if not chunk.get("choices"):
            return None
        chunk = {k: v for k, v in chunk.items() if k != "usage"}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _collect(ctx: RequestContext, chunk: dict[str, Any]) -> None:
    """Keep the streamed text for the record's payload."""
    for choice in chunk.get("choices") or ():
        delta = choice.get("delta")
        text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
        if isinstance(text, str) and text:
            ctx.output.append(text)


async def _sse(ctx: RequestContext, result: StreamResult) -> AsyncIterator[bytes]:
    _collect(ctx, result.first)
    first = _encode(result.first, ctx.include_usage)
    if first is not None:
        yield first
    try:
        async for chunk in result.rest:
            _collect(ctx, chunk)
            data = _encode(chunk, ctx.include_usage)
            if data is not None:
                yield data
    except WardenError as exc:
        # Headers are gone: the error travels in the stream, as OpenAI does.
        if ctx.error is None:
            ctx.error = exc
        yield b"data: " + orjson.dumps(exc.to_body()) + b"\n\n"
        return
    except Exception:
        # A fault of the gateway's own (answers are checked where they arrive): the client
        # still gets an error event instead of a cut connection, and the record says error.
        log.exception("stream %s (x-request-id %s) failed inside the gateway", ctx.request_id,
                      ctx.client_request_id)
        ctx.error = WardenError(f"The stream failed inside the gateway (request id "
                                f"{ctx.request_id}); the gateway's log has the details.",
                                code="internal_error")
        yield b"data: " + orjson.dumps(ctx.error.to_body()) + b"\n\n"
        return
    yield _DONE


async def _unless_client_leaves(work: Awaitable[None], receive: Receive) -> bool:
    """Await ``work``, cancelling it when the client disconnects first; False when it did.

    Starlette does not watch the connection while a handler runs, so without this a whole
    (non-streamed) answer would be generated to the end for nobody, holding its slot."""
    watch = DisconnectWatch(receive)
    try:
        await work
    except asyncio.CancelledError:
        if not watch.absorb():
            raise
        return False
    finally:
        watch.stop()
    return True


Finish = Callable[[RequestContext, int, WardenError | None], None]
"""Called once when a request has ended: its context, HTTP status and error (if any)."""


def _ignore(ctx: RequestContext, status: int, error: WardenError | None) -> None:
    return None


class OpenAIApi:
    """Route handlers bound to the runtime holder."""

    def __init__(self, holder: RuntimeHolder, max_body_bytes: int,
                 on_finish: Finish = _ignore) -> None:
        self._holder = holder
        self._max_body = max_body_bytes
        self._finish = on_finish

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.model, methods=["GET"]),
        ]

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, "chat")

    async def completions(self, request: Request) -> Response:
        return await self._handle(request, "completion")

    async def embeddings(self, request: Request) -> Response:
        return await self._handle(request, "embedding")

    async def _read(self, request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            raise InvalidRequest(f"The request body is larger than {self._max_body} bytes.",
                                 code="body_too_large", status=413)
        raw = await request.body()
        if len(raw) > self._max_body:
            raise InvalidRequest(f"The request body is larger than {self._max_body} bytes.",
                                 code="body_too_large", status=413)
        return raw

    async def _handle(self, request: Request, kind: ApiKind) -> Response:
        headers = request.headers
        rid, client_rid = request_id(), client_request_id(headers)
        tp, parent = traceparent(headers)
        out = {"x-request-id": client_rid or rid, "x-warden-record-id": rid, "traceparent": tp}
        rt = self._holder.current
        rt.enter()
        handed_off = False
        ctx = RequestContext(request_id=rid, kind=kind, traceparent=tp, headers=headers,
                             parent_span_id=parent, client_request_id=client_rid)
        try:
            ctx.raw = await self._read(request)
            if not await _unless_client_leaves(rt.pipeline(ctx), request.receive):
                gone = WardenError("The client closed the connection before the answer was "
                                   "ready.", status=499, code="client_closed")
                self._finish(ctx, 499, gone)
                return error_response(gone, out)  # nobody reads it: the connection is closed
            out["x-warden-deployment"] = ctx.deployment or ""
            out["x-warden-attempts"] = str(len(ctx.attempts))
            result = ctx.result
            if isinstance(result, StreamResult):
                out["cache-control"] = "no-cache"
                handed_off = True

                def closed(client_gone: bool) -> None:
                    rt.leave()
                    error = ctx.error
                    if error is None and client_gone:
                        error = WardenError("The client closed the stream before it ended.",
                                            status=499, code="client_closed")
                    self._finish(ctx, 200, error)

                return SSEResponse(ctx, result, out, closed)
            assert isinstance(result, Completion)
            self._finish(ctx, 200, None)
            return JSON(result.body, headers=out)
        except WardenError as exc:
            self._finish(ctx, exc.status, exc)
            return error_response(exc, out)
        except Exception:
            # A defect of the gateway, not the client's mistake: answered and recorded all the
            # same, under the request's id, which the log line carries too.
            log.exception("unhandled error in request %s (x-request-id %s; %s %s)", rid,
                          client_rid, request.method, request.url.path)
            error = internal_error(rid)
            self._finish(ctx, 500, error)
            return error_response(error, out)
        finally:
            if not handed_off:
                rt.leave()

    def _visible(self, rt: Runtime, request: Request) -> list[str]:
        key = rt.authenticate.identify(request.headers)
        names = [m.name for m in rt.config.models]
        if key is not None and key.models is not None:
            names = [n for n in names if n in key.models]
        return names

    async def models(self, request: Request) -> Response:
        rt = self._holder.current
        try:
            names = self._visible(rt, request)
        except WardenError as exc:
            return error_response(exc)
        created = int(time.time())
        return JSON({"object": "list", "data": [
            {"id": n, "object": "model", "created": created, "owned_by": "warden"} for n in names
        ]})

    async def model(self, request: Request) -> Response:
        rt = self._holder.current
        name = request.path_params["model"]
        try:
            if name not in self._visible(rt, request):
                raise NotFound(f"The model '{name}' does not exist; GET /v1/models lists them.",
                               param="model", code="model_not_found")
        except WardenError as exc:
            return error_response(exc)
        return JSON({"id": name, "object": "model", "created": int(time.time()),
                     "owned_by": "warden"})
