"""Limits and budgets through the real gateway over HTTP, counted in the gateway process.

Most tests stop the counters' clock (``frozen``), so that nothing drains back while they run
and the totals they assert are exact."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from tests.helpers import GatewayThread
from warden.config import parse_config
from warden.limits.memory import MemoryCounters
from warden.testing.upstream import FakeOpenAIUpstream

ALICE, BOB, CAROL = "sk-alice-000001", "sk-bob-0000001", "sk-carol-000001"
KEYS = [{"key": ALICE, "name": "alice", "team": "search"},
        {"key": BOB, "name": "bob", "team": "search"},
        {"key": CAROL, "name": "carol"}]
ADMIN = "limits-admin-key"  # /metrics needs a key that may read
DOLLAR_A_TOKEN = {"input_per_mtok": 1_000_000, "output_per_mtok": 1_000_000}


def config(limits: dict[str, Any] | None = None, budgets: list[dict[str, Any]] | None = None,
           deployment: dict[str, Any] | None = None, **more: Any) -> dict[str, Any]:
    return {"admin_key": ADMIN, "keys": KEYS, "limits": limits or {}, "budgets": budgets or [],
            "models": [{"name": "m", "routing": {"retries": 0},
                        "deployments": [deployment or {"id": "f", "provider": "fake"}]}],
            **more}


def frozen(gw: GatewayThread) -> GatewayThread:
    """Stop the clock of the gateway's in-process counters."""
    gw.app.state.limiter.memory = MemoryCounters(clock=lambda: 1000.0)
    return gw


def post(gw: GatewayThread, key: str, content: str = "hi",
         **body: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    """One chat request over plain HTTP: status, headers, JSON body."""
    data = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}],
                       **body}).encode()
    req = urllib.request.Request(gw.url + "/v1/chat/completions", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {key}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


def metric(gw: GatewayThread, line_start: str) -> float | None:
    req = urllib.request.Request(gw.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})
    with urllib.request.urlopen(req) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(line_start):
                return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture
def upstream_gw(upstream: FakeOpenAIUpstream) -> Iterator[tuple[FakeOpenAIUpstream, GatewayThread]]:
    """A gateway whose model is served by the fake upstream, its price unknown."""
    dep = {"id": "up", "provider": "openai", "base_url": upstream.base_url,
           "model": "some-unpriced-model"}
    cfg = config({"rules": [{"scope": "key", "rpm": 2, "tpm": 100}]},
                 [{"scope": "key", "match": "carol", "usd": 0.01}], dep)
    with GatewayThread(cfg) as gw:
        yield upstream, frozen(gw)


def test_a_key_over_its_rpm_gets_429_with_retry_after_and_others_do_not() -> None:
    with GatewayThread(config({"rules": [{"scope": "key", "rpm": 3}]})) as gw:
        assert [post(gw, ALICE)[0] for _ in range(3)] == [200, 200, 200]
        status, headers, body = post(gw, ALICE)
        assert status == 429 and headers["retry-after"] == "20"  # one request drains in 20 s
        assert body["error"]["type"] == "rate_limit_error"
        assert body["error"]["code"] == "rate_limit_exceeded"
        assert body["error"]["message"].startswith(
            "Rate limit reached for key 'alice': 3 requests per minute (limits.rules[0]). "
            "Try again in ")
        assert post(gw, BOB)[0] == 200
        with pytest.raises(openai.RateLimitError):
            gw.client(api_key=ALICE, max_retries=0).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}])
        assert metric(gw, 'warden_limit_rejections_total{kind="requests",scope="key"}') == 2


def test_tokens_per_minute_count_the_actual_usage() -> None:
    with GatewayThread(config({"rules": [{"scope": "key", "tpm": 100}]})) as gw:
        frozen(gw)
        # Reserved: 9 (the role 1, 18 bytes / 4, the message's framing 3) + 4 (max_tokens);
        # used: 4 + 4 (the echo, cut at 4).
        statuses = [post(gw, ALICE, "one two three four", max_tokens=4)[0] for _ in range(12)]
        assert statuses == [200] * 11 + [429]  # 11 * 8 = 88 used, and 88 + 13 > 100
        _, _, body = post(gw, ALICE, "one two three four", max_tokens=4)
        assert "100 tokens per minute; this request may use about 13 tokens" in \
            body["error"]["message"]
        assert post(gw, ALICE, "one", max_tokens=3)[0] == 200  # 88 + 8 fits
        status, _, body = post(gw, BOB, "hi", max_tokens=500)
        assert status == 429 and body["error"]["message"].startswith(
            "Request too large for key 'bob': it may use about 505 tokens")


