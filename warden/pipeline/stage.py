"""The Stage contract and the runner that composes stages into one pipeline."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from warden.pipeline.context import RequestContext

Next = Callable[[RequestContext], Awaitable[None]]


class Stage(Protocol):
    """One step of the request path.

    A stage does its one thing and calls ``call_next(ctx)`` to continue, or raises a
    WardenError to stop the request. After ``call_next`` returns, ``ctx.result`` holds the answer
    (a Completion, or a StreamResult the stage may wrap).
    """

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None: ...


async def _end(ctx: RequestContext) -> None:
    return None


def stage_name(stage: Stage) -> str:
    """``RouteAndCall`` -> ``route_and_call``: the stage's span name."""
    name = type(stage).__name__
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


def _bind(stage: Stage, call_next: Next) -> Next:
    name = stage_name(stage)
    clock = time.perf_counter

    async def run(ctx: RequestContext) -> None:
        # Timed for the trace: the stage's own work and, nested in it, the stages after it.
        start = clock()
        try:
            await stage(ctx, call_next)
        finally:
            ctx.stages.append((name, start, clock()))

    return run


class Pipeline:
    """Stages composed once, in order; calling the pipeline runs a request through them."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)
        entry: Next = _end
        for stage in reversed(self.stages):
            entry = _bind(stage, entry)
        self._entry = entry

    async def __call__(self, ctx: RequestContext) -> None:
        await self._entry(ctx)
