"""Hour blocks in columns: a Block gives back the partials it was made of, and the blocks of
many groups and hours hold a few container objects each, whatever their number of groups (a
full garbage collection walks every container object in the process: one object per group and
hour made it pause every thread for ~100 ms at 1,000,000 records)."""

from __future__ import annotations

import gc
import random
from array import array
from typing import Any

from tests.store.factory import make_record
from warden.store import RequestFilter, SqlStore, StatsQuery, open_store
from warden.store.rollup import Block, Partial

HOUR = 3600.0
START = 1_700_002_800.0  # a whole hour


def test_a_block_gives_back_its_partials() -> None:
    groups: dict[str | None, Partial] = {
        "a": Partial(count=3, errors=1, server_errors=1, blocked=0, cache_hits=2,
                     latency_sum=1.5, speed_sum=40.0, speeds=2, input_tokens=30,
                     output_tokens=12, cost=0.25, unknown_cost=1,
                     latencies=[array("d", [0.2, 0.9]), array("d", [0.4])],
                     ttfts=[array("d", [0.1])]),
        None: Partial(count=1, latency_sum=0.3, latencies=[array("d", [0.3])]),  # cost unknown
        "c": Partial(count=2, blocked=2, latency_sum=0.0),  # read without values
    }
    block = Block.of(7, groups)
    back = dict(block.partials(42))
    assert list(back) == [(42, "a"), (42, None), (42, "c")]
    a = back[(42, "a")]
    assert (a.count, a.errors, a.server_errors, a.cache_hits, a.speeds, a.input_tokens,
            a.output_tokens, a.unknown_cost) == (3, 1, 1, 2, 2, 30, 12, 1)
    assert isinstance(a.count, int) and a.cost == 0.25 and a.latency_sum == 1.5
    assert [list(run) for run in a.latencies] == [[0.2, 0.4, 0.9]]  # the runs merged, sorted
    assert [list(run) for run in a.ttfts] == [[0.1]]
    assert back[(42, None)].cost is None and back[(42, None)].ttfts == []
    assert back[(42, "c")].latencies == [] and back[(42, "c")].blocked == 2
    assert block.version == 7 and block.size == 5
    # The partials are new: changing one leaves the block as it was.
    a.add(a)
    assert dict(block.partials(42))[(42, "a")].count == 3


def _tracked(root: Any) -> int:
    """The container objects reachable from ``root`` (itself included), classes left out."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, type):
            continue
        seen.add(id(obj))
        todo.extend(gc.get_referents(obj))
    return len(seen)


def test_blocks_hold_a_few_objects_per_hour_whatever_their_groups(store: SqlStore) -> None:
    rng = random.Random(3)
    hours, users = 24, 60
    store.write([make_record(i, started_at=START + rng.random() * hours * HOUR,
                             key_id=f"key-{i % users}", ttft_s=rng.random(),
                             latency_s=rng.random()) for i in range(3_000)], [])
    gc.collect()  # untracks the tuples and dicts that hold only atoms
    blocks = store._blocks._blocks
    assert _tracked(blocks) <= 2
    rows = store.stats(StatsQuery(bucket_s=HOUR, group_by="key_id",
                                  where=RequestFilter(since=START, until=START + hours * HOUR)))
    assert len({row.group for row in rows}) == users and len(blocks) == hours
    store.summary(RequestFilter(since=START, until=START + hours * HOUR), "key_id",
                  percentiles=False)
    assert len(blocks) == 2 * hours  # the same hours without their values
    gc.collect()
    # The OrderedDict, and one object per block.
    assert _tracked(blocks) == 1 + len(blocks)


def test_the_cache_bound_comes_from_cache_mib_and_zero_keeps_nothing(store_url: str) -> None:
    rng = random.Random(5)
    records = [make_record(i, started_at=START + rng.random() * 12 * HOUR, model=f"m{i % 3}",
                           latency_s=rng.random()) for i in range(600)]
    query = StatsQuery(bucket_s=HOUR, group_by="model",
                       where=RequestFilter(since=START, until=START + 12 * HOUR))
    kept, none = open_store(store_url, cache_mib=1), open_store(store_url, cache_mib=0)
    assert isinstance(kept, SqlStore) and isinstance(none, SqlStore)
    try:
        kept.write(records, [])
        assert kept._blocks.max_values == kept._spans.max_values == 2**20 // 16
        assert none._blocks.max_values == 0
        assert none.stats(query) == kept.stats(query) == kept.stats(query)
        assert len(kept._blocks._blocks) == 12 and not none._blocks._blocks
        where = RequestFilter(since=START, until=START + 12 * HOUR)
        assert none.summary(where, "model") == kept.summary(where, "model")
    finally:
        kept.close()
        none.close()
