"""Upstreams that answer garbage: every malformed answer, chunk or event is a 502
``upstream_bad_response`` before the first streamed byte, an error event after it, never a 500
or a cut connection; an untrustworthy usage is replaced by an estimate. Each request leaves
exactly one record. Real fake upstreams on loopback (``warden.testing.hostile`` modes)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import GatewayThread, stored_ids
from warden.testing import hostile
from warden.testing.anthropic_upstream import FakeAnthropicUpstream
from warden.testing.httpserver import ServerThread
from warden.testing.upstream import FakeOpenAIUpstream

ADMIN = "hostile-admin"
PROMPT = "one two three four five six"
PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions",
         "embedding": "/v1/embeddings"}
BAD = "upstream_bad_response"


@dataclass
class Setup:
    gw: GatewayThread
    openai: FakeOpenAIUpstream
    anthropic: FakeAnthropicUpstream
    store_url: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    oa, an = FakeOpenAIUpstream(), FakeAnthropicUpstream()
    store_url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'records.db'}"
    with ServerThread(oa.http), ServerThread(an.http):
        # One attempt per request and a breaker that never opens: each answer judged alone.
        routing = {"retries": 0, "breaker": {"failures": 100_000}}
        config = {"admin_key": ADMIN, "store": {"url": store_url}, "models": [
            {"name": "oa", "routing": routing, "deployments": [
                {"id": "oa", "provider": "openai", "base_url": oa.base_url}]},
            {"name": "an", "routing": routing, "deployments": [
                {"id": "an", "provider": "anthropic", "base_url": an.base_url,
                 "api_key": "k"}]}]}
        with GatewayThread(config) as gw:
            yield Setup(gw, oa, an, store_url)


@dataclass
class Answer:
    status: int
    body: Any  # the JSON body, or the list of streamed events
    done: bool = False  # the stream ended with [DONE]


def ask(gw: GatewayThread, api: str, model: str, stream: bool, rid: str) -> Answer:
    body: dict[str, Any] = {"model": model}
    if api == "chat":
        body["messages"] = [{"role": "user", "content": PROMPT}]
    elif api == "completion":
        body["prompt"] = PROMPT
    else:
        body["input"] = [PROMPT]
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    resp = httpx.post(gw.url + PATHS[api], json=body, headers={"x-request-id": rid},
                      timeout=20)
    if not stream or resp.status_code != 200:
        return Answer(resp.status_code, resp.json())
    frames = [f for f in resp.content.split(b"\n\n") if f.startswith(b"data: ")]
    events = [json.loads(f[6:]) for f in frames if f != b"data: [DONE]"]
    return Answer(200, events, done=frames[-1] == b"data: [DONE]")


def record(gw: GatewayThread, rid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    req = urllib.request.Request(gw.url + f"/api/requests/{rid}",
                                 headers={"Authorization": f"Bearer {ADMIN}"})
    while True:
        try:
            with urllib.request.urlopen(req) as resp:
                found: dict[str, Any] = json.loads(resp.read())["record"]
                return found
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def check_records(s: Setup, expected: dict[str, tuple[str, int, str | None]]) -> None:
    """Each request id has one record with (status, http_status, error_type)."""
    got = {rid: record(s.gw, rid) for rid in expected}
    wrong = {rid: (r["status"], r["http_status"], r["error_type"]) for rid, r in got.items()
             if (r["status"], r["http_status"], r["error_type"]) != expected[rid]}
    assert not wrong, wrong
    ids = stored_ids(s.store_url, column="client_request_id")
    assert all(ids.count(rid) == 1 for rid in expected)


def expect_502(answer: Answer, mode: str, error_type: str = BAD) -> None:
    assert answer.status == 502, (mode, answer)
    assert answer.body["error"]["type"] == error_type, (mode, answer.body)


def expect_error_event(answer: Answer, mode: str, error_type: str = BAD) -> None:
    assert answer.status == 200, (mode, answer)
    assert not answer.done, mode
    assert len(answer.body) >= 2, (mode, answer.body)  # something was streamed before it
    assert answer.body[-1]["error"]["type"] == error_type, (mode, answer.body[-1])


TEXT_MODES = ["not-json", "not-object", "null", "choices-not-list", "choice-not-object",
              "index-not-int", "index-negative", "finish-reason-not-string",
              "message-not-object", "content-not-string", "endless-line"]
CHAT_MODES = [*TEXT_MODES, "role-not-string", "tool-calls-not-list",
              "tool-call-arguments-not-string"]
EMBEDDING_MODES = ["not-json", "not-object", "data-not-list", "item-not-object",
                   "embedding-not-list", "embedding-not-numbers", "error-object"]


@pytest.mark.parametrize("api", ["chat", "completion"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_malformed_openai_answers_are_502_before_the_first_byte(
        setup: Setup, api: str, stream: bool) -> None:
    expected: dict[str, tuple[str, int, str | None]] = {}
    setup.openai.behaviour.garbage_at = 0
    for mode in [*(CHAT_MODES if api == "chat" else TEXT_MODES), "error-object"]:
        setup.openai.behaviour.garbage = mode
        rid = f"oa-first-{api}-{stream}-{mode}"
        kind = "upstream_error" if stream and mode == "error-object" else BAD
        expect_502(ask(setup.gw, api, "oa", stream, rid), mode, kind)
        expected[rid] = ("error", 502, kind)
    setup.openai.behaviour.garbage = None
    check_records(setup, expected)


@pytest.mark.parametrize("api", ["chat", "completion"])
def test_malformed_openai_chunks_after_the_first_byte_end_the_stream_with_an_error_event(
        setup: Setup, api: str) -> None:
    expected: dict[str, tuple[str, int, str | None]] = {}
    setup.openai.behaviour.garbage_at = 2
    for mode in [*(CHAT_MODES if api == "chat" else TEXT_MODES), "error-object",
                 "error-event"]:
        setup.openai.behaviour.garbage = mode
        rid = f"oa-mid-{api}-{mode}"
        kind = "upstream_error" if mode.startswith("error-") else BAD
        expect_error_event(ask(setup.gw, api, "oa", True, rid), mode, kind)
        expected[rid] = ("error", 200, kind)
    setup.openai.behaviour.garbage = None
    setup.openai.behaviour.garbage_at = 0
    check_records(setup, expected)


def test_malformed_embeddings_are_502(setup: Setup) -> None:
    expected: dict[str, tuple[str, int, str | None]] = {}
    for mode in EMBEDDING_MODES:
        setup.openai.behaviour.garbage = mode
        rid = f"oa-embedding-{mode}"
        expect_502(ask(setup.gw, "embedding", "oa", False, rid), mode)
        expected[rid] = ("error", 502, BAD)
    setup.openai.behaviour.garbage = None
    check_records(setup, expected)


def test_malformed_anthropic_answers_and_events(setup: Setup) -> None:
    expected: dict[str, tuple[str, int, str | None]] = {}
    for mode in hostile.ANTHROPIC_MESSAGE:
        setup.anthropic.behaviour.garbage = mode
        rid = f"an-whole-{mode}"
        expect_502(ask(setup.gw, "chat", "an", False, rid), mode)
        expected[rid] = ("error", 502, BAD)
    for mode, (event, _) in hostile.ANTHROPIC.items():
        setup.anthropic.behaviour.garbage = mode
        rid = f"an-stream-{mode}"
        answer = ask(setup.gw, "chat", "an", True, rid)
        kind = "upstream_error" if mode == "error-event" else BAD
        if event == "message_start":  # the first event makes the first chunk
            expect_502(answer, mode, kind)
            expected[rid] = ("error", 502, kind)
        else:
            expect_error_event(answer, mode, kind)
            expected[rid] = ("error", 200, kind)
    setup.anthropic.behaviour.garbage = None
    check_records(setup, expected)


def usage_of(answer: Answer) -> dict[str, Any]:
    if isinstance(answer.body, dict):
        found: dict[str, Any] = answer.body["usage"]
        return found
    return next(e["usage"] for e in answer.body if e.get("usage"))


CASES = [("oa", api, stream, mode) for mode in hostile.OPENAI_USAGE
         for api, stream in (("chat", False), ("chat", True), ("completion", False),
                             ("completion", True))]
CASES += [("oa", "embedding", False, m) for m in ("usage-string", "usage-huge", "usage-bool")]
CASES += [("an", "chat", stream, mode) for mode in hostile.ANTHROPIC_USAGE
          for stream in (False, True)]


def test_untrustworthy_usage_is_replaced_by_an_estimate_and_noted(setup: Setup) -> None:
    expected: dict[str, tuple[str, int, str | None]] = {}
    answers: dict[str, Answer] = {}
    for model, api, stream, mode in CASES:
        setup.openai.behaviour.garbage = setup.anthropic.behaviour.garbage = mode
        rid = f"usage-{model}-{api}-{stream}-{mode}"
        answers[rid] = ask(setup.gw, api, model, stream, rid)
        assert answers[rid].status == 200, (rid, answers[rid])
        if stream:
            assert answers[rid].done, rid
        expected[rid] = ("ok", 200, None)
    setup.openai.behaviour.garbage = setup.anthropic.behaviour.garbage = None
    check_records(setup, expected)
    for rid, answer in answers.items():
        rec = record(setup.gw, rid)
        # The estimate: about four characters a token of the prompt and of the answer.
        assert 0 < rec["input_tokens"] < 100 and rec["output_tokens"] < 100, (rid, rec)
        assert "usage rejected" in (rec["attempts"][-1]["error"] or ""), (rid, rec["attempts"])
        assert rec["attempts"][-1]["error_type"] is None
        # The client is told the numbers the record keeps.
        usage = usage_of(answer)
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (
            rec["input_tokens"], rec["output_tokens"]), rid
    metrics = httpx.get(setup.gw.url + "/metrics",
                        headers={"Authorization": f"Bearer {ADMIN}"}).text
    assert f'warden_upstream_usage_rejected_total{{deployment="oa",model="oa"}} ' \
           f'{sum(1 for c in CASES if c[0] == "oa")}.0' in metrics


def test_plausible_usage_is_kept(setup: Setup) -> None:
    answer = ask(setup.gw, "chat", "oa", False, "usage-good")
    assert answer.body["usage"]["completion_tokens"] == 6
    rec = record(setup.gw, "usage-good")
    assert (rec["input_tokens"], rec["output_tokens"]) == (6, 6)
    assert rec["attempts"][-1]["error"] is None


def test_bytes_and_silence_after_done_do_not_fail_a_finished_stream(setup: Setup) -> None:
    setup.openai.behaviour.after_done = b"data: {\"oops\"\n\ngarbage after the end"
    setup.openai.behaviour.linger_s = 3.0
    try:
        started = time.monotonic()
        answer = ask(setup.gw, "chat", "oa", True, "after-done")
        took = time.monotonic() - started
    finally:
        setup.openai.behaviour.after_done, setup.openai.behaviour.linger_s = b"", 0.0
    assert answer.status == 200 and answer.done
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in answer.body
                   if e.get("choices")) == PROMPT
    assert took < 2.0  # the stream ended at [DONE], not when the upstream went quiet
    check_records(setup, {"after-done": ("ok", 200, None)})


def test_a_malformed_first_answer_is_retried_on_another_deployment() -> None:
    bad, good = FakeOpenAIUpstream(), FakeOpenAIUpstream()
    bad.behaviour.garbage = "choices-not-list"
    with ServerThread(bad.http), ServerThread(good.http):
        config = {"admin_key": ADMIN, "models": [{"name": "m", "routing": {
            "strategy": "round-robin", "retries": 1, "backoff_s": 0}, "deployments": [
                {"id": "bad", "provider": "openai", "base_url": bad.base_url},
                {"id": "good", "provider": "openai", "base_url": good.base_url}]}]}
        with GatewayThread(config) as gw:
            for i in range(4):
                answer = ask(gw, "chat", "m", i % 2 == 1, f"retry-{i}")
                assert answer.status == 200, answer
            assert bad.seen.requests == 2  # round-robin tried it first every other time
            rec = record(gw, bad.seen.headers[0]["x-request-id"])
            assert rec["status"] == "ok"
            assert [(a["deployment"], a["error_type"]) for a in rec["attempts"]] == [
                ("bad", BAD), ("good", None)]
            req = urllib.request.Request(gw.url + "/api/deployments",
                                         headers={"Authorization": f"Bearer {ADMIN}"})
            with urllib.request.urlopen(req) as resp:
                failures = {d["id"]: d["failures"] for d in json.loads(resp.read())["data"]}
    assert failures == {"bad": 2, "good": 0}  # the breaker counted each garbage answer
