"""Guard: the prompt scanned (and blocked, redacted or pseudonymized) before the call, the answer
scanned after it — whole, or streamed with a hold-back window."""

from __future__ import annotations

from warden.guard.policy import Policies
from warden.guard.session import GuardSession
from warden.guard.stream import StreamGuard
from warden.pipeline.context import RequestContext, StreamResult
from warden.pipeline.stage import Next
from warden.providers.base import Completion


class Guard:
    def __init__(self, policies: Policies, holdback: int, block_status: int) -> None:
        self._policies = policies
        self._holdback = holdback
        self._block_status = block_status

    async def __call__(self, ctx: RequestContext, call_next: Next) -> None:
        policy = self._policies.for_request(ctx.model, ctx.key)
        if policy is None:
            await call_next(ctx)
            return
        session = GuardSession(policy, ctx, self._block_status)
        if policy.input or policy.canary:
            await session.check_input()
        await call_next(ctx)
        result = ctx.result
        if not (policy.output or session.pseudonyms.by_placeholder):
            return
        if isinstance(result, Completion):
            ctx.result = await session.check_answer(result)
        elif isinstance(result, StreamResult):
            ctx.result = await StreamGuard(session, self._holdback).wrap(result)
