"""Admit: reserve the request's estimated use against the limits and budgets that apply, and
settle to its actual use when the answer is in (at the end of a stream), or give it back when
the request fails."""

from __future__ import annotations

import logging

from warden.limits.estimate import max_cost, output_tokens, prompt_tokens, text_tokens
from warden.limits.limiter import Limiter, Reservation
from warden.limits.rules import Policy, Who
from warden.observe.pricing import TokenPrice
from warden.pipeline.context import RequestContext, StreamResult
from warden.pipeline.stage import Next
from warden.routing.router import Dispatcher

log = logging.getLogger("warden.limits")


class Admit:
    def __init__(self, policy: Policy, limiter: Limiter, dispatcher: Dispatcher) -> None:
        self._policy = policy
        self._limiter = limiter
        if not policy.empty:
            limiter.counters(policy.settings)  # a missing redis package fails the (re)load
        # Before routing, a request's cost is estimated at its model's dearest deployment.
        self._prices: dict[str, list[TokenPrice | None]] = {
            name: [d.price for d in router.deployments]
            for name, router in dispatcher.routers.items()
        }

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        if self._policy.empty:
            await call_next(ctx)
            return
        key = ctx.key
        who = Who(key=key.id if key is not None else None,
                  team=key.team if key is not None else None, model=ctx.model)
        prompt = prompt_tokens(ctx.kind, ctx.body)
        output = output_tokens(ctx.kind, ctx.body, self._policy.settings.default_max_tokens)
        usd = max_cost(self._prices.get(ctx.model, ()), prompt, output)
        held = await self._limiter.reserve(self._policy, who, prompt + output, usd)
        try:
            await call_next(ctx)
        except BaseException:
            if ctx.usage is not None:  # an answer came, and was paid for, before the refusal
                await self._settle(ctx, held, prompt)
            else:  # nothing was used but the request itself, which stays counted
                await self._limiter.settle(held, 0, 0.0, ctx.model)
            raise
        result = ctx.result
        if isinstance(result, StreamResult):
            async def settle() -> None:
                try:
                    await self._settle(ctx, held, prompt)
                except Exception:  # the stream's other closers must still run
                    log.exception("limits: could not settle request %s", ctx.request_id)

            result.closers.append(settle)
        else:
            await self._settle(ctx, held, prompt)

    async def _settle(self, ctx: RequestContext, held: Reservation, prompt: int) -> None:
        usage = ctx.usage
        if usage is not None:
            tokens, input_tokens, output = usage.total_tokens, usage.prompt_tokens, \
                usage.completion_tokens
        elif isinstance(ctx.result, StreamResult):
            # A stream that ended without a usage chunk: what it carried, estimated.
            output = text_tokens("".join(ctx.output))
            input_tokens, tokens = prompt, prompt + output
        else:
            tokens, input_tokens, output = held.reserved_tokens, prompt, \
                held.reserved_tokens - prompt
        price = ctx.price
        cached = usage.cached_tokens if usage is not None else 0
        usd = price.cost(input_tokens, output, cached) if price is not None else None
        await self._limiter.settle(held, tokens, usd, ctx.model)
