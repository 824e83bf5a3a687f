"""The overview's numbers for one range: the tiles, the series of the charts and the breakdowns
per model, deployment and key, as one JSON-ready snapshot.

Tiles are totals of the range (``Store.summary``: exact percentiles, from hour blocks over long
ranges) and the requests in flight now; the series are ``Store.stats`` buckets (whole hours for
the ranges of a day or more, so that they come from hour blocks too), every bucket of the range
present (empty ones as zero requests), the last one's rate over the part of it that has passed.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

from warden.api.ranges import range_seconds
from warden.store.base import GroupBy, RequestFilter, StatsQuery, StatsRow, Store, SummaryRow

BUCKETS: dict[str, float] = {"15m": 15.0, "1h": 60.0, "6h": 300.0, "24h": 3600.0,
                             "7d": 3600.0, "30d": 6 * 3600.0}
"""The bucket of each range's charts, in seconds."""
BREAKDOWNS: tuple[tuple[str, GroupBy], ...] = (("model", "model"), ("deployment", "deployment"),
                                               ("key", "key_id"))
WARM = ("30d", "7d", "24h")
"""The ranges whose hour blocks are kept warm (their first view would read every record)."""


def _tiles(total: SummaryRow | None, guard_actions: int, in_flight: int) -> dict[str, Any]:
    if total is None:
        return {"requests": 0, "requests_per_s": 0.0, "latency_p50": None, "latency_p95": None,
                "latency_p99": None, "ttft_p50": None, "ttft_p95": None,
                "output_tokens_per_s": None, "output_tokens": 0, "errors": 0,
                "error_rate": 0.0, "availability": None, "cost_usd": None, "unknown_cost": 0,
                "cache_hits": 0, "cache_hit_rate": 0.0, "blocked": 0,
                "guard_actions": guard_actions, "in_flight": in_flight}
    return {"requests": total.count, "requests_per_s": total.requests_per_s,
            "latency_p50": total.latency_p50, "latency_p95": total.latency_p95,
            "latency_p99": total.latency_p99, "ttft_p50": total.ttft_p50,
            "ttft_p95": total.ttft_p95, "output_tokens_per_s": total.output_tokens_per_s,
            "output_tokens": total.output_tokens, "errors": total.errors,
            "error_rate": total.error_rate, "availability": total.availability,
            "cost_usd": total.cost_usd, "unknown_cost": total.unknown_cost,
            "cache_hits": total.cache_hits, "cache_hit_rate": total.cache_hit_rate,
            "blocked": total.blocked, "guard_actions": guard_actions, "in_flight": in_flight}


def _series(rows: list[StatsRow], first: float, until: float, bucket_s: float
            ) -> dict[str, list[Any]]:
    """Columns for the charts: one entry per bucket from ``first`` to ``until``."""
    by_start = {row.bucket_start: row for row in rows}
    out: dict[str, list[Any]] = {name: [] for name in (
        "t", "requests", "requests_per_s", "latency_p50", "latency_p95", "latency_p99",
        "errors", "error_rate")}
    n = max(1, math.ceil((until - first) / bucket_s))
    for i in range(n):
        start = first + i * bucket_s
        row = by_start.get(start)
        seconds = min(bucket_s, max(1.0, until - start))  # the last bucket has not ended yet
        out["t"].append(start)
        out["requests"].append(row.count if row else 0)
        out["requests_per_s"].append(row.count / seconds if row else 0.0)
        out["latency_p50"].append(row.latency_p50 if row else None)
        out["latency_p95"].append(row.latency_p95 if row else None)
        out["latency_p99"].append(row.latency_p99 if row else None)
        out["errors"].append(row.errors if row else 0)
        out["error_rate"].append(row.error_rate if row else None)
    return out


def _breakdown(row: SummaryRow) -> dict[str, Any]:
    return {"group": row.group, "requests": row.count, "requests_per_s": row.requests_per_s,
            "error_rate": row.error_rate, "availability": row.availability,
            "latency_mean": row.latency_mean, "output_tokens": row.output_tokens,
            "cost_usd": row.cost_usd, "unknown_cost": row.unknown_cost}


class Overview:
    """Builds overview snapshots from the store (blocking: run it in a thread)."""

    def __init__(self, store: Store, in_flight: Callable[[], int],
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._in_flight = in_flight
        self._clock = clock

    def snapshot(self, range_name: str, team: str | None = None) -> dict[str, Any]:
        """The overview of the last ``range_name`` (15m ... 30d), of one team's records when
        ``team`` is set."""
        name, seconds = range_seconds(range_name)
        bucket = BUCKETS[name]
        until = self._clock()
        where = RequestFilter(since=until - seconds, until=until, team=team)
        totals = self._store.summary(where)
        first = math.floor((until - seconds) / bucket) * bucket  # whole buckets on the chart
        stats = self._store.stats(StatsQuery(bucket_s=bucket,
                                             where=dataclasses.replace(where, since=first)))
        guard = sum(c.count for c in self._store.finding_counts(where, seconds))
        breakdowns = {label: [_breakdown(row) for row in self._store.summary(
            where, column, percentiles=False)] for label, column in BREAKDOWNS}
        return {"range": name, "since": until - seconds, "until": until, "bucket_s": bucket,
                "tiles": _tiles(totals[0] if totals else None, guard, self._in_flight()),
                "series": _series(stats, first, until, bucket), "breakdowns": breakdowns}

    def warm(self) -> None:
        """Read what the dashboard's long ranges need, so that their first view is quick:
        the overview of each range in ``WARM`` and the spend of the last 30 days per team.
        Blocking; raises StoreError."""
        for name in WARM:
            self.snapshot(name)
        until = self._clock()
        self._store.summary(RequestFilter(since=until - range_seconds("30d")[1], until=until),
                            "team", percentiles=False)
