"""Totals over a range (``Store.summary``): the dashboard's tiles and breakdowns, e.g. the last
30 days, every second, with exact percentiles.

A range ``[since, until)`` is its whole hours (``first <= hour < end``) and the partial hours
at its two ends. The whole hours come from the hour blocks (``warden.store.rollup``), merged
into one partial per group: counts and sums added, the latencies and ttfts of all those hours
merged into one sorted array. That merge is kept (``Spans``) while no hour in it changes, so
that a range that moves with the clock costs, until the next hour begins, one look at the hour
versions and a read of the records of its partial hours. A percentile of the whole range is
then the value of one rank in the union of two sorted arrays, the big merged one and the small
one of the edges, found by bisection (``kth``) without merging them.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from array import array
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from warden.errors import InvalidRequest
from warden.store.base import RequestFilter, SummaryRow
from warden.store.rollup import (
    HOUR,
    LATENCY_P,
    TTFT_P,
    HourBlocks,
    Key,
    Partial,
    flat,
    hour_versions,
)
from warden.store.rollup import partials as read_partials

Groups = dict[str | None, Partial]


def kth(a: Sequence[float], b: Sequence[float], k: int) -> float:
    """The ``k``-th smallest value (from 0) of the union of the ascending ``a`` and ``b``."""
    # i values from a and j = k + 1 - i from b are the k + 1 smallest when a[i] >= b[j - 1]
    # and a[i - 1] <= b[j]; the smallest i with a[i] >= b[j - 1] has both.
    lo, hi = max(0, k + 1 - len(b)), min(k + 1, len(a))
    while lo < hi:
        i = (lo + hi) // 2
        if a[i] < b[k - i]:  # b[j - 1] with j = k + 1 - i
            lo = i + 1
        else:
            hi = i
    j = k + 1 - lo
    if lo == 0:
        return b[j - 1]
    if j == 0:
        return a[lo - 1]
    return max(a[lo - 1], b[j - 1])


def union_percentile(a: Sequence[float], b: Sequence[float], p: float) -> float:
    """``warden.store.base.percentile`` of the union of the ascending ``a`` and ``b``."""
    n = len(a) + len(b)
    if not n:
        raise ValueError("percentile of no values")
    h = p * (n - 1)
    lo, hi = math.floor(h), math.ceil(h)
    low = kth(a, b, lo)
    high = low if hi == lo else kth(a, b, hi)
    return low + (high - low) * (h - lo)


def _biggest_apart(runs: list[array[float]]) -> tuple[Sequence[float], Sequence[float]]:
    """The biggest run, and the others merged: the two sides of ``union_percentile``."""
    if not runs:
        return (), ()
    big = max(range(len(runs)), key=lambda i: len(runs[i]))
    rest = runs[:big] + runs[big + 1:]
    return runs[big], flat(rest) if rest else ()


def _by_group(parts: Mapping[Key, Partial], into: Groups | None = None,
              adopt: bool = False) -> Groups:
    """``parts`` (by unit and group) added up by group (into ``into``, or new), into copies
    unless ``adopt`` (then the result may hold and change the parts)."""
    out: Groups = {} if into is None else into
    for (_, grp), part in parts.items():
        if grp in out:
            out[grp].add(part)
        elif adopt:
            out[grp] = part
        else:
            out[grp] = dataclasses.replace(part, latencies=list(part.latencies),
                                           ttfts=list(part.ttfts))
    return out


def summary_row(group: str | None, part: Partial, seconds: float,
                percentiles: bool) -> SummaryRow:
    """The SummaryRow of a group's partial over a range of ``seconds``."""
    n = part.count
    lat: list[float | None] = [None] * len(LATENCY_P)
    ttft: list[float | None] = [None] * len(TTFT_P)
    if percentiles:
        big, small = _biggest_apart(part.latencies)
        lat = [union_percentile(big, small, p) for p in LATENCY_P]
        big, small = _biggest_apart(part.ttfts)
        if len(big) + len(small):
            ttft = [union_percentile(big, small, p) for p in TTFT_P]
    return SummaryRow(
        group=group, count=n, requests_per_s=n / seconds, errors=part.errors,
        error_rate=part.errors / n, server_errors=part.server_errors,
        availability=1.0 - part.server_errors / n, blocked=part.blocked,
        cache_hits=part.cache_hits, cache_hit_rate=part.cache_hits / n,
        latency_mean=part.latency_sum / n, latency_p50=lat[0], latency_p95=lat[1],
        latency_p99=lat[2], ttft_p50=ttft[0], ttft_p95=ttft[1],
        output_tokens_per_s=part.speed_sum / part.speeds if part.speeds else None,
        input_tokens=part.input_tokens, output_tokens=part.output_tokens, cost_usd=part.cost,
        unknown_cost=part.unknown_cost,
    )


