"""The attempt loop: pick a deployment, call it, and on a retryable failure back off and try
again (another deployment first), then the fallback models, counting every attempt."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from warden.config import ModelRoute
from warden.errors import NotFound, Unavailable, UpstreamStatus, WardenError
from warden.pipeline.context import Attempt, RequestContext
from warden.providers.base import ProviderCall
from warden.routing.deployment import LiveDeployment
from warden.routing.strategy import Strategy, make_strategy

T = TypeVar("T")

BUSY_CODES = frozenset({"local_queue_full"})


def busy(exc: WardenError) -> bool:
    """True for back-pressure: the deployment is up but asks to be tried later (a local model's
    full queue, an upstream's 429). It is retried like a failure, on another deployment first,
    but it is not one: counting it would open the breaker on a burst and refuse every request
    for the cooldown while nothing is in flight."""
    return exc.status == 429 or exc.code in BUSY_CODES


class ModelRouter:
    """The deployments of one public model and how to choose among them."""

    def __init__(self, route: ModelRoute, deployments: list[LiveDeployment],
                 rng: random.Random) -> None:
        self.route = route
        self.name = route.name
        self.routing = route.routing
        self.deployments = deployments
        self.strategy: Strategy = make_strategy(route.routing.strategy, rng)

    def choose(self, tried: set[LiveDeployment]) -> LiveDeployment | None:
        """A deployment to try next, preferring ones not tried yet for this request."""
        ready = [d for d in self.deployments if d.available()]
        if not ready:
            # Every deployment failed its health check: still try those the breaker allows.
            ready = [d for d in self.deployments if d.breaker.available()]
        if not ready:
            return None
        fresh = [d for d in ready if d not in tried]
        if len(fresh) == 1:
            return fresh[0]  # a retry with one untried deployment left: no choice to make
        return self.strategy.pick(fresh or ready)

    def retry_in(self) -> float:
        waits = [d.breaker.retry_in() for d in self.deployments]
        return min(waits) if waits else 1.0


class Dispatcher:
    """Runs one request against the routers: retries, backoff, breakers and fallbacks."""

    def __init__(self, routers: dict[str, ModelRouter], rng: random.Random) -> None:
        self.routers = routers
        self._rng = rng

    def router(self, model: str) -> ModelRouter:
        router = self.routers.get(model)
        if router is None:
            raise NotFound(
                f"The model '{model}' does not exist; GET /v1/models lists the models served here.",
                param="model", code="model_not_found",
            )
        return router

    def chain(self, model: str) -> list[ModelRouter]:
        """The model and its fallbacks (transitively), each once, in order."""
        order: list[ModelRouter] = []
        queue = [model]
        seen: set[str] = set()
        while queue:
            name = queue.pop(0)
            if name in seen or name not in self.routers:
                continue
            seen.add(name)
            router = self.routers[name]
            order.append(router)
            queue.extend(router.routing.fallbacks)
        return order

    async def run(
        self,
        ctx: RequestContext,
        attempt: Callable[[LiveDeployment, ProviderCall], Awaitable[T]],
        on_done: Callable[[LiveDeployment], None] | None = None,
    ) -> tuple[LiveDeployment, T]:
        """Try deployments until one answers; raise the last error when none does.

        ``attempt`` performs one call. The deployment's in-flight count is released when it
        returns, unless ``on_done`` is given: then the caller releases it (streams do, at their
        end) by calling ``on_done(deployment)``.
        """
        last: WardenError | None = None
        chain = self.chain(ctx.model)
        for router in chain:
            tried: set[LiveDeployment] = set()
            for n in range(router.routing.retries + 1):
                dep = router.choose(tried)
                if dep is None:
                    break
                if n:
                    await asyncio.sleep(self._backoff(router, n, last))
                    if not dep.available() and dep.healthy:
                        # The breaker opened while we waited: choose again.
                        dep = router.choose(tried)
                        if dep is None:
                            break
                tried.add(dep)
                try:
                    result = await self._one(ctx, router, dep, attempt, keep=on_done is not None)
                except WardenError as exc:
                    last = exc
                    if not exc.retryable:
                        raise
                    continue
                return dep, result
        if last is not None:
            raise last
        wait = min(r.retry_in() for r in chain) if chain else 1.0
        raise Unavailable(
            f"No deployment of model '{ctx.model}' is available now (circuit breakers open); "
            f"retry in {wait:.0f} s.", code="no_deployment_available",
            retry_after=max(1.0, wait),
        )

    async def _one(
        self,
        ctx: RequestContext,
        router: ModelRouter,
        dep: LiveDeployment,
        attempt: Callable[[LiveDeployment, ProviderCall], Awaitable[T]],
        keep: bool,
    ) -> T:
        body = ctx.body
        if body.get("model") != dep.upstream_model:
            body = {**body, "model": dep.upstream_model}
        # Each attempt is its own client span: the upstream's spans nest under it.
        span_id = os.urandom(8).hex()
        tp = ctx.traceparent
        call = ProviderCall(
            kind=ctx.kind, body=body, stream=ctx.stream, request_id=ctx.request_id,
            timeouts=dep.timeouts,
            headers={"x-request-id": ctx.client_request_id or ctx.request_id,
                     "traceparent": f"{tp[:36]}{span_id}{tp[52:]}"},
        )
        rec = Attempt(model=router.name, deployment=dep.id, provider=dep.config.provider,
                      started_s=ctx.elapsed(), span_id=span_id)
        ctx.attempts.append(rec)
        dep.breaker.acquire()
        dep.in_flight += 1
        dep.requests += 1
        t0 = time.perf_counter()
        ok = False
        try:
            result = await attempt(dep, call)
            ok = True
        except WardenError as exc:
            rec.latency_s = time.perf_counter() - t0
            # The upstream's own status when it answered (a 500 it sent, not the 502 we show).
            rec.status = exc.upstream_status if isinstance(exc, UpstreamStatus) else exc.status
            rec.error, rec.error_type = exc.message, exc.type
            if busy(exc):
                dep.breaker.release()
            elif exc.retryable:
                dep.fail(exc.message)
            else:
                dep.breaker.success()
            raise
        except BaseException:
            dep.breaker.release()
            raise
        finally:
            if not (keep and ok):
                dep.in_flight -= 1
        elapsed = time.perf_counter() - t0
        rec.latency_s = elapsed
        rec.status = 200
        dep.observe_latency(elapsed)
        dep.breaker.success()
        return result

    def _backoff(self, router: ModelRouter, n: int, last: WardenError | None) -> float:
        cfg = router.routing
        hint = last.retry_after if last is not None else None
        if hint is not None and hint <= cfg.backoff_max_s:
            return float(hint)
        base: float = min(cfg.backoff_max_s, cfg.backoff_s * 2.0 ** (n - 1))
        return base * self._rng.uniform(0.5, 1.5)


def release(dep: LiveDeployment) -> None:
    """Release a streaming attempt's hold on its deployment."""
    dep.in_flight -= 1


__all__: Sequence[str] = ("Dispatcher", "ModelRouter", "busy", "release")
