"""A per-deployment circuit breaker: closed → open after N consecutive failures → half-open
after a cooldown, where a limited number of probe requests decide between closed and open."""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts failures of one deployment and decides whether it may take a request."""

    def __init__(self, failures: int, cooldown_s: float, half_open_probes: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.probes_needed = half_open_probes
        self._clock = clock
        self.state = BreakerState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = 0
        self._probe_successes = 0
        self.opened_count = 0

    def available(self) -> bool:
        """True when a request may be sent now (moves open → half-open after the cooldown)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            if self._clock() - self._opened_at < self.cooldown_s:
                return False
            self.state = BreakerState.HALF_OPEN
            self._probing = 0
            self._probe_successes = 0
        return self._probing < 1

    def acquire(self) -> None:
        """Mark that a request is being sent (counts half-open probes in flight)."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing += 1

    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self._clock() - self._opened_at))

    def success(self) -> None:
        self._consecutive = 0
        if self.state is BreakerState.HALF_OPEN:
            self._probing = max(0, self._probing - 1)
            self._probe_successes += 1
            if self._probe_successes >= self.probes_needed:
                self.state = BreakerState.CLOSED

    def failure(self) -> None:
        self._consecutive += 1
        if self.state is BreakerState.HALF_OPEN:
            self._probing = max(0, self._probing - 1)
            self._open()
        elif self.state is BreakerState.CLOSED and self._consecutive >= self.threshold:
            self._open()

    def release(self) -> None:
        """A request ended with neither success nor failure (e.g. the client went away)."""
        if self.state is BreakerState.HALF_OPEN:
            self._probing = max(0, self._probing - 1)

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self._opened_at = self._clock()
        self.opened_count += 1
