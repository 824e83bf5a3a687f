"""Counters in this process: the default. Each method runs without awaiting anything, so one
reservation is atomic on the event loop without a lock."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from warden.limits.counters import RateCharge, SpendCharge, Verdict

_PRUNE_FLOOR = 4096


class MemoryCounters:
    """Levels and sums in dicts; drained levels and past periods are pruned as the dicts grow."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._levels: dict[str, tuple[float, float]] = {}  # counter -> (level, at)
        self._spent: dict[str, tuple[float, float]] = {}  # counter -> (usd, expires at)
        self._prune_at = _PRUNE_FLOOR

    def _level(self, charge: RateCharge, now: float) -> float:
        level, at = self._levels.get(charge.counter, (0.0, now))
        return max(0.0, level - (now - at) * charge.limit / charge.period_s)

    def _usd(self, counter: str, now: float) -> float:
        usd, expires = self._spent.get(counter, (0.0, now))
        return usd if expires > now else 0.0

    async def reserve(self, rates: Sequence[RateCharge],
                      spends: Sequence[SpendCharge]) -> Verdict:
        now = self._clock()
        levels = []
        for i, r in enumerate(rates):
            level = self._level(r, now)
            if level + r.amount > r.limit:
                wait = (level + r.amount - r.limit) * r.period_s / r.limit
                return Verdict(False, i, wait, tuple(self._usd(s.counter, now) for s in spends))
            levels.append(level + r.amount)
        spent = [self._usd(s.counter, now) for s in spends]
        for j, s in enumerate(spends):
            if spent[j] >= s.limit or spent[j] + s.amount > s.limit:
                return Verdict(False, len(rates) + j, 0.0, tuple(spent))
        for r, level in zip(rates, levels, strict=True):
            self._levels[r.counter] = (level, now)
        for j, s in enumerate(spends):
            spent[j] += s.amount
            self._spent[s.counter] = (spent[j], now + s.ttl_s)
        self._maybe_prune(now)
        return Verdict(True, -1, 0.0, tuple(spent))

    async def settle(self, rates: Sequence[RateCharge],
                     spends: Sequence[SpendCharge]) -> tuple[float, ...]:
        now = self._clock()
        for r in rates:
            self._levels[r.counter] = (max(0.0, self._level(r, now) + r.amount), now)
        out = []
        for s in spends:
            usd = max(0.0, self._usd(s.counter, now) + s.amount)
            self._spent[s.counter] = (usd, now + s.ttl_s)
            out.append(usd)
        return tuple(out)

    async def aclose(self) -> None:
        return None

    def _maybe_prune(self, now: float) -> None:
        # Amortised O(1): a full pass only when the dicts have doubled since the last one.
        if len(self._levels) + len(self._spent) <= self._prune_at:
            return
        # A level drains within a minute unless settling charged it past its limit; one untouched
        # for an hour is dropped (at worst forgetting a debt of more than an hour's worth).
        self._levels = {k: v for k, v in self._levels.items() if v[0] > 0 and now - v[1] < 3600}
        self._spent = {k: v for k, v in self._spent.items() if v[1] > now}
        self._prune_at = max(_PRUNE_FLOOR, 2 * (len(self._levels) + len(self._spent)))