def test_a_team_limit_is_shared_by_its_keys_and_a_model_limit_by_everyone() -> None:
    rules = [{"scope": "team", "match": "search", "rpm": 3},
             {"scope": "model", "match": "m", "rpm": 5}]
    with GatewayThread(config({"rules": rules})) as gw:
        frozen(gw)
        assert [post(gw, k)[0] for k in (ALICE, BOB, ALICE)] == [200, 200, 200]
        status, _, body = post(gw, BOB)
        assert status == 429 and "team 'search': 3 requests per minute" in body["error"]["message"]
        assert [post(gw, CAROL)[0] for _ in range(3)] == [200, 200, 429]  # the model's 5 are used
        _, _, body = post(gw, CAROL)
        assert "model 'm': 5 requests per minute (limits.rules[1])" in body["error"]["message"]


def test_a_budget_is_spent_by_priced_requests_then_refused_until_the_period_ends() -> None:
    cfg = config(budgets=[{"scope": "key", "match": "alice", "usd": 14, "period": "month"}],
                 deployment={"id": "f", "provider": "fake", "price": DOLLAR_A_TOKEN})
    with GatewayThread(cfg) as gw:
        # Each request reserves 7 USD (5 prompt tokens: the role, the text and the message's
        # framing; max_tokens 2) and costs 2 (1 + 1).
        statuses = [post(gw, ALICE, "hi", max_tokens=2)[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]  # 8 spent, and 8 + 7 > 14
        status, headers, body = post(gw, ALICE, "hi", max_tokens=2)
        assert status == 429 and body["error"]["code"] == "budget_exceeded"
        message = body["error"]["message"]
        assert message.startswith("Budget exceeded for key 'alice': 14.00 USD per calendar month "
                                  "(UTC, budgets[0]); 8.00 USD spent, and this request may cost "
                                  "up to 7.00 USD. It resets at ")
        assert message.endswith("-01T00:00:00Z.")
        assert int(headers["retry-after"]) > 0
        assert post(gw, ALICE, "hi", max_tokens=1)[0] == 200  # 8 + 6 fits exactly
        assert post(gw, BOB, "hi", max_tokens=2)[0] == 200
        used = 'warden_budget_used_usd{period="month",scope="key",subject="alice"}'
        assert metric(gw, used) == 10.0
        assert metric(gw, 'warden_limit_rejections_total{kind="budget",scope="key"}') == 2


def test_a_stream_holds_its_reservation_until_it_ends_then_settles() -> None:
    cfg = config({"rules": [{"scope": "key", "tpm": 120}]},
                 deployment={"id": "f", "provider": "fake", "params": {"tokens_per_s": 20}})
    with GatewayThread(cfg) as gw:
        frozen(gw)
        client = gw.client(api_key=ALICE, max_retries=0)
        # Reserves 14 (the role 1, ten letters 10, framing 3) + 80 tokens; uses 10 + 10.
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "a b c d e f g h i j"}],
            max_tokens=80, stream=True)
        chunks = iter(stream)
        next(chunks)
        assert post(gw, ALICE, "hi", max_tokens=80)[0] == 429  # 94 + 85 > 120
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) \
            == "a b c d e f g h i j"
        stream.close()
        assert post(gw, ALICE, "hi", max_tokens=80)[0] == 200  # 20 + 85 fits; uses 2
        assert post(gw, ALICE, "hi", max_tokens=94)[0] == 429  # 22 + 99 does not
        assert post(gw, ALICE, "hi", max_tokens=93)[0] == 200  # 22 + 98 fits exactly


def test_a_failed_request_gives_its_tokens_back_but_stays_counted(
        upstream_gw: tuple[FakeOpenAIUpstream, GatewayThread]) -> None:
    upstream, gw = upstream_gw
    upstream.behaviour.fail_status = 500
    assert post(gw, ALICE, "hi", max_tokens=90)[0] == 502  # reserved 91 of 100 tokens
    upstream.behaviour.fail_status = None
    assert post(gw, ALICE, "hi", max_tokens=90)[0] == 200  # the 91 came back
    status, _, body = post(gw, ALICE, "hi", max_tokens=1)
    assert status == 429 and "2 requests per minute" in body["error"]["message"]


