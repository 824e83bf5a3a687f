"""The live hub on its own: one computation per tick whoever follows, an error event while the
store fails and snapshots again once it is back, nothing computed while no one follows."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from warden.store.base import StoreError
from warden.ui.live import Event, LiveHub


class Source:
    """A build function that counts its calls and fails while ``failing``."""

    def __init__(self) -> None:
        self.calls = 0
        self.failing = False

    def __call__(self, range_name: str, team: str | None) -> dict[str, Any]:
        self.calls += 1
        if self.failing:
            raise StoreError("cannot read requests at sqlite:///x.db: disk I/O error")
        return {"range": range_name, "team": team, "n": self.calls}


async def take(feed: Any, n: int) -> list[Event]:
    return [await anext(feed) for _ in range(n)]


async def test_followers_share_each_tick() -> None:
    source = Source()
    hub = LiveHub(source, lambda: None, interval_s=0.1)
    feeds = [hub.follow("1h", None) for _ in range(5)]
    try:
        got = await asyncio.wait_for(asyncio.gather(*(take(f, 4) for f in feeds)), 5)
    finally:
        for feed in feeds:
            await feed.aclose()
    assert source.calls <= 6  # four ticks (and a start) for five followers
    for events in got:
        assert [name for name, _ in events] == [b"overview"] * 4
        numbers = [orjson.loads(data)["n"] for _, data in events]
        assert numbers == sorted(set(numbers))  # each a new snapshot
    await asyncio.sleep(0.3)
    idle = source.calls
    await asyncio.sleep(0.3)
    assert source.calls == idle  # no one follows: nothing is computed
    await hub.close()


async def test_a_failing_store_sends_errors_then_snapshots_again() -> None:
    source = Source()
    hub = LiveHub(source, lambda: None, interval_s=0.05)
    feed = hub.follow("24h", "red")
    try:
        name, data = await asyncio.wait_for(anext(feed), 2)
        assert (name, orjson.loads(data)["team"]) == (b"overview", "red")
        source.failing = True
        name, data = await asyncio.wait_for(anext(feed), 2)
        assert name == b"error"
        assert "disk I/O error" in orjson.loads(data)["error"]["message"]
        source.failing = False
        name, _ = await asyncio.wait_for(anext(feed), 2)
        assert name == b"overview"
    finally:
        await feed.aclose()
        await hub.close()


async def test_latest_is_at_most_a_tick_old_and_warming_goes_on_after_a_failure() -> None:
    source = Source()
    warmed = asyncio.Event()
    calls = []

    def warm() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise StoreError("not yet")
        warmed.set()

    hub = LiveHub(source, warm, interval_s=10, warm_every_s=0.01)
    first = await hub.latest("7d", None)
    assert await hub.latest("7d", None) is first and source.calls == 1
    assert (await hub.latest("7d", "blue")) is not first
    try:
        await hub.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(warmed.wait(), 2)
    finally:
        await hub.close()
    assert len(calls) >= 2 and warmed.is_set()
    # Counted at /metrics: every warm-up that ended, failed ones too, and the last one's length.
    families = {m.name: m for m in hub.collect()}
    assert families["warden_dashboard_warmups"].samples[0].value == hub.warmups >= 1
    assert 0 <= families["warden_dashboard_last_warmup_seconds"].samples[0].value < 2
