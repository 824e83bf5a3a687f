"""Every request through the gateway leaves exactly one record, with the right fields, and the
query API reads them back: on SQLite and on PostgreSQL (see ``store_url`` in conftest.py)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from tests.helpers import GatewayThread, stored_ids
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "records-admin"


def api(gw: GatewayThread, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(gw.url + path, method="POST" if body is not None else "GET",
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {ADMIN}",
                                          "content-type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())


def all_records(gw: GatewayThread, **params: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = ""
    while True:
        query = "&".join(f"{k}={v}" for k, v in {**params, "limit": "40",
                                                  **({"cursor": cursor} if cursor else {})}.items())
        page = api(gw, f"/api/requests?{query}")
        out += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def wait_for(gw: GatewayThread, n: int, timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        got = all_records(gw)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


@pytest.fixture
def setup(store_url: str) -> Any:
    up = FakeOpenAIUpstream()
    with ServerThread(up.http):
        config = {"admin_key": ADMIN, "store": {"url": store_url},
                  "server": {"region": "eu-test-1"}, "models": [
            {"name": "chat", "routing": {"retries": 1, "backoff_s": 0},
             "deployments": [{"id": "up", "provider": "openai", "base_url": up.base_url,
                              "model": "gpt-4o-mini"}]},
            {"name": "echo", "deployments": [{"id": "fake-1", "provider": "fake"}]},
            {"name": "priceless", "deployments": [{"id": "p", "provider": "openai",
                                                   "base_url": up.base_url, "model": "mystery"}]},
        ]}
        with GatewayThread(config) as gw:
            yield gw, up


def test_each_request_leaves_one_record_with_its_fields(setup: Any, store_url: str) -> None:
    gw, up = setup
    c = gw.client(api_key="x", max_retries=0)
    c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "plain one"}],
                              user="alice", extra_headers={"x-request-id": "rec-plain",
                                                           "x-warden-tag-team": "search",
                                                           "x-warden-session": "s-1"})
    list(c.chat.completions.create(model="echo", stream=True, extra_headers={
        "x-request-id": "rec-stream", "x-warden-session": "s-1"},
        messages=[{"role": "user", "content": "streamed words here"}]))
    c.chat.completions.create(model="priceless", messages=[{"role": "user", "content": "?"}],
                              extra_headers={"x-request-id": "rec-noprice"})
    up.behaviour.fail_status = 500
    with pytest.raises(openai.InternalServerError):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}],
                                  extra_headers={"x-request-id": "rec-failed"})
    up.behaviour.fail_status = None
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}],
                                  extra_headers={"x-request-id": "rec-404"})

    # Keyed by the client's ids here; each record has an id of the gateway's own.
    records = {r["client_request_id"]: r for r in wait_for(gw, 5)}
    assert set(records) == {"rec-plain", "rec-stream", "rec-noprice", "rec-failed", "rec-404"}
    assert sorted(stored_ids(store_url)) == sorted(r["request_id"] for r in records.values())
    assert all(len(r["request_id"]) == 24 and r["truncated"] == [] for r in records.values())

    plain = records["rec-plain"]
    assert (plain["status"], plain["http_status"], plain["deployment"]) == ("ok", 200, "up")
    assert (plain["provider"], plain["upstream_model"]) == ("openai", "gpt-4o-mini")
    assert (plain["end_user"], plain["session_id"], plain["tags"]) == ("alice", "s-1",
                                                                       {"team": "search"})
    assert plain["input_tokens"] == 2 and plain["output_tokens"] == 2
    assert plain["cost_usd"] == pytest.approx((2 * 0.15 + 2 * 0.6) / 1e6)
    assert len(plain["trace_id"]) == 32 and plain["latency_s"] > 0
    assert plain["region"] == "eu-test-1"

    stream = records["rec-stream"]
    assert stream["stream"] is True and stream["ttft_s"] is not None
    assert stream["output_tokens"] == 3 and stream["cost_usd"] == 0.0

    assert records["rec-noprice"]["cost_usd"] is None  # unknown, never a silent zero

    failed = records["rec-failed"]
    assert (failed["status"], failed["http_status"]) == ("error", 502)
    assert [a["status"] for a in failed["attempts"]] == [500, 500]
    assert failed["cost_usd"] == 0.0  # no provider answered: nothing billed, a known zero

    assert records["rec-404"]["http_status"] == 404
    assert records["rec-404"]["cost_usd"] == 0.0

    detail = api(gw, "/api/requests/rec-stream")
    assert detail["payload"]["completion"] == "streamed words here"
    assert "streamed words here" in detail["payload"]["prompt"]

    by_session = all_records(gw, session="s-1")
    assert {r["client_request_id"] for r in by_session} == {"rec-plain", "rec-stream"}
    assert [r["client_request_id"] for r in all_records(gw, q="streamed")] == ["rec-stream"]
    assert {r["client_request_id"] for r in all_records(gw, tag="team:search")} == {"rec-plain"}
    assert {r["client_request_id"] for r in all_records(gw, status="error")} == {"rec-failed",
                                                                                 "rec-404"}


def test_stats_agree_with_the_raw_records(setup: Any) -> None:
    gw, _ = setup
    c = gw.client(api_key="x", max_retries=0)
    for i in range(30):
        c.chat.completions.create(model="echo" if i % 3 else "chat",
                                  messages=[{"role": "user", "content": f"n {i}"}])
    records = wait_for(gw, 30)
    assert len(records) == 30
    rows = api(gw, "/api/stats?bucket=86400&group_by=model")["data"]
    by_model = {r["group"]: r for r in rows}
    for model in ("echo", "chat"):
        mine = [r for r in records if r["model"] == model]
        assert by_model[model]["count"] == len(mine)
        assert by_model[model]["output_tokens"] == sum(r["output_tokens"] for r in mine)
        latencies = sorted(r["latency_s"] for r in mine)
        assert by_model[model]["latency_p50"] == pytest.approx(
            _percentile(latencies, 0.5), rel=1e-6)


def test_feedback_attaches_to_a_request(setup: Any) -> None:
    gw, _ = setup
    c = gw.client(api_key="x", max_retries=0)
    c.chat.completions.create(model="echo", messages=[{"role": "user", "content": "rate me"}],
                              extra_headers={"x-request-id": "rec-fb"})
    [record] = wait_for(gw, 1)
    made = api(gw, "/api/feedback", {"request_id": "rec-fb", "score": 0.9, "label": "good"})
    assert made["request_id"] == record["request_id"]  # the client's id names its one record
    fb = api(gw, "/api/requests/rec-fb")["feedback"]
    assert [(f["score"], f["label"]) for f in fb] == [(0.9, "good")]


def _percentile(values: list[float], p: float) -> float:
    h = p * (len(values) - 1)
    lo, hi = int(h), min(int(h) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (h - lo)


def test_metrics_count_what_the_store_holds(setup: Any, store_url: str) -> None:
    gw, up = setup
    c = gw.client(api_key="x", max_retries=0)
    for i in range(7):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": f"m {i}"}])
    list(c.chat.completions.create(model="echo", stream=True,
                                   messages=[{"role": "user", "content": "a b c"}]))
    up.behaviour.fail_status = 503
    with pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert len(wait_for(gw, 9)) == 9
    ids = stored_ids(store_url)
    assert len(ids) == len(set(ids)) == 9
    recorder = gw.app.state.keeper.recorder
    deadline = time.monotonic() + 5  # the count follows the commit the rows came with
    while recorder.stats().written < 9 and time.monotonic() < deadline:
        time.sleep(0.01)
    with urllib.request.urlopen(urllib.request.Request(
            gw.url + "/metrics", headers={"Authorization": f"Bearer {ADMIN}"})) as resp:
        text = resp.read().decode()

    def value(prefix: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(prefix))

    assert value('warden_requests_total{error_type="",model="chat",status="ok"}') == 7
    assert value('warden_requests_total{error_type="",model="echo",status="ok"}') == 1
    assert value('warden_requests_total{error_type="upstream_error",model="chat",status="error"}') == 1
    assert value("gen_ai_server_request_duration_seconds_count") == 9
    assert value('gen_ai_server_time_to_first_token_seconds_count{deployment="fake-1"') == 1
    assert value('warden_upstream_retries_total{model="chat"}') == 1
    assert value('gen_ai_client_token_usage_count{deployment="up",gen_ai_token_type="output"') == 7
    assert value("warden_recorder_written_total") == 9
    assert "warden_recorder_rejected_total 0.0" in text
    assert "warden_recorder_repaired_total 0.0" in text
    assert "warden_breaker_state" in text and "warden_requests_in_flight" in text


def test_a_reused_request_id_leaves_a_record_per_request(setup: Any) -> None:
    gw, _ = setup
    c = gw.client(api_key="x", max_retries=0)
    sent: list[tuple[str, str]] = []
    for i in range(4):
        raw = c.chat.completions.with_raw_response.create(
            model="echo", messages=[{"role": "user", "content": f"attempt {i}"}],
            extra_headers={"x-request-id": "benign-1"})
        sent.append((raw.headers["x-request-id"], raw.headers["x-warden-record-id"]))
    with pytest.raises(openai.NotFoundError) as refused:
        c.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}],
                                  extra_headers={"x-request-id": "benign-1"})
    sent.append((refused.value.response.headers["x-request-id"],
                 refused.value.response.headers["x-warden-record-id"]))
    assert {client for client, _ in sent} == {"benign-1"}  # echoed as the client sent it
    record_ids = [own for _, own in sent]
    assert len(set(record_ids)) == 5
    records = wait_for(gw, 5)
    assert sorted(r["request_id"] for r in records) == sorted(record_ids)
    labelled = all_records(gw, request_id="benign-1")
    assert sorted(r["request_id"] for r in labelled) == sorted(record_ids)
    assert {r["client_request_id"] for r in labelled} == {"benign-1"}
    for own in record_ids:  # each record by its own id
        assert api(gw, f"/api/requests/{own}")["record"]["request_id"] == own
    with pytest.raises(urllib.error.HTTPError) as ambiguous:
        api(gw, "/api/requests/benign-1")
    assert ambiguous.value.code == 409
    assert json.loads(ambiguous.value.read())["error"]["code"] == "request_id_ambiguous"


def test_a_request_without_an_id_gets_one_of_the_gateways_own(setup: Any) -> None:
    gw, _ = setup
    c = gw.client(api_key="x", max_retries=0)
    raw = c.chat.completions.with_raw_response.create(
        model="echo", messages=[{"role": "user", "content": "hi"}])
    own = raw.headers["x-warden-record-id"]
    assert raw.headers["x-request-id"] == own
    [record] = wait_for(gw, 1)
    assert (record["request_id"], record["client_request_id"]) == (own, None)


def test_records_with_values_no_store_holds_are_cut_to_bounds_and_stop_nothing(
        setup: Any) -> None:
    gw, up = setup
    c = gw.client(api_key="x", max_retries=0)
    odd = [
        {"user": "a\x00b", "metadata": {"k\x00": "v\x00", "session_id": "s\x00"}},
        {"user": "u" * 9000},
        {"user": "many-tokens", "usage": {"prompt_tokens": 1e30, "completion_tokens": 2**40,
                                           "total_tokens": 1e30}},
        {"user": "negative", "usage": {"prompt_tokens": -5, "completion_tokens": -1,
                                       "total_tokens": -6}},
    ]
    for i, extra in enumerate(odd):
        up.behaviour.usage = extra.pop("usage", None)
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "odd"}],
                                  extra_headers={"x-request-id": f"odd-{i}"}, **extra)
    up.behaviour.usage = None
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="no\x00such", messages=[{"role": "user", "content": "x"}],
                                  extra_headers={"x-request-id": "odd-model"})
    for i in range(3):
        c.chat.completions.create(model="chat", messages=[{"role": "user", "content": "plain"}],
                                  extra_headers={"x-request-id": f"plain-{i}"})
    records = {r["client_request_id"]: r for r in wait_for(gw, 8)}
    assert set(records) == {"odd-0", "odd-1", "odd-2", "odd-3", "odd-model", "plain-0",
                            "plain-1", "plain-2"}
    nul = records["odd-0"]
    assert (nul["end_user"], nul["session_id"]) == ("a\ufffdb", "s\ufffd")
    assert nul["metadata"]["k\ufffd"] == "v\ufffd"
    assert nul["truncated"] == ["end_user", "metadata", "session_id"]
    assert records["odd-1"]["end_user"] == "u" * 256 and records["odd-1"]["truncated"] == ["end_user"]
    # An absurd or negative usage is replaced by an estimate where it arrives (and noted on the
    # attempt); the record's own bounds are the second line, tested in test_bounds.py.
    for rid in ("odd-2", "odd-3"):
        tokens = (records[rid]["input_tokens"], records[rid]["output_tokens"])
        assert all(0 < t < 1000 for t in tokens), (rid, tokens)
        assert "usage rejected" in (records[rid]["attempts"][0]["error"] or "")
    assert records["odd-model"]["model"] == "no\ufffdsuch"
    assert all(records[f"plain-{i}"]["truncated"] == [] for i in range(3))
    stats = gw.app.state.keeper.recorder.stats()
    assert (stats.spooled, stats.rejected, stats.dropped) == (0, 0, 0)
