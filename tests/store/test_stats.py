"""Store.stats agrees with the same aggregates computed from the raw records (numpy's linear
percentiles, the method PostgreSQL's percentile_cont uses)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from typing import Any

import numpy as np
import pytest

from tests.store.factory import BASE, make_record
from warden.errors import InvalidRequest
from warden.observe.record import Record
from warden.store import RequestFilter, SqlStore, StatsQuery, StatsRow, open_store
from warden.store.base import percentile

BUCKET = 60.0


def traffic(unit: float = BUCKET) -> list[Record]:
    """300 records in 3 ``unit``-long spans (one-minute buckets by default), 2 models,
    3 providers, with known everything."""
    rng = random.Random(7)
    out = []
    for i in range(300):
        if i % 10 == 0:
            status, http = "error", 502
        elif i % 13 == 0:
            status, http = "error", 429
        elif i % 17 == 0:
            status, http = "blocked", 400
        elif i % 19 == 0:
            status, http = "error", 503
        else:
            status, http = "ok", 200
        out.append(make_record(
            i,
            started_at=BASE + (i % 3) * unit + rng.uniform(0.5, unit - 0.5),
            model=("gpt-a", "gpt-b")[i % 2],
            provider=("openai", "anthropic", None)[(i // 3) % 3],
            status=status,
            http_status=http,
            latency_s=round(rng.lognormvariate(-0.5, 0.8), 6),
            ttft_s=None if i % 7 == 0 else round(rng.uniform(0.01, 0.5), 6),
            output_tokens_per_s=None if i % 5 == 0 else rng.uniform(10, 90),
            input_tokens=rng.randint(1, 2000),
            output_tokens=rng.randint(0, 800),
            cost_usd=None if i % 11 == 0 else rng.uniform(0, 0.01),
            tags={"half": "first" if i < 150 else "second"},
        ))
    return out


def expected_stats(records: list[Record], group_by: str | None,
                   bucket_s: float = BUCKET) -> list[dict[str, Any]]:
    groups: defaultdict[tuple[float, str | None], list[Record]] = defaultdict(list)
    for r in records:
        key = (math.floor(r.started_at / bucket_s) * bucket_s, getattr(r, group_by) if group_by else None)
        groups[key].append(r)
    out = []
    for (bucket, group), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is not None,
                                                                     kv[0][1] or "")):
        n = len(rs)
        lat = np.array([r.latency_s for r in rs])
        ttft = np.array([r.ttft_s for r in rs if r.ttft_s is not None])
        speeds = [r.output_tokens_per_s for r in rs if r.output_tokens_per_s is not None]
        costs = [r.cost_usd for r in rs if r.cost_usd is not None]
        errors = sum(r.status == "error" for r in rs)
        server = sum(r.http_status >= 500 for r in rs)
        out.append({
            "bucket_start": bucket, "group": group, "count": n, "requests_per_s": n / bucket_s,
            "errors": errors, "error_rate": errors / n, "server_errors": server,
            "availability": 1 - server / n,
            "latency_p50": np.percentile(lat, 50), "latency_p95": np.percentile(lat, 95),
            "latency_p99": np.percentile(lat, 99),
            "ttft_p50": np.percentile(ttft, 50) if len(ttft) else None,
            "ttft_p95": np.percentile(ttft, 95) if len(ttft) else None,
            "output_tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
            "input_tokens": sum(r.input_tokens for r in rs),
            "output_tokens": sum(r.output_tokens for r in rs),
            "cost_usd": sum(costs) if costs else None,
            "unknown_cost": sum(r.cost_usd is None for r in rs),
        })
    return out


def as_dicts(rows: list[StatsRow]) -> list[dict[str, Any]]:
    return [{f: getattr(row, f) for f in StatsRow.__dataclass_fields__} for row in rows]


def assert_agree(got: list[StatsRow], expected: list[dict[str, Any]]) -> None:
    assert [(g.bucket_start, g.group) for g in got] == [(e["bucket_start"], e["group"]) for e in expected]
    for g, e in zip(as_dicts(got), expected, strict=True):
        for name, value in e.items():
            if isinstance(value, float) or isinstance(g[name], float):
                assert g[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
            else:
                assert g[name] == value, name


@pytest.mark.parametrize("group_by", [None, "model", "provider"])
def test_stats_agree_with_the_raw_rows(store: SqlStore, group_by: Any) -> None:
    records = traffic()
    store.write(records, [])
    got = store.stats(StatsQuery(bucket_s=BUCKET, group_by=group_by))
    assert len(got) == 3 * {None: 1, "model": 2, "provider": 3}[group_by]
    assert_agree(got, expected_stats(records, group_by))


def test_stats_honour_the_filter(store: SqlStore) -> None:
    records = traffic()
    store.write(records, [])
    where = RequestFilter(since=BASE + BUCKET, tags={"half": "second"}, model="gpt-b")
    got = store.stats(StatsQuery(bucket_s=BUCKET, group_by="model", where=where))
    kept = [r for r in records if r.started_at >= BASE + BUCKET and r.tags["half"] == "second"
            and r.model == "gpt-b"]
    assert_agree(got, expected_stats(kept, "model"))


def test_one_bucket_for_the_whole_range(store: SqlStore) -> None:
    records = traffic()
    store.write(records, [])
    (row,) = store.stats(StatsQuery(bucket_s=3600.0))
    assert row.count == 300
    assert row.latency_p99 == pytest.approx(np.percentile([r.latency_s for r in records], 99))


def test_unknown_cost_is_counted_not_summed_as_zero(store: SqlStore) -> None:
    store.write([make_record(i, cost_usd=None, ttft_s=None) for i in range(3)]
                + [make_record(100 + i, cost_usd=0.5, started_at=BASE + BUCKET) for i in range(2)], [])
    first, second = store.stats(StatsQuery(bucket_s=BUCKET))
    assert (first.cost_usd, first.unknown_cost, first.ttft_p50) == (None, 3, None)
    assert (second.cost_usd, second.unknown_cost) == (1.0, 0)
    assert store.stats(StatsQuery(where=RequestFilter(model="absent"))) == []


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [1.0, 2.0, 4.0, 8.0]
    assert percentile(values, 0.0) == 1.0 and percentile(values, 1.0) == 8.0
    assert percentile(values, 0.5) == 3.0
    assert percentile([5.0], 0.99) == 5.0
    for p in (0.5, 0.95, 0.99):
        assert percentile(values, p) == pytest.approx(np.percentile(values, p * 100))


def test_bad_stats_queries_are_invalid_requests() -> None:
    with pytest.raises(InvalidRequest):
        StatsQuery(bucket_s=0)
    with pytest.raises(InvalidRequest):
        StatsQuery(group_by="colour")  # type: ignore[arg-type]


HOUR = 3600.0


def select(records: list[Record], since: float | None = None, until: float | None = None,
           **where: Any) -> list[Record]:
    return [r for r in records if (since is None or r.started_at >= since)
            and (until is None or r.started_at < until)
            and all(getattr(r, k) == v for k, v in where.items())]


@pytest.mark.parametrize("bucket_s", [HOUR, 2 * HOUR])
@pytest.mark.parametrize("group_by", [None, "model"])
def test_buckets_of_whole_hours_agree_with_the_raw_rows(
    store: SqlStore, bucket_s: float, group_by: Any
) -> None:
    records = traffic(unit=HOUR)  # 3 hours, BASE not on an hour: partial hours at both ends
    store.write(records, [])
    for since, until in ((None, None), (BASE + 1000, None), (None, BASE + 2.5 * HOUR),
                         (BASE + 1000, BASE + 2.5 * HOUR)):
        query = StatsQuery(bucket_s=bucket_s, group_by=group_by,
                           where=RequestFilter(since=since, until=until))
        expected = expected_stats(select(records, since, until), group_by, bucket_s)
        assert_agree(store.stats(query), expected)
        assert_agree(store.stats(query), expected)  # again, from the blocks


def test_blocks_are_used_again_and_follow_every_change(store: SqlStore) -> None:
    records = traffic(unit=HOUR)
    store.write(records, [])
    query = StatsQuery(bucket_s=HOUR, group_by="model")
    store.stats(query)
    blocks = store._blocks
    hits, misses = blocks.hits, blocks.misses
    assert misses >= 3
    assert_agree(store.stats(query), expected_stats(records, "model", HOUR))
    assert (blocks.hits - hits, blocks.misses - misses) == (misses, 0)

    late = [make_record(1000 + i, started_at=BASE + 10 + i, model="gpt-a", latency_s=9.0)
            for i in range(3)]  # a replayed spool writes into an old hour
    store.write(late, [])
    records += late
    assert_agree(store.stats(query), expected_stats(records, "model", HOUR))
    assert blocks.misses - misses == 1  # only the hour that changed was read again

    assert store.purge(BASE + HOUR) > 0
    kept = select(records, since=BASE + HOUR)
    assert_agree(store.stats(query), expected_stats(kept, "model", HOUR))
    filtered = StatsQuery(bucket_s=HOUR, where=RequestFilter(model="gpt-b", tags={"half": "first"}))
    assert_agree(store.stats(filtered),
                 expected_stats([r for r in kept if r.model == "gpt-b" and r.tags["half"] == "first"],
                                None, HOUR))


def test_blocks_follow_the_writes_of_another_replica(store: SqlStore, store_url: str) -> None:
    other = open_store(store_url)
    try:
        records = traffic(unit=HOUR)
        store.write(records, [])
        query = StatsQuery(bucket_s=HOUR)
        assert_agree(store.stats(query), expected_stats(records, None, HOUR))
        late = [make_record(2000 + i, started_at=BASE + HOUR + i) for i in range(5)]
        other.write(late, [])
        assert_agree(store.stats(query), expected_stats(records + late, None, HOUR))
    finally:
        other.close()


def test_blocks_stay_within_their_memory_budget(store: SqlStore) -> None:
    store.write(traffic(unit=HOUR), [])
    store._blocks.max_values = 100  # less than one hour's latencies and ttfts
    query = StatsQuery(bucket_s=HOUR)
    first = store.stats(query)
    assert store.stats(query) == first
    assert store._blocks._values <= 100
