"""Deployment choice strategies. Each picks one of the available deployments."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from warden.routing.deployment import LiveDeployment


class Strategy(Protocol):
    """Picks one deployment from a non-empty sequence of available ones."""

    def pick(self, candidates: Sequence[LiveDeployment]) -> LiveDeployment: ...


class Weighted:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, candidates: Sequence[LiveDeployment]) -> LiveDeployment:
        if len(candidates) == 1:
            return candidates[0]
        return self._rng.choices(candidates, weights=[d.config.weight for d in candidates])[0]


class RoundRobin:
    def __init__(self) -> None:
        self._next = 0

    def pick(self, candidates: Sequence[LiveDeployment]) -> LiveDeployment:
        choice = candidates[self._next % len(candidates)]
        self._next += 1
        return choice


class LeastLatency:
    """Lowest EWMA latency; deployments not measured yet go first so each gets measured, and a
    small share of traffic explores the others so a recovered deployment is noticed again."""

    EXPLORE = 0.05

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, candidates: Sequence[LiveDeployment]) -> LiveDeployment:
        if len(candidates) == 1:
            return candidates[0]
        unmeasured = [d for d in candidates if d.ewma_s is None]
        if unmeasured:
            return self._rng.choice(unmeasured)
        if self._rng.random() < self.EXPLORE:
            return self._rng.choice(candidates)
        return min(candidates, key=lambda d: d.ewma_s or 0.0)


class LeastInFlight:
    """Fewest requests in flight; ties go round-robin so idle deployments share the load."""

    def __init__(self) -> None:
        self._next = 0

    def pick(self, candidates: Sequence[LiveDeployment]) -> LiveDeployment:
        low = min(d.in_flight for d in candidates)
        tied = [d for d in candidates if d.in_flight == low]
        self._next += 1
        return tied[self._next % len(tied)]


def make_strategy(name: str, rng: random.Random) -> Strategy:
    if name == "weighted":
        return Weighted(rng)
    if name == "round-robin":
        return RoundRobin()
    if name == "least-latency":
        return LeastLatency(rng)
    if name == "least-in-flight":
        return LeastInFlight()
    raise ValueError(f"unknown strategy '{name}'")
