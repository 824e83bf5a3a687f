"""The runtime: everything built from one config — deployments, routers, pipeline — swapped
atomically on reload. Requests hold the runtime they started on until they finish."""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Mapping

import orjson
from pydantic import BaseModel, ValidationError

from warden.access.keyring import Keyring
from warden.config import Config, hint
from warden.errors import ConfigError
from warden.guard.policy import Policies
from warden.lifecycle.integrity_log import IntegrityLog
from warden.limits.limiter import Limiter
from warden.limits.rules import Policy
from warden.observe.pricing import PriceTable
from warden.pipeline.admit import Admit
from warden.pipeline.authenticate import Authenticate
from warden.pipeline.authorize import Authorize
from warden.pipeline.call import RouteAndCall
from warden.pipeline.guard import Guard
from warden.pipeline.parse import ParseBody
from warden.pipeline.stage import Pipeline
from warden.plugins import ProviderRegistry, ScannerRegistry, make_plugin_manager
from warden.routing.breaker import CircuitBreaker
from warden.routing.deployment import LiveDeployment, resolve_timeouts
from warden.routing.health import HealthChecker
from warden.routing.router import Dispatcher, ModelRouter

log = logging.getLogger("warden.runtime")


class Runtime:
    """One generation of the gateway's moving parts."""

    def __init__(self, config: Config, admin_key: str | None, routers: dict[str, ModelRouter],
                 rng: random.Random, policies: Policies | None = None,
                 keyring: Keyring | None = None, limiter: Limiter | None = None,
                 integrity: IntegrityLog | None = None) -> None:
        self.config = config
        self.admin_key = admin_key
        self.keyring = keyring  # the store's keys: one per process, shared by every runtime
        self.limiter = limiter or Limiter()  # its counts: one per process, like the keyring
        self.integrity = integrity or IntegrityLog()  # model checks: one per process, likewise
        self.dispatcher = Dispatcher(routers, rng)
        self.authenticate = Authenticate(config.keys, admin_key, keyring)
        self.pipeline = Pipeline([
            self.authenticate,
            ParseBody(),
            Authorize(self.dispatcher),
            Admit(Policy(config.limits, config.budgets), self.limiter, self.dispatcher),
            *([Guard(policies, config.guard.stream_holdback_chars, config.guard.block_status)]
              if policies else []),
            RouteAndCall(self.dispatcher),
        ])
        self.health = HealthChecker([
            (d, r.routing.health_check) for r in routers.values() for d in r.deployments
        ])
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def deployments(self) -> list[LiveDeployment]:
        return [d for r in self.dispatcher.routers.values() for d in r.deployments]

    async def start(self, skip: set[LiveDeployment] | None = None) -> None:
        """Get every provider ready (load local models); the first failure is raised. The
        outcome of each model-integrity check made is recorded, failed or not."""
        pending = [d for d in self.deployments if not (skip and d in skip)]
        results = await asyncio.gather(*(d.provider.start() for d in pending),
                                       return_exceptions=True)
        for dep in pending:
            if dep.provider.integrity is not None:
                self.integrity.record(dep.model, dep.id, dep.provider.integrity)
            else:
                self.integrity.forget(dep.model, dep.id)
        for dep, result in zip(pending, results, strict=True):
            if isinstance(result, BaseException):
                log.error("deployment %s/%s could not start: %s", dep.model, dep.id, result)
                raise result

    def enter(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0:
            self._idle.set()

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no request holds this runtime; False when the wait timed out."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def close(self, keep: set[LiveDeployment] | None = None) -> None:
        """Stop background work and release providers, except deployments carried over."""
        await self.health.stop()
        for dep in self.deployments:
            if keep and dep in keep:
                continue
            await dep.provider.aclose()


def admin_key_of(config: Config, env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return env.get("WARDEN_ADMIN_KEY") or config.admin_key


def build_runtime(config: Config, registry: ProviderRegistry, previous: Runtime | None = None,
                  env: Mapping[str, str] | None = None,
                  prices: PriceTable | None = None,
                  scanners: ScannerRegistry | None = None,
                  keyring: Keyring | None = None,
                  limiter: Limiter | None = None,
                  integrity: IntegrityLog | None = None) -> Runtime:
    """Build a runtime, reusing live deployments of ``previous`` whose config is unchanged
    (they keep their connection pools, breakers and latency estimates). ``keyring`` (the
    store's API keys), ``limiter`` and ``integrity`` default to the previous runtime's. Guard
    scanners are built here, so a bad scanner option fails the start or the reload, not a
    request."""
    policies = None
    if config.guard.policies:
        policies = Policies(config, scanners or ScannerRegistry(make_plugin_manager()))
    old: dict[tuple[object, ...], LiveDeployment] = {}
    if previous is not None:
        old = {d.signature: d for d in previous.deployments}
    rng = random.Random()
    prices = prices or PriceTable()
    routers: dict[str, ModelRouter] = {}
    for mi, route in enumerate(config.models):
        live: list[LiveDeployment] = []
        for di, dep in enumerate(route.deployments):
            timeouts = resolve_timeouts(dep, route.routing)
            signature = (route.name, _canonical(dep), _canonical(route.routing.breaker), timeouts)
            reused = old.get(signature)
            if reused is not None:
                live.append(reused)
                continue
            where = f"models[{mi}].deployments[{di}]"
            cls = registry.get(dep.provider, f"{where}.provider")
            try:
                params = cls.Params.model_validate(dep.params)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{where}.params.{'.'.join(map(str, e['loc']))}: "
                    + (f"unknown key{hint(str(e['loc'][-1]), set(cls.Params.model_fields))}"
                       if e["type"] == "extra_forbidden" else e["msg"])
                    for e in exc.errors()
                )
                raise ConfigError(f"invalid provider params: {problems}") from None
            b = route.routing.breaker
            live.append(LiveDeployment(
                model=route.name, config=dep, provider=cls(dep, params),
                breaker=CircuitBreaker(b.failures, b.cooldown_s, b.half_open_probes),
                timeouts=timeouts, signature=signature,
                price=prices.for_deployment(dep, dep.model or route.name),
            ))
        routers[route.name] = ModelRouter(route, live, rng)
    if keyring is None and previous is not None:
        keyring = previous.keyring
    if limiter is None and previous is not None:
        limiter = previous.limiter
    if integrity is None and previous is not None:
        integrity = previous.integrity
    return Runtime(config, admin_key_of(config, env), routers, rng, policies, keyring=keyring,
                   limiter=limiter, integrity=integrity)


def _canonical(model: BaseModel) -> bytes:
    return orjson.dumps(model.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)


class RuntimeHolder:
    """Holds the current runtime and swaps it atomically on reload."""

    def __init__(self, runtime: Runtime, registry: ProviderRegistry, drain_timeout_s: float,
                 env: Mapping[str, str] | None = None,
                 scanners: ScannerRegistry | None = None) -> None:
        self.current = runtime
        self.registry = registry
        self.scanners = scanners
        self.drain_timeout_s = drain_timeout_s
        self.generation = 1
        self._env = env
        self._lock = asyncio.Lock()
        self._retiring: set[asyncio.Task[None]] = set()
        self._live: list[Runtime] = [runtime]

    async def swap(self, config: Config) -> Runtime:
        """Build a runtime from ``config`` and make it current; raises ConfigError unchanged."""
        async with self._lock:
            old = self.current
            if config.server != old.config.server:
                log.warning("reload: changes to the server section take effect at the next "
                            "restart; everything else is live now")
            new = build_runtime(config, self.registry, previous=old, env=self._env,
                                scanners=self.scanners)
            carried = set(old.deployments)
            try:
                await new.start(skip=carried)
            except BaseException:
                await new.close(keep=carried)
                raise
            new.health.start()
            self.current = new
            self._live.append(new)
            self.generation += 1
            task = asyncio.get_running_loop().create_task(self._retire(old, new))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
            return new

    async def _retire(self, old: Runtime, new: Runtime) -> None:
        drained = await old.drain(self.drain_timeout_s)
        if not drained:
            log.warning("reload: %d request(s) still on the old runtime after %.0f s",
                        old.in_flight, self.drain_timeout_s)
        self._live.remove(old)
        # A deployment carried over is shared: close it only when no live runtime uses it.
        await old.close(keep={d for rt in self._live for d in rt.deployments})

    async def close(self) -> None:
        for task in list(self._retiring):
            await task
        await self.current.close()
