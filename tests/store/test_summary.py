"""Store.summary: totals of a range, whole or per group, equal to the same numbers computed from
the raw records, whether the range is read from the table, from hour blocks, or from the merged
span kept between calls; and still after records are written or purged."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest

from tests.store.factory import make_record
from warden.errors import InvalidRequest
from warden.observe.record import Record
from warden.store import RequestFilter, SqlStore, SummaryRow
from warden.store.summary import kth, union_percentile

HOUR = 3600.0
START = 1_700_002_800.0  # a whole hour
MODELS = ("gpt-a", "gpt-b", "claude")


def traffic(n: int = 400, hours: int = 30, seed: int = 7) -> list[Record]:
    """Records over ``hours`` hours (and a little before and after), of every status."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        status = rng.choices(("ok", "error", "blocked"), (0.8, 0.15, 0.05))[0]
        stream = rng.random() < 0.5
        out.append(make_record(
            i, started_at=START - 1800 + rng.random() * (hours + 1) * HOUR,
            model=rng.choice(MODELS), key_id=rng.choice(("k1", "k2", None)),
            team=rng.choice(("red", "blue")), status=status,
            http_status={"ok": 200, "error": rng.choice((502, 429)), "blocked": 400}[status],
            latency_s=rng.lognormvariate(-1, 0.8), ttft_s=rng.random() if stream else None,
            stream=stream, input_tokens=rng.randint(1, 500), output_tokens=rng.randint(0, 300),
            output_tokens_per_s=rng.uniform(5, 90) if status == "ok" else None,
            cost_usd=rng.choice((None, rng.random() / 100)), cache=rng.choice(("hit", "miss", "bypass"))))
    return out


def expected(records: list[Record], since: float, until: float,
             group_by: str | None = None) -> dict[str | None, dict[str, Any]]:
    """What a summary of [since, until) must say, per group, from the records themselves."""
    groups: dict[str | None, list[Record]] = {}
    for r in records:
        if since <= r.started_at < until:
            groups.setdefault(getattr(r, group_by) if group_by else None, []).append(r)
    out = {}
    for group, rs in groups.items():
        n = len(rs)
        lat = np.array([r.latency_s for r in rs])
        ttft = np.array([r.ttft_s for r in rs if r.ttft_s is not None])
        speeds = [r.output_tokens_per_s for r in rs if r.output_tokens_per_s is not None]
        costs = [r.cost_usd for r in rs if r.cost_usd is not None]
        out[group] = {
            "count": n, "requests_per_s": n / (until - since),
            "errors": sum(r.status == "error" for r in rs),
            "server_errors": sum(r.http_status >= 500 for r in rs),
            "blocked": sum(r.status == "blocked" for r in rs),
            "cache_hits": sum(r.cache == "hit" for r in rs),
            "latency_mean": float(lat.mean()),
            "latency_p50": np.percentile(lat, 50), "latency_p95": np.percentile(lat, 95),
            "latency_p99": np.percentile(lat, 99),
            "ttft_p50": np.percentile(ttft, 50) if len(ttft) else None,
            "ttft_p95": np.percentile(ttft, 95) if len(ttft) else None,
            "output_tokens_per_s": sum(speeds) / len(speeds) if speeds else None,
            "input_tokens": sum(r.input_tokens for r in rs),
            "output_tokens": sum(r.output_tokens for r in rs),
            "cost_usd": sum(costs) if costs else None,
            "unknown_cost": sum(r.cost_usd is None for r in rs),
        }
    return out


def assert_agree(rows: list[SummaryRow], want: dict[str | None, dict[str, Any]],
                 percentiles: bool = True) -> None:
    assert {row.group for row in rows} == set(want)
    assert [row.count for row in rows] == sorted((w["count"] for w in want.values()), reverse=True)
    for row in rows:
        w = want[row.group]
        assert row.error_rate == pytest.approx(w["errors"] / w["count"])
        assert row.availability == pytest.approx(1 - w["server_errors"] / w["count"])
        assert row.cache_hit_rate == pytest.approx(w["cache_hits"] / w["count"])
        for name, value in w.items():
            got = getattr(row, name)
            if not percentiles and name.endswith(("_p50", "_p95", "_p99")):
                assert got is None, name
            elif value is None or got is None:
                assert got == value, name
            else:
                assert got == pytest.approx(value, rel=1e-9, abs=1e-12), name