@dataclasses.dataclass(slots=True)
class _Span:
    hours: tuple[int, int]
    versions: dict[int, int]
    groups: Groups
    values: int


class Spans:
    """The merged whole hours of recent ranges, one per filter, grouping and length (so that a
    range that moves on replaces its own); at most ``max_values`` latencies and ttfts in all,
    least recently used dropped first. Thread-safe."""

    def __init__(self, blocks: HourBlocks, max_values: int = 4_000_000) -> None:
        self._blocks = blocks
        self.max_values = max_values
        self._spans: OrderedDict[tuple[Any, ...], _Span] = OrderedDict()
        self._values = 0
        self._lock = threading.Lock()

    def summary(self, conn: sa.Connection, where: RequestFilter, group_by: str | None,
                percentiles: bool) -> list[SummaryRow]:
        since, until = where.since, where.until
        if since is None or until is None or not until > since:
            raise InvalidRequest("a summary needs a range: since and until (unix seconds), "
                                 "since before until", param="since")
        first, end = math.ceil(since / HOUR), math.floor(until / HOUR)
        if where.text or first >= end:
            # A text search is never cached (an erased payload bumps no version); a range
            # without a whole hour is small.
            groups = _by_group(read_partials(conn, where, group_by, HOUR, values=percentiles),
                               adopt=True)
        else:
            rest = dataclasses.replace(where, since=None, until=None)
            groups = {grp: dataclasses.replace(part, latencies=list(part.latencies),
                                               ttfts=list(part.ttfts))
                      for grp, part in self._middle(conn, rest, group_by, first, end,
                                                    percentiles).items()}
            for lo, hi in ((None, first * HOUR), (end * HOUR, None)):
                _by_group(read_partials(conn, where, group_by, HOUR, lo, hi, percentiles),
                          groups, adopt=True)
        rows = [summary_row(grp, part, until - since, percentiles)
                for grp, part in groups.items() if part.count]
        rows.sort(key=lambda row: (-row.count, row.group is not None, row.group or ""))
        return rows

    def _middle(self, conn: sa.Connection, rest: RequestFilter, group_by: str | None,
                first: int, end: int, values: bool) -> Groups:
        """The whole hours ``[first, end)`` by group, each group's values in one run."""
        key = (HourBlocks.signature(group_by, rest, values), end - first)
        versions = hour_versions(conn, first, end)  # before the blocks: see warden.store.rollup
        with self._lock:
            span = self._spans.get(key)
            if span is not None and span.hours == (first, end) and span.versions == versions:
                self._spans.move_to_end(key)
                return span.groups
        hours, _ = self._blocks.hours(conn, rest, group_by, first, end, values, versions)
        groups = _by_group(hours, adopt=True)
        for part in groups.values():
            part.latencies = [flat(part.latencies)] if part.latencies else []
            part.ttfts = [flat(part.ttfts)] if part.ttfts else []
        self._keep(key, _Span((first, end), versions, groups,
                              sum(p.values for p in groups.values())))
        return groups

    def _keep(self, key: tuple[Any, ...], span: _Span) -> None:
        with self._lock:
            old = self._spans.pop(key, None)
            if old is not None:
                self._values -= old.values
            self._spans[key] = span
            self._values += span.values
            while self._values > self.max_values and len(self._spans) > 1:
                _, dropped = self._spans.popitem(last=False)
                self._values -= dropped.values
