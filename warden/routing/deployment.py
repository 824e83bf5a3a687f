"""The live state of one deployment: its provider, breaker, latency estimate and load."""

from __future__ import annotations

from dataclasses import dataclass, field

from warden.config import Deployment, Routing
from warden.observe.pricing import TokenPrice
from warden.providers.base import Provider, Timeouts
from warden.routing.breaker import CircuitBreaker

EWMA_ALPHA = 0.3


@dataclass(eq=False)
class LiveDeployment:
    """A deployment as the router sees it. Shared across reloads when its config is unchanged."""

    model: str
    config: Deployment
    provider: Provider
    breaker: CircuitBreaker
    timeouts: Timeouts
    ewma_s: float | None = None
    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    usage_rejected: int = 0  # answers whose usage was not plausible (an estimate was recorded)
    healthy: bool = True
    last_error: str | None = field(default=None, repr=False)
    signature: tuple[object, ...] = field(default=(), repr=False)
    price: TokenPrice | None = None

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def upstream_model(self) -> str:
        return self.config.model or self.model

    def observe_latency(self, seconds: float) -> None:
        if self.ewma_s is None:
            self.ewma_s = seconds
        else:
            self.ewma_s += EWMA_ALPHA * (seconds - self.ewma_s)

    def fail(self, message: str) -> None:
        """Count a retryable failure of this deployment and tell its breaker."""
        self.failures += 1
        self.last_error = message
        self.breaker.failure()

    def available(self) -> bool:
        return self.healthy and self.breaker.available()


def resolve_timeouts(dep: Deployment, routing: Routing) -> Timeouts:
    total = dep.timeouts.total_s or routing.timeout_s
    return Timeouts(
        connect=dep.timeouts.connect_s or routing.connect_timeout_s,
        first_byte=dep.timeouts.first_byte_s or routing.first_byte_timeout_s or total,
        total=total,
    )