def test_kth_and_union_percentile_agree_with_a_sorted_merge() -> None:
    rng = random.Random(3)
    for _ in range(300):
        a = sorted(rng.choice((rng.random, lambda: float(rng.randint(0, 5))))()
                   for _ in range(rng.randint(0, 40)))
        b = sorted(float(rng.randint(0, 5)) if rng.random() < 0.3 else rng.random()
                   for _ in range(rng.randint(0 if a else 1, 40)))
        merged = sorted(a + b)
        for k in range(len(merged)):
            assert kth(a, b, k) == merged[k]
        for p in (0.0, 0.5, 0.95, 0.99, 1.0):
            assert union_percentile(a, b, p) == pytest.approx(float(np.percentile(merged, p * 100)))


@pytest.mark.parametrize("group_by", [None, "model", "key_id", "team"])
def test_a_long_range_agrees_with_the_raw_records(store: SqlStore, group_by: Any) -> None:
    records = traffic()
    store.write(records, [])
    since, until = START + 1234.5, START + 27 * HOUR + 99.25  # partial hours at both ends
    where = RequestFilter(since=since, until=until)
    want = expected(records, since, until, group_by)
    for _ in range(2):  # read from blocks, then from the merged span
        assert_agree(store.summary(where, group_by), want)
    assert_agree(store.summary(where, group_by, percentiles=False), want, percentiles=False)


def test_a_range_within_one_hour_and_filters(store: SqlStore) -> None:
    records = traffic()
    store.write(records, [])
    since, until = START + 3 * HOUR + 10, START + 3 * HOUR + 3000
    assert_agree(store.summary(RequestFilter(since=since, until=until)),
                 expected(records, since, until))
    where = RequestFilter(since=START, until=START + 20 * HOUR, team="red", model="gpt-a")
    kept = [r for r in records if r.team == "red" and r.model == "gpt-a"]
    assert_agree(store.summary(where), expected(kept, START, START + 20 * HOUR))


def test_written_and_purged_records_count_at_once(store: SqlStore) -> None:
    records = traffic()
    store.write(records, [])
    since, until = START + 600, START + 25 * HOUR + 600
    where = RequestFilter(since=since, until=until)
    store.summary(where)  # cached
    late = [make_record(10_000 + i, started_at=START + 5 * HOUR + i, latency_s=50.0 + i)
            for i in range(7)]  # into a whole hour of the span
    store.write(late, [])
    assert_agree(store.summary(where), expected(records + late, since, until))
    store.purge(START + 10 * HOUR)
    kept = [r for r in records + late if r.started_at >= START + 10 * HOUR]
    assert_agree(store.summary(where), expected(kept, since, until))


def test_an_empty_range_has_no_rows_and_a_range_is_required(store: SqlStore) -> None:
    assert store.summary(RequestFilter(since=START, until=START + 40 * HOUR)) == []
    for where in (RequestFilter(), RequestFilter(since=START), RequestFilter(since=5, until=5)):
        with pytest.raises(InvalidRequest):
            store.summary(where)


@pytest.mark.parametrize(("since", "until"), [
    (-math.inf, START), (-1e308, START), (START, 1e308), (math.nan, START), (START, math.inf)])
def test_a_range_past_what_the_store_counts_is_refused(store: SqlStore, since: float,
                                                       until: float) -> None:
    """Whole hours are counted in 64-bit SQL integers: a bound past them is an error naming it,
    never an overflow."""
    with pytest.raises(InvalidRequest) as refused:
        store.summary(RequestFilter(since=since, until=until))
    assert refused.value.param == ("until" if since == START else "since")


def test_spans_stay_within_their_memory_bound(store: SqlStore) -> None:
    store.write(traffic(), [])
    spans = store._spans
    spans.max_values = 50
    for hours in range(10, 20):
        store.summary(RequestFilter(since=START, until=START + hours * HOUR))
    assert spans._values <= 50 or len(spans._spans) == 1
    assert math.isfinite(spans._values)
