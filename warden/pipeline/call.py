"""Route and call: send the request to a deployment through the dispatcher."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from warden.errors import WardenError
from warden.pipeline.context import RequestContext, StreamResult
from warden.pipeline.stage import Next
from warden.providers.base import Completion, ProviderCall, Usage
from warden.routing.deployment import LiveDeployment
from warden.routing.router import Dispatcher, release


async def _complete(dep: LiveDeployment, call: ProviderCall) -> Completion:
    return await dep.provider.complete(call)


async def _open_stream(dep: LiveDeployment, call: ProviderCall) -> StreamResult:
    chunks = dep.provider.stream(call)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise WardenError(f"deployment '{dep.id}' sent an empty stream", status=502) from None
    except BaseException:
        await chunks.aclose()  # type: ignore[attr-defined]
        raise
    return StreamResult(first=first, rest=chunks)


class RouteAndCall:
    """The last stage: answers the request, with retries and fallbacks, and fills the context."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if ctx.stream:
            dep, opened = await self._dispatcher.run(ctx, _open_stream, on_done=release)
            ctx.ttft_s = ctx.elapsed()
            upstream = opened.rest

            async def close() -> None:
                try:
                    await upstream.aclose()  # type: ignore[attr-defined]
                finally:
                    release(dep)

            ctx.result = StreamResult(first=opened.first, rest=_follow(ctx, dep, upstream),
                                      closers=[close])
        else:
            dep, done = await self._dispatcher.run(ctx, _complete)
            ctx.result = done
            ctx.usage = done.usage
        ctx.deployment = dep.id
        ctx.provider = dep.config.provider
        ctx.upstream_model = dep.upstream_model
        ctx.price = dep.price
        await call_next(ctx)


async def _follow(ctx: RequestContext, dep: LiveDeployment,
                  chunks: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """The rest of a stream: counts usage and marks a mid-stream failure on the deployment."""
    try:
        async for chunk in chunks:
            usage = chunk.get("usage")
            if usage:
                ctx.usage = Usage.from_wire(usage)
            yield chunk
    except WardenError as exc:
        dep.fail(exc.message)
        ctx.error = exc
        raise
