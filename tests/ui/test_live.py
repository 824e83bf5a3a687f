"""The live overview (GET /api/live, server-sent events) through real HTTP: the first snapshot
within 2 s and one at least every second after it, numbers that follow the requests sent and
the requests in flight, one computation per tick for every client, a team's own numbers for a
team's key, and a stream that stops when its key is revoked or its time is up."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.helpers import GatewayThread
from tests.ui.http import call, events, login

ADMIN = "live-admin-key-0001"
RED = "live-app-red-000001"
BLUE = "live-app-blue-00001"
RED_VIEWER = "live-viewer-red-001"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayThread]:
    folder = tmp_path_factory.mktemp("live")
    with GatewayThread({
        "admin_key": ADMIN, "server": {"data_dir": str(folder / "data")},
        "keys": [{"key": RED, "name": "red-app", "team": "red"},
                 {"key": BLUE, "name": "blue-app", "team": "blue"},
                 {"key": RED_VIEWER, "name": "red-viewer", "role": "viewer", "team": "red"}],
        "models": [{"name": "echo", "deployments": [{"id": "f", "provider": "fake"}]},
                   {"name": "slow", "deployments": [{"id": "s", "provider": "fake",
                                                     "params": {"ttft_ms": 3000}}]}],
    }) as g:
        yield g


def chat(gw: GatewayThread, key: str, model: str = "echo") -> int:
    return call(gw.url, "POST", "/v1/chat/completions", token=key, body={
        "model": model, "messages": [{"role": "user", "content": "hi"}]}).status


def stored(gw: GatewayThread) -> int:
    return len(call(gw.url, "GET", "/api/requests?limit=1000", token=ADMIN).json()["data"])


def first_where(stream: Iterator[tuple[str, Any, float]], ok: Any) -> tuple[dict[str, Any], float]:
    for name, data, at in stream:
        assert name == "overview", data
        if ok(data):
            return data, at
    raise AssertionError("the stream ended first")


def test_the_first_snapshot_comes_at_once_and_then_one_a_second(gw: GatewayThread) -> None:
    cookie = login(gw.url, ADMIN)
    seen = []
    for name, data, at in events(gw.url, "/api/live?range=1h", cookie=cookie, timeout_s=4.5):
        assert name == "overview"
        seen.append((at, data))
    first = seen[0][0]
    assert first < 2.0, f"the first snapshot came after {first:.2f} s"
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
    assert len(seen) >= 4 and max(gaps) < 1.5, gaps
    snapshot = seen[-1][1]
    assert snapshot["range"] == "1h" and snapshot["bucket_s"] == 60
    assert snapshot["until"] - snapshot["since"] == 3600
    assert set(snapshot["tiles"]) >= {
        "requests_per_s", "latency_p50", "latency_p95", "latency_p99", "ttft_p50",
        "output_tokens_per_s", "error_rate", "availability", "cost_usd", "cache_hit_rate",
        "guard_actions", "in_flight"}
    assert set(snapshot["breakdowns"]) == {"model", "deployment", "key"}
    assert len(snapshot["series"]["t"]) == 61  # every minute of the hour, the current one too


def test_the_numbers_follow_the_requests_sent(gw: GatewayThread) -> None:
    before = stored(gw)
    stream = events(gw.url, "/api/live?range=15m", token=ADMIN, timeout_s=10)
    first, _ = first_where(stream, lambda d: True)
    assert first["tiles"]["requests"] == before
    for _ in range(6):
        assert chat(gw, RED) == 200
    sent = time.monotonic()
    data, _ = first_where(stream, lambda d: d["tiles"]["requests"] == before + 6)
    assert time.monotonic() - sent < 3.0
    assert data["tiles"]["requests_per_s"] == pytest.approx((before + 6) / 900)
    assert sum(data["series"]["requests"]) == before + 6
    models = {row["group"]: row["requests"] for row in data["breakdowns"]["model"]}
    assert models["echo"] >= 6
    stream.close()


def test_requests_in_flight_show_while_they_wait(gw: GatewayThread) -> None:
    stream = events(gw.url, "/api/live?range=15m", token=ADMIN, timeout_s=12)
    first_where(stream, lambda d: d["tiles"]["in_flight"] == 0)
    with ThreadPoolExecutor(3) as pool:
        slow = [pool.submit(chat, gw, RED, "slow") for _ in range(3)]
        sent = time.monotonic()
        first_where(stream, lambda d: d["tiles"]["in_flight"] == 3)
        assert time.monotonic() - sent < 2.0
        assert [f.result() for f in slow] == [200] * 3
    first_where(stream, lambda d: d["tiles"]["in_flight"] == 0)
    stream.close()


def test_clients_share_one_computation_per_tick(gw: GatewayThread) -> None:
    hub = gw.app.state.dashboard.hub
    counts: list[int] = []

    def follow() -> None:
        counts.append(sum(1 for _ in events(gw.url, "/api/live?range=6h", token=ADMIN,
                                            timeout_s=3.2)))

    before = hub.builds
    threads = [threading.Thread(target=follow) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    built = hub.builds - before
    assert min(counts) >= 3, counts  # each client got a snapshot a second
    assert built <= 6, f"{built} snapshots computed for 4 clients over 3 s"


def test_a_team_key_sees_its_team_only(gw: GatewayThread) -> None:
    for key in (RED, BLUE, BLUE):
        assert chat(gw, key) == 200
    deadline = time.monotonic() + 5
    while True:
        teams = {}
        for r in call(gw.url, "GET", "/api/requests?limit=1000", token=ADMIN).json()["data"]:
            teams[r["team"]] = teams.get(r["team"], 0) + 1
        if teams.get("blue", 0) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    cookie = login(gw.url, RED_VIEWER)
    data, _ = first_where(events(gw.url, "/api/live?range=1h", cookie=cookie, timeout_s=5),
                          lambda d: True)
    assert data["tiles"]["requests"] == teams["red"]
    assert {row["group"] for row in data["breakdowns"]["key"]} == {"red-app"}
    whole = call(gw.url, "GET", "/api/overview?range=1h", token=ADMIN).json()
    assert whole["tiles"]["requests"] == sum(teams.values())


def test_the_stream_stops_when_its_key_is_revoked(gw: GatewayThread) -> None:
    made = call(gw.url, "POST", "/api/keys", token=ADMIN, body={"name": "tv", "role": "viewer"})
    token = made.json()["token"]
    stream = events(gw.url, "/api/live?range=15m", token=token, timeout_s=10)
    assert next(stream)[0] == "overview"
    assert call(gw.url, "DELETE", f"/api/keys/{made.json()['id']}", token=ADMIN).status == 200
    rest = list(stream)
    assert rest and rest[-1][0] == "error", rest
    assert "revoked" in rest[-1][1]["error"]["message"]
    assert rest[-1][2] < 4.0


def test_a_stream_ends_in_time_and_the_overview_answers_once(gw: GatewayThread) -> None:
    live = gw.app.state.dashboard.live
    live.stream_s = 1.5
    try:
        seen = list(events(gw.url, "/api/live?range=24h", token=ADMIN, timeout_s=8))
    finally:
        live.stream_s = 15.0
    assert 2 <= len(seen) <= 4 and seen[-1][2] < 3.5, [at for _, _, at in seen]
    one = call(gw.url, "GET", "/api/overview?range=24h", token=ADMIN)
    assert one.status == 200 and one.headers["cache-control"] == "no-store"
    assert one.json()["range"] == "24h" and one.json()["bucket_s"] == 3600


@pytest.mark.parametrize(("path", "token", "status"), [
    ("/api/live?range=2h", ADMIN, 400), ("/api/live", None, 401), ("/api/live", RED, 403),
    ("/api/overview?range=1y", ADMIN, 400), ("/api/overview", RED, 403)])
def test_a_bad_range_or_key_is_refused_before_the_stream(gw: GatewayThread, path: str,
                                                         token: str | None, status: int) -> None:
    answer = call(gw.url, "GET", path, token=token)
    assert answer.status == status
    assert answer.json()["error"]["message"]
