"""Route and call: send the request to a deployment through the dispatcher.

Every answer is checked here (``warden.providers.validate``) whichever provider made it, before
any other stage reads it. A malformed whole answer, or a malformed first chunk of a stream,
fails its attempt with a retryable 502 ``upstream_bad_response``: the deployment's breaker
counts it and the dispatcher tries another deployment. A malformed chunk later in a stream ends
the stream with that error (the API sends it as an error event). A usage that cannot be trusted
is replaced by an estimate, and the attempt's record says why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from warden.errors import UpstreamBadResponse, WardenError
from warden.pipeline.context import RequestContext, StreamResult
from warden.pipeline.stage import Next
from warden.providers.base import Completion, ProviderCall, Usage
from warden.providers.validate import check_answer, check_chunk, check_usage, estimate_usage
from warden.routing.deployment import LiveDeployment
from warden.routing.router import Dispatcher, release


def _where(dep: LiveDeployment) -> str:
    return f"deployment '{dep.id}'"


async def _complete(dep: LiveDeployment, call: ProviderCall) -> tuple[Completion, int]:
    done = await dep.provider.complete(call)
    chars = check_answer(call.kind, done.body, _where(dep),
                         base64=call.body.get("encoding_format") == "base64")
    return done, chars


async def _open_stream(dep: LiveDeployment, call: ProviderCall) -> tuple[StreamResult, int]:
    chunks = dep.provider.stream(call)
    try:
        first = await anext(chunks)
        chars = check_chunk(call.kind, first, _where(dep))
    except StopAsyncIteration:
        raise UpstreamBadResponse(f"{_where(dep)}: upstream sent an empty stream") from None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return StreamResult(first=first, rest=chunks), chars


class RouteAndCall:
    """The last stage: answers the request, with retries and fallbacks, and fills the context."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if ctx.stream:
            dep, (opened, chars) = await self._dispatcher.run(ctx, _open_stream, on_done=release)
            ctx.ttft_s = ctx.elapsed()
            upstream = opened.rest

            async def close() -> None:
                try:
                    await upstream.aclose()  # type: ignore[attr-defined]
                finally:
                    release(dep)

            if opened.first.get("usage") is not None:
                ctx.usage = _usage(ctx, dep, opened.first, chars)
            ctx.result = StreamResult(first=opened.first, rest=_follow(ctx, dep, upstream, chars),
                                      closers=[close])
        else:
            dep, (done, chars) = await self._dispatcher.run(ctx, _complete)
            ctx.result = done
            ctx.usage = _usage(ctx, dep, done.body, chars) if "usage" in done.body else done.usage
        ctx.deployment = dep.id
        ctx.provider = dep.config.provider
        ctx.upstream_model = dep.upstream_model
        ctx.price = dep.price
        await call_next(ctx)


def _usage(ctx: RequestContext, dep: LiveDeployment, holder: dict[str, Any],
           chars: int) -> Usage | None:
    """The checked usage of an answer or chunk (``holder``); an estimate when it is rejected,
    written back into ``holder`` so that the client is told the numbers the record keeps."""
    usage, rejected = check_usage(holder.get("usage"), chars)
    if rejected is None:
        return usage
    prompt = ctx.body.get("messages", ctx.body.get("prompt", ctx.body.get("input")))
    estimate = estimate_usage(len(orjson.dumps(prompt)) if prompt is not None else 0, chars)
    holder["usage"] = estimate.to_wire()
    dep.usage_rejected += 1
    ctx.attempts[-1].error = f"upstream usage rejected ({rejected}); recorded an estimate"
    return estimate


async def _follow(ctx: RequestContext, dep: LiveDeployment, chunks: AsyncIterator[dict[str, Any]],
                  chars: int) -> AsyncIterator[dict[str, Any]]:
    """The rest of a stream: checks each chunk, counts usage and marks a mid-stream failure on
    the deployment."""
    kind, where = ctx.kind, _where(dep)
    try:
        async for chunk in chunks:
            chars += check_chunk(kind, chunk, where)
            if chunk.get("usage") is not None:
                ctx.usage = _usage(ctx, dep, chunk, chars)
            yield chunk
    except WardenError as exc:
        dep.fail(exc.message)
        ctx.error = exc
        raise
