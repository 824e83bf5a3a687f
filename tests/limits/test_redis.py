"""Limits shared through Redis: two gateway processes count together, and a Redis that cannot
be reached fails open or closed, as configured."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import GatewayThread
from tests.limits.test_gateway import ALICE, BOB, DOLLAR_A_TOKEN, config, metric

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, key: str, max_tokens: int = 2) -> tuple[int, dict[str, Any]]:
    data = json.dumps({"model": "m", "max_tokens": max_tokens,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


@contextmanager
def gateway_process(folder: Path, cfg: dict[str, Any]) -> Iterator[str]:
    """``warden serve`` in a process of its own; yields its URL once it answers /healthz."""
    folder.mkdir()
    path = folder / "warden.yaml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    port = free_port()
    log = (folder / "gateway.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "warden", "serve", "--config", str(path),
                             "--port", str(port), "--log-level", "warning"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the gateway did not start:\n{(folder / 'gateway.log').read_text()}")
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def shared(redis_url: str, prefix: str) -> dict[str, Any]:
    return config({"redis_url": redis_url, "key_prefix": prefix,
                   "rules": [{"scope": "key", "rpm": 10}]},
                  [{"scope": "key", "match": "bob", "usd": 14, "period": "day"}],
                  {"id": "f", "provider": "fake", "price": DOLLAR_A_TOKEN})


def test_two_gateway_processes_sharing_redis_hold_the_limit_in_total(
        tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    with ExitStack() as stack:
        urls = [stack.enter_context(gateway_process(tmp_path / name, shared(redis_url,
                                                                            redis_prefix)))
                for name in ("one", "two")]
        started = time.monotonic()
        assert [post(url, ALICE)[0] for url in urls] == [200, 200]  # one each, 8 left
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda i: post(urls[i % 2], ALICE)[0], range(40)))
        elapsed = time.monotonic() - started
        # GCRA lets the whole minute's 10 through at once, then one each 6 s.
        assert statuses.count(429) + statuses.count(200) == 40
        assert 8 <= statuses.count(200) <= 8 + int(elapsed / 6), (statuses, elapsed)

        # A budget too: each request reserves 7 USD and costs 2, wherever it lands.
        answers = [post(urls[i % 2], BOB) for i in range(5)]
        assert [status for status, _ in answers] == [200, 200, 200, 200, 429]
        assert answers[-1][1]["error"]["code"] == "budget_exceeded"
        assert "8.00 USD spent" in answers[-1][1]["error"]["message"]


def test_a_gateway_counts_streams_and_budgets_in_redis(redis_url: str,
                                                       redis_prefix: str) -> None:
    with GatewayThread(shared(redis_url, redis_prefix)) as gw:
        client = gw.client(api_key=BOB, max_retries=0)
        for _ in range(4):
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], max_tokens=2,
                stream=True)
            assert [c for c in stream]
        assert post(gw.url, BOB)[0] == 429
        used = 'warden_budget_used_usd{period="day",scope="key",subject="bob"}'
        assert metric(gw, used) == 8.0


def unreachable_redis() -> str:
    return f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there


def test_without_redis_requests_pass_when_failing_open() -> None:
    cfg = config({"redis_url": unreachable_redis(), "rules": [{"scope": "key", "rpm": 1}]})
    with GatewayThread(cfg) as gw:
        assert [post(gw.url, ALICE)[0] for _ in range(3)] == [200, 200, 200]
        assert metric(gw, 'warden_limit_backend_errors_total{outcome="allowed"}') == 3


def test_without_redis_requests_get_503_when_failing_closed() -> None:
    cfg = config({"redis_url": unreachable_redis(), "on_redis_error": "refuse",
                  "rules": [{"scope": "key", "rpm": 1}]})
    with GatewayThread(cfg) as gw:
        req = urllib.request.Request(
            gw.url + "/v1/chat/completions", method="POST",
            data=b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}',
            headers={"Authorization": f"Bearer {ALICE}"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req)
        with info.value as err:
            assert err.code == 503 and err.headers["retry-after"] == "1"
            assert json.loads(err.read())["error"]["code"] == "limits_unavailable"
        assert metric(gw, 'warden_limit_backend_errors_total{outcome="refused"}') == 1
