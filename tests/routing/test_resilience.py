"""Retries, fallbacks, timeouts, breakers and health checks, against real upstream servers."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import openai
import pytest

from tests.helpers import GatewayThread
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "admin-secret-key"


@pytest.fixture
def ups() -> Iterator[list[tuple[FakeOpenAIUpstream, ServerThread]]]:
    with ExitStack() as stack:
        out = []
        for i in range(3):
            up = FakeOpenAIUpstream(name=f"model-{i}")
            out.append((up, stack.enter_context(ServerThread(up.http))))
        yield out


def dep(up: FakeOpenAIUpstream, id: str, **extra: Any) -> dict[str, Any]:
    return {"id": id, "provider": "openai", "base_url": up.base_url, **extra}


def client(gw: GatewayThread) -> openai.OpenAI:
    return gw.client(api_key="x", max_retries=0, timeout=20)


def deployments(gw: GatewayThread) -> dict[str, dict[str, Any]]:
    req = urllib.request.Request(gw.url + "/api/deployments",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        data = json.loads(resp.read())
    return {f"{d['model']}/{d['id']}": d for d in data["data"]}


MSG = [{"role": "user", "content": "ping pong"}]


def test_a_failing_deployment_is_retried_on_another(ups: list[Any]) -> None:
    (bad, _), (good, _), _ = ups
    bad.behaviour.fail_status = 503
    config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
        "strategy": "round-robin", "retries": 2, "backoff_s": 0,
        "breaker": {"failures": 1000}},
        "deployments": [dep(bad, "bad"), dep(good, "good")]}]}
    with GatewayThread(config) as gw:
        c = client(gw)
        for _ in range(6):
            raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
            assert raw.headers["x-warden-deployment"] == "good"
            assert raw.parse().choices[0].message.content == "ping pong"
    assert bad.seen.requests == 3  # round-robin sent every other first try to it
    assert good.seen.requests == 6


def test_a_connect_error_is_retried(ups: list[Any]) -> None:
    (good, _), _, _ = ups
    config = {"models": [{"name": "m", "routing": {"strategy": "round-robin", "backoff_s": 0},
              "deployments": [{"id": "dead", "provider": "openai",
                               "base_url": "http://127.0.0.1:9/v1"}, dep(good, "good")]}]}
    with GatewayThread(config) as gw:
        for _ in range(4):
            assert client(gw).chat.completions.create(model="m", messages=MSG).choices


def test_fallback_model_answers_when_every_deployment_fails(ups: list[Any]) -> None:
    (bad, _), (backup, _), _ = ups
    bad.behaviour.fail_status = 500
    config = {"models": [
        {"name": "main", "routing": {"retries": 1, "backoff_s": 0, "fallbacks": ["backup"]},
         "deployments": [dep(bad, "bad")]},
        {"name": "backup", "deployments": [dep(backup, "b1", model="backup-model")]},
    ]}
    with GatewayThread(config) as gw:
        raw = client(gw).chat.completions.with_raw_response.create(model="main", messages=MSG)
    assert raw.headers["x-warden-deployment"] == "b1"
    assert raw.headers["x-warden-attempts"] == "3"
    assert bad.seen.requests == 2
    assert backup.seen.bodies[-1]["model"] == "backup-model"


def test_first_byte_timeout_is_a_504_after_retries(ups: list[Any]) -> None:
    (slow, _), _, _ = ups
    slow.behaviour.delay_s = 1.0
    config = {"models": [{"name": "m", "routing": {"retries": 1, "backoff_s": 0},
              "deployments": [dep(slow, "slow", timeouts={"first_byte_s": 0.2, "total_s": 0.2})]}]}
    with GatewayThread(config) as gw:
        t0 = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            client(gw).chat.completions.create(model="m", messages=MSG)
        assert time.monotonic() - t0 < 1.5
    assert info.value.status_code == 504
    assert info.value.body["type"] == "timeout_error"


def test_stream_timeout_between_chunks_is_reported_in_the_stream(ups: list[Any]) -> None:
    (slow, _), _, _ = ups
    slow.behaviour.chunk_delay_s = 0.3
    config = {"models": [{"name": "m", "deployments": [
        dep(slow, "slow", timeouts={"total_s": 0.5})]}]}
    with GatewayThread(config) as gw:
        stream = client(gw).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a b c d e f"}], stream=True)
        with pytest.raises(openai.APIError, match="timed out"):
            list(stream)


def test_no_retry_after_the_first_streamed_byte(ups: list[Any]) -> None:
    (dying, _), _, _ = ups
    dying.behaviour.die_after_chunks = 2
    config = {"models": [{"name": "m", "routing": {"strategy": "round-robin", "retries": 2},
              "deployments": [dep(dying, "dying")]}]}
    with GatewayThread(config) as gw:
        stream = client(gw).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a b c d e f"}], stream=True)
        got = []
        with pytest.raises(openai.APIError, match="closed"):
            for chunk in stream:
                got.append(chunk.choices[0].delta.content)
        assert got == ["", "a"]
    assert dying.seen.requests == 1


def test_breaker_opens_then_503_with_retry_after_then_closes_after_recovery(ups: list[Any]) -> None:
    (flaky, _), _, _ = ups
    flaky.behaviour.fail_status = 500
    config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
        "retries": 0, "breaker": {"failures": 3, "cooldown_s": 0.5}},
        "deployments": [dep(flaky, "f")]}]}
    with GatewayThread(config) as gw:
        c = client(gw)
        for _ in range(3):
            with pytest.raises(openai.InternalServerError):
                c.chat.completions.create(model="m", messages=MSG)
        assert deployments(gw)["m/f"]["breaker"] == "open"
        with pytest.raises(openai.APIStatusError) as info:
            c.chat.completions.create(model="m", messages=MSG)
        assert info.value.status_code == 503
        assert int(info.value.response.headers["retry-after"]) >= 1
        assert flaky.seen.requests == 3  # the open breaker kept the 4th request off it
        flaky.behaviour.fail_status = None
        time.sleep(0.6)
        assert c.chat.completions.create(model="m", messages=MSG).choices  # the probe
        state = deployments(gw)["m/f"]
        assert state["breaker"] == "closed" and state["breaker_opened"] == 1


def test_upstream_429s_are_retried_elsewhere_but_never_open_the_breaker(ups: list[Any]) -> None:
    (busy, _), (calm, _), _ = ups
    busy.behaviour.fail_status = 429
    config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
        "retries": 1, "backoff_s": 0, "strategy": "round-robin",
        "breaker": {"failures": 1, "cooldown_s": 60}},
        "deployments": [dep(busy, "busy"), dep(calm, "calm")]}]}
    with GatewayThread(config) as gw:
        c = client(gw)
        for _ in range(4):
            assert c.chat.completions.create(model="m", messages=MSG).choices
        assert busy.seen.requests >= 2  # tried, refused, retried on the other one
        state = deployments(gw)["m/busy"]
        assert state["breaker"] == "closed" and state["breaker_opened"] == 0


def test_health_checks_steer_traffic_away_from_a_dead_deployment(ups: list[Any]) -> None:
    (a, a_thread), (b, _), _ = ups
    config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
        "strategy": "round-robin", "health_check": {"enabled": True, "interval_s": 0.1,
                                                    "timeout_s": 0.5}},
        "deployments": [dep(a, "a"), dep(b, "b")]}]}
    with GatewayThread(config) as gw:
        a_thread.kill()
        deadline = time.monotonic() + 5
        while deployments(gw)["m/a"]["healthy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert deployments(gw)["m/a"]["healthy"] is False
        c = client(gw)
        for _ in range(5):
            raw = c.chat.completions.with_raw_response.create(model="m", messages=MSG)
            assert raw.headers["x-warden-attempts"] == "1"
            assert raw.headers["x-warden-deployment"] == "b"
        a_thread.restart()
        deadline = time.monotonic() + 5
        while not deployments(gw)["m/a"]["healthy"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert deployments(gw)["m/a"]["healthy"] is True