def test_an_unknown_price_counts_zero_against_budgets_and_is_counted(
        upstream_gw: tuple[FakeOpenAIUpstream, GatewayThread]) -> None:
    _, gw = upstream_gw
    assert [post(gw, CAROL, "hi", max_tokens=1)[0] for _ in range(2)] == [200, 200]
    assert metric(gw, 'warden_budget_unpriced_requests_total{model="m"}') == 2
    assert metric(gw, 'warden_budget_used_usd{period="month",scope="key",subject="carol"}') == 0


def test_concurrent_requests_never_pass_the_limit() -> None:
    with GatewayThread(config({"rules": [{"scope": "key", "rpm": 20, "tpm": 100_000}]})) as gw:
        frozen(gw)

        def one(i: int) -> int:  # half of them streamed
            return post(gw, ALICE, "hi", max_tokens=2)[0] if i % 2 else _stream_status(gw)

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(one, range(60)))
        assert statuses.count(200) == 20 and statuses.count(429) == 40


def _stream_status(gw: GatewayThread) -> int:
    data = json.dumps({"model": "m", "stream": True, "max_tokens": 2,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(gw.url + "/v1/chat/completions", data=data, method="POST",
                                 headers={"Authorization": f"Bearer {ALICE}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code)


def test_a_reload_applies_new_limits_to_the_counts_so_far() -> None:
    with GatewayThread(config({"rules": [{"scope": "key", "rpm": 3}]})) as gw:
        frozen(gw)
        assert [post(gw, ALICE)[0] for _ in range(2)] == [200, 200]
        holder = gw.app.state.holder
        gw.call(holder.swap(parse_config(config({"rules": [{"scope": "key", "rpm": 5}]}))))
        assert [post(gw, ALICE)[0] for _ in range(4)] == [200, 200, 200, 429]
        gw.call(holder.swap(parse_config(config())))
        assert post(gw, ALICE)[0] == 200  # no rules: nothing counted or refused


@pytest.mark.parametrize("content", [
    "a " * 200, "1 2 3 4 " * 50, "! ? . , " * 50, "é ü " * 100, "你 好 " * 100, "😀 " * 200,
    "a\nb\n" * 100])
def test_a_budget_is_not_overspent_by_texts_that_are_cheap_per_character(
        upstream: FakeOpenAIUpstream, content: str) -> None:
    """Requests one after another stop before the budget is passed: none uses more than it
    reserved, whatever the shape of its text (the upstream reports one token a word)."""
    upstream.behaviour.reply = "ok"
    dep = {"id": "up", "provider": "openai", "base_url": upstream.base_url, "model": "x",
           "price": DOLLAR_A_TOKEN}
    with GatewayThread(config(budgets=[{"scope": "key", "match": "carol", "usd": 1000}],
                              deployment=dep)) as gw:
        statuses = [post(gw, CAROL, content, max_tokens=1)[0] for _ in range(8)]
        assert statuses[0] == 200 and statuses[-1] == 429
        spent = metric(gw, 'warden_budget_used_usd{period="month",scope="key",subject="carol"}')
        assert spent is not None and 0 < spent <= 1000


@pytest.mark.parametrize(("field", "value"), [
    ("n", "128"), ("max_tokens", "100000"), ("max_completion_tokens", "100000"),
    ("stream", "yes"), ("max_tokens", 100.0), ("max_tokens", 10**9), ("n", True)])
def test_fields_that_set_the_estimate_are_refused_unless_valid(
        upstream: FakeOpenAIUpstream, field: str, value: Any) -> None:
    """A value the estimate would not count never reaches an upstream that might honour it."""
    dep = {"id": "up", "provider": "openai", "base_url": upstream.base_url, "model": "x",
           "price": DOLLAR_A_TOKEN}
    with GatewayThread(config(budgets=[{"scope": "key", "match": "carol", "usd": 0.01}],
                              deployment=dep)) as gw:
        status, _, body = post(gw, CAROL, "hi", **{field: value})
        assert status == 400 and body["error"]["param"] == field
        assert upstream.seen.requests == 0
