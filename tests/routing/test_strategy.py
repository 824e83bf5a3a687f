from __future__ import annotations

import random
from collections import Counter

from warden.config import Deployment
from warden.providers.base import Timeouts
from warden.providers.fake import FakeParams, FakeProvider
from warden.routing.breaker import CircuitBreaker
from warden.routing.deployment import LiveDeployment
from warden.routing.strategy import LeastInFlight, LeastLatency, RoundRobin, Weighted


def live(name: str, weight: float = 1.0) -> LiveDeployment:
    dep = Deployment(id=name, provider="fake", weight=weight)
    return LiveDeployment(model="m", config=dep, provider=FakeProvider(dep, FakeParams()),
                          breaker=CircuitBreaker(3, 1), timeouts=Timeouts(1, 1, 1))


def test_weighted_follows_the_weights() -> None:
    a, b = live("a", 3), live("b", 1)
    s = Weighted(random.Random(1))
    picks = Counter(s.pick([a, b]).id for _ in range(4000))
    assert 0.70 < picks["a"] / 4000 < 0.80


def test_round_robin_cycles_in_order() -> None:
    ds = [live("a"), live("b"), live("c")]
    rr = RoundRobin()
    assert [rr.pick(ds).id for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_least_latency_measures_each_first_then_prefers_the_fastest() -> None:
    a, b = live("a"), live("b")
    s = LeastLatency(random.Random(0))
    first = s.pick([a, b])
    first.observe_latency(0.5)
    second = s.pick([a, b])
    assert second is not first  # the unmeasured one goes next
    second.observe_latency(0.1)
    picks = Counter(s.pick([a, b]).id for _ in range(1000))
    assert picks[second.id] > 900  # mostly the fast one, a little exploration
    assert picks[first.id] > 0


def test_ewma_moves_toward_new_observations() -> None:
    a = live("a")
    a.observe_latency(1.0)
    for _ in range(20):
        a.observe_latency(0.1)
    assert a.ewma_s is not None and abs(a.ewma_s - 0.1) < 0.01


def test_least_in_flight_picks_the_idlest_and_shares_ties() -> None:
    a, b, c = live("a"), live("b"), live("c")
    a.in_flight, b.in_flight, c.in_flight = 5, 1, 1
    s = LeastInFlight()
    assert {s.pick([a, b, c]).id for _ in range(4)} == {"b", "c"}
