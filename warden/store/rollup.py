"""Hour blocks: statistics over long ranges from per-hour partial aggregates kept in memory.

A dashboard asks the same questions again and again (the last 30 days by model, every minute),
and all but the newest hours of the answer have not changed since it last asked. A block holds,
for one hour and one set of filters, per group: the counts and sums of ``StatsRow`` and the
sorted latencies and times to first token, from which any percentile of any union of blocks is
exact. Buckets that are whole multiples of an hour are merged from blocks; only the partial
hours at the ends of the range, and blocks that changed, are read from the table.

A block is valid while the version of its hour in ``request_hours`` is the one it was computed
at. Triggers on ``requests`` (migration m002) bump the version of the hour of every row that is
inserted, deleted or updated, in the same transaction, whoever writes: this process, another
replica, retention, an erasure. The version is read before the block is computed, so a block
that races a write is stored under the older version and computed again next time; a stale
block is never served.

Memory is bounded: blocks are dropped, least recently used first, past ``max_values`` values
(8 bytes each) in all, each group of a block counting as ``GROUP_COST`` values for its sums.
Blocks may be read without their values (``HourBlocks.hours(values=False)``): counts and sums
only, for aggregates without percentiles.

A block keeps its groups in columns (``Block``): a handful of objects whatever the number of
groups, because a full garbage collection walks every container object in the process. Kept as
one ``Partial`` and two lists per group and hour, the blocks of 1,000,000 records added ~145,000
objects and made each full collection pause every thread, requests included, for ~100 ms.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from warden.store.base import RequestFilter, StatsQuery, StatsRow, percentile
from warden.store.filters import conditions
from warden.store.tables import request_hours, requests

HOUR = 3600
GROUP_COST = 32
LATENCY_P = (0.5, 0.95, 0.99)
TTFT_P = (0.5, 0.95)
Key = tuple[int, str | None]  # (bucket or hour, group)


@dataclass(slots=True)
class Partial:
    """The aggregates of some records: sums, and their sorted latencies and ttfts in runs
    (none when the partial was read without its values)."""

    count: int = 0
    errors: int = 0
    server_errors: int = 0
    blocked: int = 0
    cache_hits: int = 0
    latency_sum: float = 0.0
    speed_sum: float = 0.0
    speeds: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    unknown_cost: int = 0
    latencies: list[array[float]] = field(default_factory=list)
    ttfts: list[array[float]] = field(default_factory=list)

    def add(self, other: Partial) -> None:
        self.count += other.count
        self.errors += other.errors
        self.server_errors += other.server_errors
        self.blocked += other.blocked
        self.cache_hits += other.cache_hits
        self.latency_sum += other.latency_sum
        self.speed_sum += other.speed_sum
        self.speeds += other.speeds
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        if other.cost is not None:
            self.cost = other.cost if self.cost is None else self.cost + other.cost
        self.unknown_cost += other.unknown_cost
        self.latencies += other.latencies
        self.ttfts += other.ttfts

    @property
    def values(self) -> int:
        return sum(map(len, self.latencies)) + sum(map(len, self.ttfts))


def flat(runs: list[array[float]]) -> array[float]:
    """One ascending array of the values of some ascending runs."""
    if len(runs) == 1:
        return runs[0]
    values: list[float] = []
    for run in runs:
        values.extend(run)
    values.sort()  # timsort merges the runs
    return array("d", values)


WIDTH = 12  # the sums of a Partial, as Block keeps them (see Block.of)
_D = array("d").itemsize


@dataclass(slots=True)
class Block:
    """The partials of the groups of one hour, in three byte strings (which, unlike arrays, the
    garbage collector does not track): ``sums``, WIDTH doubles per group; ``values``, per group
    its sorted latencies then its sorted ttfts (doubles); ``ends``, per group the index where
    its latencies end and where its ttfts end (64-bit integers)."""

    version: int
    groups: tuple[str | None, ...]
    sums: bytes
    values: bytes
    ends: bytes

    @classmethod
    def of(cls, version: int, groups: Mapping[str | None, Partial]) -> Block:
        sums: array[float] = array("d")
        values: array[float] = array("d")
        ends: array[int] = array("q")
        for p in groups.values():
            sums.extend((p.count, p.errors, p.server_errors, p.blocked, p.cache_hits,
                         p.latency_sum, p.speed_sum, p.speeds, p.input_tokens, p.output_tokens,
                         math.nan if p.cost is None else p.cost, p.unknown_cost))
            if p.latencies:
                values.extend(flat(p.latencies))
            ends.append(len(values))
            if p.ttfts:
                values.extend(flat(p.ttfts))
            ends.append(len(values))
        return cls(version, tuple(groups), sums.tobytes(), values.tobytes(), ends.tobytes())

    @property
    def size(self) -> int:
        """The number of latencies and ttfts."""
        return len(self.values) // _D

    def partials(self, hour: int) -> Iterator[tuple[Key, Partial]]:
        """A new Partial per group (the caller's to change), keyed by (``hour``, group)."""
        sums = memoryview(self.sums).cast("d")
        ends = memoryview(self.ends).cast("q")
        values = memoryview(self.values)
        start = 0
        for i, group in enumerate(self.groups):
            (count, errors, server_errors, blocked, hits, latency_sum, speed_sum, speeds, tin,
             tout, cost, unknown) = sums[i * WIDTH:(i + 1) * WIDTH]
            part = Partial(int(count), int(errors), int(server_errors), int(blocked), int(hits),
                           latency_sum, speed_sum, int(speeds), int(tin), int(tout),
                           None if math.isnan(cost) else cost, int(unknown))
            middle, end = ends[2 * i], ends[2 * i + 1]
            if middle > start:
                part.latencies = [_run(values[start * _D:middle * _D])]
            if end > middle:
                part.ttfts = [_run(values[middle * _D:end * _D])]
            start = end
            yield (hour, group), part


def _run(doubles: memoryview) -> array[float]:
    run: array[float] = array("d")
    run.frombytes(doubles)
    return run


def stats_row(key: Key, bucket_s: float, part: Partial) -> StatsRow:
    """The StatsRow of a bucket's (merged) partial."""
    bucket, group = key
    latencies, ttfts = flat(part.latencies), flat(part.ttfts)
    lat50, lat95, lat99 = (percentile(latencies, p) for p in LATENCY_P)
    ttft50, ttft95 = (percentile(ttfts, p) if ttfts else None for p in TTFT_P)
    n = part.count
    return StatsRow(
        bucket_start=bucket * bucket_s, group=group, count=n, requests_per_s=n / bucket_s,
        errors=part.errors, error_rate=part.errors / n, server_errors=part.server_errors,
        availability=1.0 - part.server_errors / n, latency_p50=lat50, latency_p95=lat95,
        latency_p99=lat99, ttft_p50=ttft50, ttft_p95=ttft95,
        output_tokens_per_s=part.speed_sum / part.speeds if part.speeds else None,
        input_tokens=part.input_tokens, output_tokens=part.output_tokens, cost_usd=part.cost,
        unknown_cost=part.unknown_cost,
    )


def unit_index(unit_s: float, postgres: bool,
               started_at: sa.ColumnElement[float] = requests.c.started_at
               ) -> sa.ColumnElement[int]:
    """``floor(started_at / unit_s)`` as an integer, the same way in both dialects."""
    ratio = started_at / unit_s
    # started_at is positive, so SQLite's truncating CAST is floor() (PostgreSQL's CAST rounds).
    return sa.cast(sa.func.floor(ratio) if postgres else ratio, sa.BigInteger)


def _one(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def partials(conn: sa.Connection, where: RequestFilter, group_by: str | None, unit_s: float,
             lo: float | None = None, hi: float | None = None,
             values: bool = True) -> dict[Key, Partial]:
    """The partial of every (unit, group) of the records matching ``where`` with
    ``lo <= started_at < hi``, units being ``floor(started_at / unit_s)``; without their
    latencies and ttfts unless ``values`` (reading them is most of the work)."""
    r = requests.c
    postgres = conn.dialect.name == "postgresql"
    unit = unit_index(unit_s, postgres).label("unit")
    group = (r[group_by] if group_by else sa.null()).label("grp")
    # One bound on each side: SQLite's index range takes only one of two upper (or lower)
    # bounds on started_at, not always the tighter one, and would read the whole range.
    if lo is not None:
        where = dataclasses.replace(where, since=lo if where.since is None else max(where.since, lo))
    if hi is not None:
        where = dataclasses.replace(where, until=hi if where.until is None else min(where.until, hi))
    conds = conditions(where)
    columns: list[sa.ColumnElement[Any]] = [
        unit, group, sa.func.count(), _one(r.status == "error"), _one(r.http_status >= 500),
        sa.func.sum(r.output_tokens_per_s), sa.func.count(r.output_tokens_per_s),
        sa.func.sum(r.input_tokens), sa.func.sum(r.output_tokens), sa.func.sum(r.cost_usd),
        _one(r.cost_usd.is_(None)), _one(r.status == "blocked"), _one(r.cache == "hit"),
        sa.func.sum(r.latency_s),
    ]
    if postgres and values:
        columns += [
            sa.func.array_agg(aggregate_order_by(r.latency_s, r.latency_s)),
            sa.func.array_agg(aggregate_order_by(r.ttft_s, r.ttft_s)).filter(r.ttft_s.isnot(None)),
        ]
    out: dict[Key, Partial] = {}
    stmt = sa.select(*columns).where(*conds).group_by(unit, *([group] if group_by else []))
    for row in conn.execute(stmt):
        count, errors, server_errors, speed_sum, speeds, tin, tout, cost, unknown = row[2:11]
        blocked, hits, latency_sum = row[11:14]
        part = Partial(count=count, errors=errors, server_errors=server_errors,
                       speed_sum=float(speed_sum or 0.0), speeds=speeds, input_tokens=int(tin),
                       output_tokens=int(tout), cost=None if cost is None else float(cost),
                       unknown_cost=unknown, blocked=blocked, cache_hits=hits,
                       latency_sum=float(latency_sum))
        if postgres and values:
            part.latencies = [array("d", row[14])]
            part.ttfts = [array("d", row[15])] if row[15] else []
        out[(row[0], row[1])] = part
    if values and not postgres:
        _sqlite_values(conn, sa.select(unit, group, r.latency_s, r.ttft_s).where(*conds), out)
    return out


def _sqlite_values(conn: sa.Connection, stmt: sa.Select[Any], out: dict[Key, Partial]) -> None:
    """Fill in the sorted latencies and ttfts of ``out`` from the rows themselves (SQLite has no
    ordered aggregate)."""
    latencies: dict[Key, list[float]] = {key: [] for key in out}
    ttfts: dict[Key, list[float]] = {key: [] for key in out}
    for unit, grp, latency, ttft in conn.execute(stmt):
        latencies[(unit, grp)].append(latency)
        if ttft is not None:
            ttfts[(unit, grp)].append(ttft)
    for key, part in out.items():
        values = latencies[key]
        values.sort()
        part.latencies = [array("d", values)]
        found = ttfts[key]
        if found:
            found.sort()
            part.ttfts = [array("d", found)]


def hour_versions(conn: sa.Connection, first: int, end: int) -> dict[int, int]:
    """The version of every hour ``first <= hour < end`` that has records."""
    h = request_hours.c
    stmt = sa.select(h.hour, h.version).where(h.hour >= first, h.hour < end)
    return {hour: version for hour, version in conn.execute(stmt)}


def _runs(hours: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Consecutive hours as [first, last + 1) ranges."""
    start = prev = None
    for h in sorted(hours):
        if prev is not None and h == prev + 1:
            prev = h
            continue
        if start is not None and prev is not None:
            yield start, prev + 1
        start = prev = h
    if start is not None and prev is not None:
        yield start, prev + 1


def _add(into: dict[Key, Partial], parts: Iterable[tuple[Key, Partial]], bucket: Any,
         adopt: bool = False) -> None:
    """Add ``parts`` to ``into``, their units mapped to buckets by ``bucket``; the parts
    themselves are left as they are unless ``adopt`` (then ``into`` may hold and change them)."""
    for (unit, grp), part in parts:
        key = (bucket(unit), grp)
        if key in into:
            into[key].add(part)
        elif adopt:
            into[key] = part
        else:
            into[key] = dataclasses.replace(part, latencies=list(part.latencies),
                                            ttfts=list(part.ttfts))


def _weight(block: Block) -> int:
    """What a block counts against ``max_values``: its values, and GROUP_COST per group for
    its sums (so that blocks read without values are bounded too)."""
    return block.size + GROUP_COST * len(block.groups)


def _by_hour(parts: Mapping[Key, Partial], lo: int, hi: int
             ) -> dict[int, dict[str | None, Partial]]:
    """The partials of the hours ``lo <= hour < hi`` by hour, then group (empty hours too)."""
    out: dict[int, dict[str | None, Partial]] = {hour: {} for hour in range(lo, hi)}
    for (hour, grp), part in parts.items():
        out[hour][grp] = part
    return out


class HourBlocks:
    """The blocks of one store (thread-safe); see the module docstring."""

    def __init__(self, max_values: int = 4_000_000, max_rows: int = 20_000) -> None:
        self.max_values = max_values
        self._blocks: OrderedDict[tuple[Any, ...], Block] = OrderedDict()
        self._values = 0
        # The rows of buckets made of whole hours, with the (hour, version)s they were made of.
        self._rows: OrderedDict[tuple[Any, ...], tuple[list[tuple[int, int]], list[StatsRow]]] = (
            OrderedDict())
        self._row_count = 0
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._gates = [threading.Lock() for _ in range(16)]
        self.hits = 0
        self.misses = 0

    @staticmethod
    def serves(query: StatsQuery) -> bool:
        """Whether ``query`` is answered from blocks: buckets of whole hours, no text search
        (payloads change without a version bump when they are erased)."""
        hours = query.bucket_s / HOUR
        return hours >= 1 and hours.is_integer() and not query.where.text

    def stats(self, conn: sa.Connection, query: StatsQuery) -> list[StatsRow] | None:
        """The rows of ``query`` (which ``serves``), or None when its range holds no whole hour
        (then the caller reads the table)."""
        where = query.where
        first = None if where.since is None else math.ceil(where.since / HOUR)
        end = None if where.until is None else math.floor(where.until / HOUR)
        if first is not None and end is not None and first >= end:
            return None
        per_bucket = round(query.bucket_s / HOUR)
        rest = dataclasses.replace(where, since=None, until=None)
        signature = self.signature(query.group_by, rest)
        # The partial hours at the ends of the range, straight from the table.
        edges: dict[Key, Partial] = {}
        if first is not None and where.since is not None and where.since < first * HOUR:
            edges.update(partials(conn, where, query.group_by, query.bucket_s, hi=first * HOUR))
        if end is not None and where.until is not None and end * HOUR < where.until:
            _add(edges, partials(conn, where, query.group_by, query.bucket_s,
                                 lo=end * HOUR).items(), lambda unit: unit, adopt=True)
        # Whole hours: versions first (see the module docstring), then blocks.
        h = request_hours.c
        stmt = sa.select(h.hour, h.version)
        if first is not None:
            stmt = stmt.where(h.hour >= first)
        if end is not None:
            stmt = stmt.where(h.hour < end)
        versions: dict[int, int] = {hour: version for hour, version in conn.execute(stmt)}
        stamps: dict[int, list[tuple[int, int]]] = {}
        for hour in sorted(versions):
            stamps.setdefault(hour // per_bucket, []).append((hour, versions[hour]))
        edged = {bucket for bucket, _ in edges}
        rows: list[StatsRow] = []
        merged: dict[Key, Partial] = {}
        missing: list[int] = []
        found: list[tuple[int, Block]] = []
        computed: list[int] = []  # buckets of whole hours whose rows are made now
        with self._lock:
            for bucket, stamp in stamps.items():
                # A bucket of whole hours that have not changed: its rows as they were.
                done = self._rows.get((signature, per_bucket, bucket))
                if bucket not in edged and done is not None and done[0] == stamp:
                    self._rows.move_to_end((signature, per_bucket, bucket))
                    rows += done[1]
                    continue
                if bucket not in edged:
                    computed.append(bucket)
                for hour, version in stamp:
                    block = self._blocks.get((signature, hour))
                    if block is not None and block.version == version:
                        self._blocks.move_to_end((signature, hour))
                        found.append((hour, block))
                    else:
                        missing.append(hour)
            self.hits += len(versions) - len(missing)
            self.misses += len(missing)
        for hour, block in found:
            _add(merged, block.partials(hour), lambda unit: unit // per_bucket, adopt=True)
        for lo, hi in _runs(missing):
            read = partials(conn, rest, query.group_by, HOUR, lo * HOUR, hi * HOUR)
            self._keep(signature, _by_hour(read, lo, hi), versions)
            _add(merged, read.items(), lambda unit: unit // per_bucket, adopt=True)
        _add(merged, edges.items(), lambda unit: unit, adopt=True)
        fresh: dict[int, list[StatsRow]] = {bucket: [] for bucket in computed}
        for key, part in merged.items():
            row = stats_row(key, query.bucket_s, part)
            rows.append(row)
            if key[0] in fresh:
                fresh[key[0]].append(row)
        self._keep_rows(signature, per_bucket, {b: (stamps[b], r) for b, r in fresh.items()})
        rows.sort(key=lambda row: (row.bucket_start, row.group is not None, row.group or ""))
        return rows

    def hours(self, conn: sa.Connection, where: RequestFilter, group_by: str | None,
              first: int, end: int, values: bool = True,
              versions: dict[int, int] | None = None
              ) -> tuple[dict[Key, Partial], dict[int, int]]:
        """The partial of every (hour, group) of the whole hours ``first <= hour < end`` of the
        records matching ``where`` (whose ``since``, ``until`` and ``text`` are not used),
        from blocks where they are valid and the table where not; and the version of each
        hour that has records. The partials are new: the caller's to change. Without
        ``values``, they hold no latencies or ttfts. ``versions`` are those of
        ``hour_versions``, when the caller has read them already (before this call)."""
        if versions is None:
            versions = hour_versions(conn, first, end)
        signature = self.signature(group_by, where, values)
        # Two readers missing the same blocks (the warm-up and a first page view) compute
        # them once: the second waits for the first, then finds them.
        with self._gates[hash(signature) % len(self._gates)]:
            return self._hours(conn, where, group_by, values, signature, versions), versions

    def _hours(self, conn: sa.Connection, where: RequestFilter, group_by: str | None,
               values: bool, signature: tuple[Any, ...], versions: dict[int, int]
               ) -> dict[Key, Partial]:
        hits: list[tuple[int, Block]] = []
        missing: list[int] = []
        with self._lock:
            for hour in sorted(versions):
                block = self._blocks.get((signature, hour))
                if block is not None and block.version == versions[hour]:
                    self._blocks.move_to_end((signature, hour))
                    hits.append((hour, block))
                else:
                    missing.append(hour)
            self.hits += len(hits)
            self.misses += len(missing)
        found: dict[Key, Partial] = {}
        for hour, block in hits:
            found.update(block.partials(hour))
        for lo, hi in _runs(missing):
            read = partials(conn, where, group_by, HOUR, lo * HOUR, hi * HOUR, values)
            self._keep(signature, _by_hour(read, lo, hi), versions)
            found.update(read)
        return found

    @staticmethod
    def signature(group_by: str | None, where: RequestFilter,
                   values: bool = True) -> tuple[Any, ...]:
        return (group_by, where.model, where.deployment, where.key_id, where.team,
                where.end_user, where.session_id, where.status, tuple(sorted(where.tags.items())),
                values)

    def _keep(self, signature: tuple[Any, ...], blocks: dict[int, dict[str | None, Partial]],
              versions: Mapping[int, int]) -> None:
        with self._lock:
            for hour, groups in blocks.items():
                key = (signature, hour)
                old = self._blocks.pop(key, None)
                if old is not None:
                    self._values -= _weight(old)
                block = Block.of(versions[hour], groups)
                self._blocks[key] = block
                self._values += _weight(block)
            while self._values > self.max_values and self._blocks:
                _, dropped = self._blocks.popitem(last=False)
                self._values -= _weight(dropped)

    def _keep_rows(self, signature: tuple[Any, ...], per_bucket: int,
                   buckets: dict[int, tuple[list[tuple[int, int]], list[StatsRow]]]) -> None:
        with self._lock:
            for bucket, done in buckets.items():
                old = self._rows.pop((signature, per_bucket, bucket), None)
                if old is not None:
                    self._row_count -= len(old[1])
                self._rows[(signature, per_bucket, bucket)] = done
                self._row_count += len(done[1])
            while self._row_count > self.max_rows and self._rows:
                _, dropped = self._rows.popitem(last=False)
                self._row_count -= len(dropped[1])
