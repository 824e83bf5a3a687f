"""The counters' contract, in memory and in Redis: GCRA levels, all-or-nothing reservations,
settlements, spend sums."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis

from warden.limits.counters import Counters, RateCharge, SpendCharge
from warden.limits.memory import MemoryCounters
from warden.limits.redis import RedisCounters

HOUR = 3600.0  # a slow drain: nothing drips back while a test runs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
async def counters(request: pytest.FixtureRequest) -> AsyncIterator[Counters]:
    if request.param == "memory":
        yield MemoryCounters(Clock())
        return
    made = RedisCounters(request.getfixturevalue("redis_url"),
                         request.getfixturevalue("redis_prefix"), timeout_s=5)
    yield made
    await made.aclose()


def rate(amount: float, limit: float = 5, counter: str = "c") -> RateCharge:
    return RateCharge(counter, limit, HOUR, amount)


def spend(amount: float, limit: float = 10, counter: str = "s") -> SpendCharge:
    return SpendCharge(counter, limit, amount, ttl_s=HOUR)


async def test_a_burst_gets_exactly_the_limit_then_a_wait_of_one_unit(counters: Counters) -> None:
    for _ in range(5):
        assert (await counters.reserve([rate(1)], [])).allowed
    refused = await counters.reserve([rate(1)], [])
    assert not refused.allowed and refused.refused == 0
    assert refused.retry_after_s == pytest.approx(HOUR / 5, abs=1)


async def test_a_reservation_is_all_or_nothing(counters: Counters) -> None:
    wide, narrow = rate(1, 10, "wide"), rate(1, 1, "narrow")
    assert (await counters.reserve([wide, narrow], [spend(1)])).allowed
    refused = await counters.reserve([wide, narrow], [spend(1)])
    assert (refused.allowed, refused.refused, refused.spent) == (False, 1, (1.0,))
    # The refused reservation charged nothing: 9 more fit under "wide", 9 USD under "s".
    assert (await counters.reserve([rate(9, 10, "wide")], [spend(9)])).allowed
    assert not (await counters.reserve([rate(1, 10, "wide")], [])).allowed
    assert not (await counters.reserve([], [spend(0.01)])).allowed


async def test_a_settlement_gives_back_but_never_below_zero(counters: Counters) -> None:
    assert (await counters.reserve([rate(8, 10)], [])).allowed
    await counters.settle([rate(-6, 10)], [])
    assert (await counters.reserve([rate(8, 10)], [])).allowed  # 2 + 8
    assert not (await counters.reserve([rate(1, 10)], [])).allowed
    await counters.settle([rate(-100, 10)], [])
    assert (await counters.reserve([rate(10, 10)], [])).allowed


async def test_a_settlement_may_charge_past_the_limit(counters: Counters) -> None:
    assert (await counters.reserve([rate(1, 10)], [])).allowed
    await counters.settle([rate(20, 10)], [])  # the answer used far more than its estimate
    refused = await counters.reserve([rate(1, 10)], [])
    assert not refused.allowed
    assert refused.retry_after_s == pytest.approx((21 + 1 - 10) * HOUR / 10, abs=1)


async def test_spend_is_refused_once_the_estimate_would_pass_the_budget(
        counters: Counters) -> None:
    assert (await counters.reserve([], [spend(3)])).spent == (3.0,)
    assert (await counters.reserve([], [spend(7)])).spent == (10.0,)  # exactly the budget
    refused = await counters.reserve([], [spend(0.0)])  # spent: even a free request waits
    assert (refused.allowed, refused.refused, refused.spent) == (False, 0, (10.0,))
    assert await counters.settle([], [spend(-2.5)]) == (7.5,)
    assert not (await counters.reserve([], [spend(3)])).allowed
    assert (await counters.reserve([], [spend(2.5)])).allowed
    assert await counters.settle([], [spend(-100)]) == (0.0,)


async def test_memory_levels_drain_at_the_limits_pace() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    assert (await counters.reserve([RateCharge("c", 60, 60, 60)], [])).allowed
    refused = await counters.reserve([RateCharge("c", 60, 60, 1)], [])
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    clock.now += 1.0
    assert (await counters.reserve([RateCharge("c", 60, 60, 1)], [])).allowed
    assert not (await counters.reserve([RateCharge("c", 60, 60, 1)], [])).allowed


async def test_memory_spend_ends_with_its_period() -> None:
    clock = Clock()
    counters = MemoryCounters(clock)
    assert (await counters.reserve([], [SpendCharge("s", 1, 1, ttl_s=10)])).allowed
    assert not (await counters.reserve([], [SpendCharge("s", 1, 1, ttl_s=10)])).allowed
    clock.now += 10
    assert (await counters.reserve([], [SpendCharge("s", 1, 1, ttl_s=10)])).spent == (1.0,)


async def test_redis_keys_share_the_prefix_hash_tag_and_expire(redis_url: str,
                                                               redis_prefix: str) -> None:
    counters = RedisCounters(redis_url, redis_prefix, timeout_s=5)
    try:
        assert (await counters.reserve([RateCharge("rpm|key|*|a", 10, 60, 1)],
                                       [SpendCharge("usd|key|*|a", 5, 1, ttl_s=100)])).allowed
    finally:
        await counters.aclose()
    client = redis.Redis.from_url(redis_url)
    try:
        keys = sorted(k.decode() for k in client.scan_iter(match=f"{{{redis_prefix}}}:*"))
        assert keys == [f"{{{redis_prefix}}}:rpm|key|*|a", f"{{{redis_prefix}}}:usd|key|*|a"]
        assert 0 < client.pttl(keys[0]) <= 60 / 10 * 1000 + 1000  # drained in 6 s, plus 1 s
        assert 99_000 < client.pttl(keys[1]) <= 100_001
    finally:
        client.close()
