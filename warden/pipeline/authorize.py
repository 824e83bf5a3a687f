"""Authorize: the model must exist and the key must be allowed to use it."""

from __future__ import annotations

from warden.errors import PermissionDenied
from warden.pipeline.context import RequestContext
from warden.pipeline.stage import Next
from warden.routing.router import Dispatcher


class Authorize:
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        self._dispatcher.router(ctx.model)  # 404 for an unknown model
        key = ctx.key
        if key is not None and key.models is not None and ctx.model not in key.models:
            raise PermissionDenied(
                f"The key '{key.name}' ({key.id}) may not use model '{ctx.model}'; "
                f"it may use: {', '.join(key.models) or 'no models'}.",
                param="model", code="model_not_allowed",
            )
        await call_next(ctx)
