"""The Counters contract: where limit and budget counts are kept (in this process, or in Redis).

Per-minute limits are GCRA in its leaky-bucket form: a counter holds a level that drains at
``limit`` units per ``period_s`` and may hold at most ``limit`` units, so a full minute's worth
may come at once and after that the limit's own pace. A spend counter is a running sum for one
calendar period. A reservation is all-or-nothing: when any charge does not fit, nothing is
charged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateCharge:
    """Take ``amount`` units from a per-minute counter (a negative amount gives some back)."""

    counter: str
    limit: float  # units per period, and the most the counter may hold
    period_s: float
    amount: float


@dataclass(frozen=True, slots=True)
class SpendCharge:
    """Add ``amount`` USD to a period's spend counter (a negative amount gives some back)."""

    counter: str
    limit: float  # USD of the period
    amount: float
    ttl_s: float  # how long the counter is kept: past the period's end


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a reservation found."""

    allowed: bool
    refused: int
    """Index of the first charge that did not fit (rates first, then spends); -1 when allowed."""
    retry_after_s: float
    """For a refused rate charge: seconds until it would fit."""
    spent: tuple[float, ...]
    """USD of each spend counter, after the reservation (before it, when refused)."""


class CountersUnavailable(Exception):
    """The counters cannot be reached (Redis down or too slow)."""


class Counters(Protocol):
    """Keeps counts. Both methods are atomic: no other reservation interleaves with one."""

    async def reserve(self, rates: Sequence[RateCharge],
                      spends: Sequence[SpendCharge]) -> Verdict:
        """Charge everything if every charge fits, else nothing; raises CountersUnavailable."""
        ...

    async def settle(self, rates: Sequence[RateCharge],
                     spends: Sequence[SpendCharge]) -> tuple[float, ...]:
        """Apply corrections unconditionally (levels and sums never drop below 0); returns the
        spend counters' USD. Raises CountersUnavailable."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
