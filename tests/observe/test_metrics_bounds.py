"""``/metrics`` stays bounded whatever clients send: a model name becomes a label value only
when a configured route has it."""

from __future__ import annotations

import http.client
import json
import urllib.request
from collections.abc import Iterator

import pytest

from tests.helpers import GatewayThread


@pytest.fixture
def gw() -> Iterator[GatewayThread]:
    config = {"models": [{"name": "chat", "deployments": [{"id": "f1", "provider": "fake"}]}]}
    with GatewayThread(config) as g:
        yield g


def scrape(gw: GatewayThread) -> str:
    with urllib.request.urlopen(gw.url + "/metrics") as resp:
        return str(resp.read().decode())


def series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def post(conn: http.client.HTTPConnection, model: str) -> int:
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    conn.request("POST", "/v1/chat/completions", body=body,
                 headers={"content-type": "application/json", "authorization": "Bearer x"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def test_unknown_model_names_do_not_add_series(gw: GatewayThread) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    assert post(conn, "chat") == 200
    assert post(conn, "no-such-model") == 404
    before = scrape(gw)
    for i in range(2000):
        assert post(conn, f"model-{i:05d}") == 404
    for i in range(3):
        assert post(conn, f"{i}" + "m" * 100_000) == 404
    assert post(conn, "chat") == 200
    conn.close()
    after = scrape(gw)
    assert "model-01999" not in after and "mmmmmmmmmm" not in after
    assert series(after) <= series(before) + 2  # a gauge or two that appear once (warm-ups)
    assert len(after) < len(before) + 2000  # the same series, only their counts grew
    assert 'warden_requests_total{error_type="not_found_error",model="unknown",status="error"} ' \
        '2004.0' in after
    assert 'warden_requests_total{error_type="",model="chat",status="ok"} 2.0' in after
